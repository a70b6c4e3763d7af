package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/schedule"
)

// With the fake tools: c1 and c2 are built beside each other on the base
// built first; c2 fails (its disk fills), c1 gets its commit, and the error
// names c2.
func TestVariantsBuildsSiblingsInParallel(t *testing.T) {
	e := newTestEnv(t, "hello")
	t.Setenv(schedule.JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "fills-disk"))
	reps, err := Variants(context.Background(), e.cfg, []string{"t", "c1", "c2"})
	if err == nil || !strings.Contains(err.Error(), "variant c2") || strings.Contains(err.Error(), "variant c1") {
		t.Fatalf("error %v, want c2's alone", err)
	}
	if len(reps) != 3 || reps[1].Commit == "" || !reps[1].NewCommit {
		t.Errorf("c1 has no commit: %+v", reps)
	}
	if n := e.runner.count("mmdebstrap"); n != 1 {
		t.Errorf("bootstrap ran %d times", n)
	}
	if m := e.runner.stillMounted(); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cfg.CacheDir, "work")); len(entries) > 0 {
		t.Errorf("work trees left: %v", entries)
	}
}

// Ctrl-C while siblings build: both stop, nothing stays mounted, and the
// next run builds them.
func TestVariantsCtrlCStopsSiblings(t *testing.T) {
	e := newTestEnv(t, "hello")
	t.Setenv(schedule.JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "tree"))
	e.buildNamed("t")
	e.runner.blockOn = "zsh:amd64="
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := Variants(ctx, e.cfg, []string{"t", "c1", "c2"})
		done <- err
	}()
	select {
	case <-e.runner.started:
	case err := <-done:
		t.Fatalf("c1's install never blocked: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not stop")
	}
	if m := e.runner.stillMounted(); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	e.runner.blockOn = ""
	for _, r := range e.buildNamed("t", "c1", "c2")[1:] {
		if r.Commit == "" {
			t.Errorf("%s not built after the interrupt", r.Variant)
		}
	}
}

func TestHumanLogLinesStartWithTheVariant(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	w := consoleWriter(f)
	w.NoColor = true
	log := zerolog.New(w)
	log.Info().Str("variant", "gnome").Str("step", "install:gnome").Msg("install:gnome: running")
	log.Info().Msg("building 3 variants")
	f.Close()
	out, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "<nil> INF [gnome] install:gnome: running") || strings.Contains(lines[0], "variant=") ||
		!strings.HasPrefix(lines[1], "<nil> INF building 3 variants") {
		t.Errorf("human log:\n%s", out)
	}
}
