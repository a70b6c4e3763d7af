package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// hostEnv is a project whose host checks are real, on a PATH the test makes.
func hostEnv(t *testing.T, euid int, tools ...string) (Config, *fakeRunner) {
	t.Helper()
	e := newTestEnv(t, "hello")
	bin := t.TempDir()
	for _, tool := range tools {
		if err := os.WriteFile(filepath.Join(bin, tool), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	h := newRealHost(e.cfg)
	h.euid = euid
	e.cfg.Host = h
	e.cfg.Log = zerolog.Nop()
	return e.cfg, e.runner
}

// openFails opens a build that must fail before changing anything.
func openFails(t *testing.T, cfg Config, runner *fakeRunner) error {
	t.Helper()
	s, _, err := Open(context.Background(), cfg, []string{"t"})
	if err == nil {
		s.Close()
		t.Fatal("the build started")
	}
	if _, serr := os.Stat(cfg.CacheDir); serr == nil {
		t.Errorf("the cache folder was made before the host check failed")
	}
	for _, c := range runner.calls {
		if !strings.HasPrefix(c, "apt-get") {
			t.Errorf("ran %q before the host check passed", c)
		}
	}
	return err
}

func TestNotRootIsOneMessageBeforeAnyWork(t *testing.T) {
	cfg, runner := hostEnv(t, 1000, "mmdebstrap", "ostree", "apt-get", "chroot", "mount", "umount")
	err := openFails(t, cfg, runner)
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "sudo go run mage.go") {
		t.Errorf("not root: %v", err)
	}
	if len(runner.calls) > 0 {
		t.Errorf("ran commands as a non-root user: %v", runner.calls)
	}
}

func TestMissingHostToolsWithoutAptListsThemAll(t *testing.T) {
	cfg, runner := hostEnv(t, 0, "chroot", "mount", "umount")
	err := openFails(t, cfg, runner)
	msg := err.Error()
	for _, want := range []string{"missing host tools: mmdebstrap, ostree, apt-get", "install the packages mmdebstrap ostree apt"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}

func TestMissingHostToolsAreInstalledOrNamed(t *testing.T) {
	cfg, runner := hostEnv(t, 0, "apt-get", "chroot", "mount", "umount", "ostree", "strace", "taskset")
	// The fake apt-get "installs" nothing: the tool is still missing after.
	runner.hostApt = true
	err := openFails(t, cfg, runner)
	if runner.count("apt-get install -y -q --no-install-recommends mmdebstrap") != 1 {
		t.Errorf("the missing tool was not installed with apt-get: %v", runner.calls)
	}
	if !strings.Contains(err.Error(), "still missing after apt-get install: mmdebstrap (packages mmdebstrap)") {
		t.Errorf("message does not name the tool: %v", err)
	}
}
