package build

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// An incremental install on an overlay over a linked checkout gives the
// very tree a cold build gives: same stored results, digest for digest.
func TestLinkedRestoreGivesTheSameTrees(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	pkgs := []string{"hello", "linux-image-amd64", "ostree-boot", "dracut"}
	e := newTestEnv(t, pkgs...)
	e.mustBuild()
	e.setPackages(append(pkgs, "zsh")...)
	incremental := e.mustBuild()
	if e.runner.count("mount -t overlay") < 2 {
		t.Fatalf("install and postprocess did not run on overlays: %v", e.runner.calls)
	}
	if e.runner.count("ostree --repo="+e.cfg.storeRepo().Path+" checkout --require-hardlinks") == 0 {
		t.Error("the cached install was not restored as a linked checkout")
	}
	cold := newTestEnv(t, append(pkgs, "zsh")...).mustBuild()
	for i := 1; i <= 2; i++ {
		if a, b := incremental.Steps[i], cold.Steps[i]; a.Result != b.Result {
			t.Errorf("%s: incremental on an overlay stored %s, a cold build %s", a.Name, short(a.Result), short(b.Result))
		}
	}
}

// A cold build stores each result while the next step runs on an overlay;
// it stores the very trees a build without overlays stores.
func TestPipelinedBuildStoresTheSameTrees(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	pkgs := []string{"hello", "linux-image-amd64", "ostree-boot", "dracut"}
	piped := newTestEnv(t, pkgs...)
	a := piped.mustBuild()
	if n := piped.runner.count("mount -t overlay"); n < 3 { // the probe, install, postprocess
		t.Errorf("the cold build mounted %d overlays: steps did not overlap", n)
	}
	// The bootstrap's tree is adopted: stored by moving a tree of hard
	// links in, so its files are the objects and storing install reads
	// only what install changed; no relink is needed.
	if n := piped.runner.count("cp -a --link"); n == 0 {
		t.Error("the bootstrap's tree was not adopted")
	}
	if piped.runner.count("ostree --repo="+piped.cfg.storeRepo().Path+" checkout --require-hardlinks") != 0 {
		t.Error("an adopted tree was relinked")
	}
	if left, _ := filepath.Glob(filepath.Join(piped.cfg.workDir(), "*", "farm")); len(left) > 0 {
		t.Errorf("trees of hard links outlived the build: %v", left)
	}
	plain := newTestEnv(t, pkgs...)
	plain.cfg.NoOverlay = true
	b := plain.mustBuild()
	if plain.runner.count("mount -t overlay") != 0 {
		t.Error("NoOverlay still mounted overlays")
	}
	// Steps write into the tree itself then: its files must stay copies.
	if plain.runner.count("cp -a --link") != 0 {
		t.Error("without overlays, a tree was adopted")
	}
	for i := range a.Steps {
		if a.Steps[i].Result != b.Steps[i].Result && a.Steps[i].Step != StepCommit {
			t.Errorf("%s: pipelined %s, sequential %s", a.Steps[i].Name, short(a.Steps[i].Result), short(b.Steps[i].Result))
		}
	}
}

// When the stored parent comes out as a result stored before, the step run
// meanwhile is a cache hit: its work is dropped and the hit used.
func TestSpeculativeStepHitIsDropped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	// Forget the bootstrap only: it runs again, gives the same tree, and
	// the install run meanwhile turns out to be cached.
	s, _, _ := Open(context.Background(), e.cfg, []string{"t"})
	s.idx.Delete(first.Steps[0].Key)
	s.Close()
	rep := e.mustBuild()
	if got := ranSteps(rep); !slices.Equal(got, []string{StepBootstrap}) {
		t.Errorf("ran %v; only bootstrap should count as run", got)
	}
	if rep.Commit != first.Commit || rep.NewCommit {
		t.Errorf("a build of the same trees made commit %s (new %v)", short(rep.Commit), rep.NewCommit)
	}
	if e.runner.count("chroot") < 2 {
		t.Error("install did not run speculatively")
	}
}

// A repository on another filesystem than the work trees cannot adopt a
// tree (a rename cannot cross filesystems): it copies, and stores the same
// results as a build that adopts.
func TestNoAdoptionAcrossFilesystems(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	shm, err := os.MkdirTemp("/dev/shm", "repo-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	pkgs := []string{"hello", "linux-image-amd64", "ostree-boot", "dracut"}
	e := newTestEnv(t, pkgs...)
	e.cfg.RepoDir = filepath.Join(shm, "repo")
	var work, repo syscall.Stat_t
	os.MkdirAll(e.cfg.workDir(), 0o755)
	if syscall.Stat(e.cfg.workDir(), &work) != nil || syscall.Stat(shm, &repo) != nil || work.Dev == repo.Dev {
		t.Skip("/dev/shm is on the work trees' filesystem")
	}
	a := e.mustBuild()
	if e.runner.count("cp -a --link") != 0 {
		t.Error("a tree was adopted across filesystems")
	}
	b := newTestEnv(t, pkgs...).mustBuild()
	for i := range a.Steps {
		if a.Steps[i].Result != b.Steps[i].Result && a.Steps[i].Step != StepCommit {
			t.Errorf("%s: copied %s, adopted %s", a.Steps[i].Name, short(a.Steps[i].Result), short(b.Steps[i].Result))
		}
	}
}
