package build

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain fails the run when any test left a mount in a temporary folder:
// every exit path of a build must unmount what it mounted.
func TestMain(m *testing.M) {
	code := m.Run()
	if left := mountsUnder(os.TempDir()); len(left) > 0 {
		var ours []string
		for _, mp := range left {
			if strings.Contains(mp, "/Test") || strings.Contains(mp, "debian-atomic") {
				ours = append(ours, mp)
			}
		}
		if len(ours) > 0 {
			fmt.Fprintf(os.Stderr, "mounts left behind by the tests:\n  %s\n", strings.Join(ours, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}
