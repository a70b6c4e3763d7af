package build

import (
	"errors"
	"strings"
	"testing"
)

func TestAptFailedNamesDriftAndUnknownPackages(t *testing.T) {
	apt := errors.New("exit status 100: E: Version '3.5.9-1~deb13u1' for 'openssl' was not found\nE: Version '3.5.9-1~deb13u1' for 'libssl3t64' was not found")
	err := aptFailed("installing the packages of variants/minimal.yaml", apt)
	var drift *LockDriftError
	if !errors.As(err, &drift) {
		t.Fatalf("no *LockDriftError in %v", err)
	}
	if got := strings.Join(drift.Missing, ", "); got != "openssl 3.5.9-1~deb13u1, libssl3t64 3.5.9-1~deb13u1" {
		t.Errorf("missing: %s", got)
	}
	if !errors.Is(err, apt) {
		t.Error("apt's own error is not in the chain")
	}
	for _, want := range []string{"installing the packages of variants/minimal.yaml failed", "run `mage update`", "openssl 3.5.9-1~deb13u1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not in %q", want, err)
		}
	}

	err = aptFailed("installing the packages of variants/x.yaml", errors.New("E: Unable to locate package nosuchpkg"))
	if errors.As(err, &drift) {
		t.Errorf("an unknown package is not drift: %v", err)
	}
	if !strings.Contains(err.Error(), "the archive has no package nosuchpkg: fix the packages list") {
		t.Errorf("unknown package not named: %v", err)
	}
}
