package e2ebuild

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/internal/e2etest"
	"github.com/debian-atomic/builder/variants"
)

// A lock naming a version the archive no longer has (as when
// trixie-security replaces a package) fails the build with the lock-drift
// error; Variants re-locks the test's copy, says so, and builds.
func TestVariantsRelocksALockTheArchiveMovedPast(t *testing.T) {
	e2etest.Gate(t, "mmdebstrap", "ostree")
	vdir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "variants", "tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(vdir, "tiny.yaml"), data, 0o644)
	var log bytes.Buffer
	cfg := Config(t, t.TempDir(), vdir, filepath.Join(os.TempDir(), "debian-atomic-e2e-debs-e2ebuild"), &log)
	ctx := context.Background()
	if _, err := Variants(t, ctx, cfg, "tiny"); err != nil {
		t.Fatal(err)
	}
	lock, err := variants.ReadLock(vdir)
	if err != nil {
		t.Fatal(err)
	}
	layer := lock.Variants["tiny"]
	locked := ""
	for i, p := range layer.Packages {
		if f := strings.Fields(p); len(f) == 3 && f[0] == "hello" {
			locked = p
			layer.Packages[i] = "hello 0.0-gone-from-the-archive " + f[2]
		}
	}
	if locked == "" {
		t.Fatalf("hello is not in tiny's lock: %v", layer.Packages)
	}
	lock.Variants["tiny"] = layer
	if err := lock.Write(vdir); err != nil {
		t.Fatal(err)
	}

	reps, err := Variants(t, ctx, cfg, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Commit == "" {
		t.Fatalf("no commit after re-locking: %+v", reps)
	}
	// Update's line: the bogus version replaced by the archive's.
	if !strings.Contains(log.String(), "hello 0.0-gone-from-the-archive -> ") {
		t.Errorf("the lock was not updated from the archive:\n%s", log.String())
	}
	after, err := variants.ReadLock(vdir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(after.Variants["tiny"].Packages, "\n"); !strings.Contains(got, locked) {
		t.Errorf("re-locked without %q:\n%s", locked, got)
	}
}
