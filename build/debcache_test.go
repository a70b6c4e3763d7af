package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debian-atomic/builder/debcache"
	"github.com/debian-atomic/builder/schedule"
)

// A package is downloaded once, into the shared cache; a build with
// another cache that shares it downloads nothing and never asks apt to.
func TestPackagesAreDownloadedOnceIntoTheSharedCache(t *testing.T) {
	a := newTestEnv(t, "hello", "zsh")
	a.mustBuild()
	if n := a.runner.count("chroot " + a.cfg.workDir()); n == 0 {
		t.Fatal("no command ran in the tree")
	}
	if a.runner.downloads != 2 {
		t.Errorf("the first build downloaded %d packages, want hello and zsh", a.runner.downloads)
	}
	for _, p := range []string{"hello", "zsh"} {
		if _, err := os.Stat(filepath.Join(a.cfg.DebsDir, debcache.FileName(p, fakeVersion, "amd64"))); err != nil {
			t.Errorf("%s is not in the shared cache: %v", p, err)
		}
	}
	b := newTestEnv(t, "hello", "zsh")
	b.cfg.DebsDir = a.cfg.DebsDir
	b.mustBuild()
	if b.runner.downloads != 0 || downloadOnly(b.runner) != 0 {
		t.Errorf("with every package cached, %d downloads in %d apt runs", b.runner.downloads, downloadOnly(b.runner))
	}
	if left, _ := os.ReadDir(b.cfg.workDir()); len(left) > 0 {
		t.Errorf("work folders left: %v", left)
	}
}

func downloadOnly(f *fakeRunner) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.Contains(c, "apt-get install") && strings.Contains(c, "--download-only") {
			n++
		}
	}
	return n
}

// Siblings install side by side: only downloads hold the shared cache's
// lock, not apt's install, also when the packages are new to the cache.
func TestSiblingInstallsRunSideBySide(t *testing.T) {
	e := newTestEnv(t, "hello")
	t.Setenv(schedule.JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "tree"))
	e.buildNamed("t")
	if pinned := pinnedInstalls(e.runner); len(pinned) != 0 {
		t.Errorf("an install alone was pinned: %q", pinned)
	}
	e.runner.installDelay = 500 * time.Millisecond
	e.cfg.Host = fakeHost{delay: 50 * time.Millisecond}
	if _, err := Variants(context.Background(), e.cfg, []string{"t", "c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	if e.runner.mostInstalling != 2 {
		t.Errorf("at most %d installs ran at once, want c1's and c2's", e.runner.mostInstalling)
	}
	// Side by side, each install keeps to a CPU of its own.
	pinned := pinnedInstalls(e.runner)
	if len(pinned) != 2 || pinned[0][:2] == pinned[1][:2] {
		t.Errorf("the siblings' installs were not pinned to a CPU each: %q", pinned)
	}
	if downloadOnly(e.runner) != 3 { // t's, then c1's and c2's
		t.Errorf("%d downloads, want one per layer", downloadOnly(e.runner))
	}
}

// A shared cache on another filesystem cannot be hard-linked: apt then
// installs from it directly, one build at a time, and still fills it.
func TestSharedCacheOnAnotherFilesystem(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "debs-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	e := newTestEnv(t, "hello")
	if linked, _ := debcache.Link(shm, filepath.Join(t.TempDir(), "probe")); linked {
		// An empty cache links trivially: probe with a file in it.
		os.WriteFile(filepath.Join(shm, "x_1_all.deb"), nil, 0o644)
		if linked, _ := debcache.Link(shm, filepath.Join(t.TempDir(), "probe")); linked {
			t.Skip("/dev/shm is on the same filesystem as the tests' folder")
		}
	}
	e.cfg.DebsDir = shm
	e.mustBuild()
	if _, err := os.Stat(filepath.Join(shm, debcache.FileName("hello", fakeVersion, "amd64"))); err != nil {
		t.Errorf("hello was not downloaded into the shared cache: %v", err)
	}
	if downloadOnly(e.runner) != 0 {
		t.Error("a download-only run, though apt installs from the shared cache directly")
	}
}

// pinnedInstalls are the pinned apt installs (not downloads) f ran.
func pinnedInstalls(f *fakeRunner) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.pinned {
		if strings.Contains(p, "apt-get install") && !strings.Contains(p, "--download-only") {
			out = append(out, p)
		}
	}
	return out
}

// A child starts once its parent's layers are stored: its install runs
// beside the parent's postprocess (a slow dracut here), not after it.
// (The parent's last layer is stored in the background while its
// postprocess runs; ready comes from there.)
func TestChildInstallsBesideItsParentsPostprocess(t *testing.T) {
	e := newTestEnv(t, bootable...)
	t.Setenv(schedule.JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.runner.dracutDelay = time.Second
	if _, err := Variants(context.Background(), e.cfg, []string{"t", "c1"}); err != nil {
		t.Fatal(err)
	}
	childInstall := e.runner.first(func(c string) bool {
		return strings.Contains(c, "apt-get install") && strings.Contains(c, "/c1/") && !strings.Contains(c, "--download-only")
	})
	parentDracut := -1
	for root, n := range e.runner.dracutEnded {
		if strings.Contains(root, "/work/t/") {
			parentDracut = n
		}
	}
	if childInstall < 0 || parentDracut < 0 || childInstall >= parentDracut {
		t.Errorf("c1's install (call %d) did not start while t's dracut ran (it ended after %d calls)", childInstall, parentDracut)
	}
}
