// Package e2etest holds what the end-to-end tests of several packages share:
// when they run, and the build configuration they run with.
package e2etest

import (
	"os"
	"os/exec"
	"testing"
)

// Gate skips an end-to-end test under -short, with DEBIAN_ATOMIC_E2E=0 or
// when not root, and fails it when one of tools is missing (.ci/run
// installs them, so a missing one is a broken machine, not a reason to skip).
func Gate(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() || os.Getenv("DEBIAN_ATOMIC_E2E") == "0" {
		t.Skip("end-to-end tests skipped (-short or DEBIAN_ATOMIC_E2E=0)")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (.ci/run installs it)", tool)
		}
	}
}
