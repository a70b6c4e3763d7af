package build

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// e2eDebs is the package cache every end-to-end test shares, across runs.
var e2eDebs = filepath.Join(os.TempDir(), "debian-atomic-e2e-debs")

// TestMain gives this test process a temporary folder of its own and fails
// the run when any test left a mount in it: every exit path of a build must
// unmount what it mounted.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "debian-atomic-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	if left := mountsUnder(tmp); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "mounts left behind by the tests:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	} else {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}
