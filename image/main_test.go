package image

import (
	"fmt"
	"os"
	"testing"

	"github.com/debian-atomic/builder/build"
)

// TestMain gives this test process a temporary folder of its own, where the
// tests' caches and images live, and fails the run when a mount or a loop
// device below it remains afterwards.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "debian-atomic-image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	if build.LeftBehind(tmp) {
		code = 1
	} else {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}
