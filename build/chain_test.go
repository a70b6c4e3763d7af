package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

func TestChainRunsOnceThenHits(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	if got := ranSteps(first); !slices.Equal(got, Steps) {
		t.Fatalf("cold build ran %v, want %v", got, Steps)
	}
	if !first.NewCommit || first.Commit == "" {
		t.Fatalf("cold build made no commit: %+v", first)
	}
	calls := len(e.runner.calls)
	second := e.mustBuild()
	if got := ranSteps(second); len(got) != 0 {
		t.Fatalf("no-op build ran %v", got)
	}
	if second.NewCommit || second.Commit != first.Commit {
		t.Fatalf("no-op build changed the ref: %s -> %s", first.Commit, second.Commit)
	}
	for _, c := range e.runner.calls[calls:] {
		if !strings.HasPrefix(c, "ostree") {
			t.Errorf("no-op build ran %q", c)
		}
	}
}

func TestEditingPackagesRerunsInstallNotBootstrap(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	e.setPackages("hello", "zsh")
	second := e.mustBuild()
	want := []string{StepInstall, StepPostprocess, StepCommit}
	if got := ranSteps(second); !slices.Equal(got, want) {
		t.Fatalf("after adding a package ran %v, want %v", got, want)
	}
	if e.runner.count("mmdebstrap") != 1 {
		t.Errorf("bootstrap ran %d times", e.runner.count("mmdebstrap"))
	}
	out := e.cfg.outRepo()
	ctx := context.Background()
	if p := out.Parent(ctx, second.Commit); p != first.Commit {
		t.Errorf("new commit's parent is %q, want the previous commit %s", p, first.Commit)
	}
	pk, _ := out.Metadata(ctx, second.Commit, MetaPackages)
	if !strings.Contains(pk, "('zsh', '1.0-1', 'amd64')") || !strings.Contains(pk, "('base-files', '13.8', 'amd64')") {
		t.Errorf("package metadata: %s", pk)
	}
	if !strings.HasSuffix(second.Version, ".1") || !strings.HasPrefix(second.Version, "13.") {
		t.Errorf("second version %q after %q", second.Version, first.Version)
	}
	// Going back to the first package list reuses the cached install.
	e.setPackages("hello")
	third := e.mustBuild()
	if got := ranSteps(third); !slices.Equal(got, []string{StepCommit}) {
		t.Errorf("returning to a cached package list ran %v, want only commit", got)
	}
}

func TestFailedInstallKeepsEarlierResultsAndRef(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	e.setPackages("hello", "no-such-package")
	_, err := e.build(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no-such-package") {
		t.Fatalf("error does not name the package: %v", err)
	}
	cur, _ := e.cfg.outRepo().RevParse(context.Background(), "test/t")
	if cur != first.Commit {
		t.Errorf("ref moved after a failed build: %s", cur)
	}
	e.setPackages("hello", "zsh")
	rep := e.mustBuild()
	if got := ranSteps(rep); got[0] != StepInstall {
		t.Errorf("after the failure ran %v; bootstrap should stay cached", got)
	}
}

func TestDamagedResultIsAMiss(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	boot := first.Steps[0].Result
	obj := e.cfg.storeRepo().CommitObject(boot)
	data, _ := os.ReadFile(obj)
	os.Chmod(obj, 0o644)
	if err := os.WriteFile(obj, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	rep := e.mustBuild()
	if got := ranSteps(rep); len(got) == 0 || got[0] != StepBootstrap {
		t.Fatalf("truncated bootstrap result was used: ran %v", got)
	}
	if rep.Commit != first.Commit {
		// Same inputs, same tree: the rebuilt chain lands on the same commit.
		t.Logf("rebuilt commit %s (was %s)", rep.Commit, first.Commit)
	}
	os.Remove(e.cfg.storeRepo().CommitObject(rep.Steps[1].Result))
	rep = e.mustBuild()
	if got := ranSteps(rep); len(got) == 0 || got[0] != StepInstall {
		t.Fatalf("missing install result was used: ran %v", got)
	}
}

// An interrupt in the middle of any step unmounts, removes the tree, leaves
// no cache entry for that step (nor a ref) and the next run resumes there.
func TestInterruptInEveryStepCleansUpAndResumes(t *testing.T) {
	for _, c := range []struct {
		step, blockOn string
		kept          []string // steps whose results stay cached
	}{
		{StepBootstrap, "mmdebstrap", nil},
		{StepInstall, "apt-get install", []string{StepBootstrap}},
		{StepPostprocess, " dracut --force", []string{StepBootstrap, StepInstall}},
		{StepCommit, "commit --branch=test/t", []string{StepBootstrap, StepInstall, StepInitramfs, StepPostprocess}},
	} {
		t.Run(c.step, func(t *testing.T) {
			e := newTestEnv(t, "linux-image-amd64", "ostree-boot", "dracut")
			e.runner.blockOn = c.blockOn
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-e.runner.started
				cancel()
			}()
			_, err := e.build(ctx)
			if err == nil || !strings.Contains(err.Error(), "canceled") {
				t.Fatalf("interrupted build: %v", err)
			}
			s, _, _ := Open(context.Background(), e.cfg, []string{"t"})
			entries, _ := s.idx.Entries()
			s.Close()
			var kinds []string
			for _, en := range entries {
				kinds = append(kinds, en.Kind)
			}
			slices.Sort(kinds)
			want := slices.Clone(c.kept)
			slices.Sort(want)
			if !slices.Equal(kinds, want) {
				t.Errorf("cache entries after an interrupt in %s: %v, want %v", c.step, kinds, want)
			}
			if _, ok := e.cfg.outRepo().RevParse(context.Background(), "test/t"); ok {
				t.Error("an interrupted build moved the ref")
			}
			e.runner.blockOn = ""
			rep := e.mustBuild()
			if got := ranSteps(rep); len(got) == 0 || got[0] != c.step {
				t.Errorf("after the interrupt ran %v; should resume at %s", got, c.step)
			}
		})
	}
}

func TestPostprocessMakesDeployableLayout(t *testing.T) {
	e := newTestEnv(t, "linux-image-amd64", "ostree-boot", "dracut")
	rep := e.mustBuild()
	if e.runner.count("chroot") == 0 || e.runner.count("mount -t proc") != 2 {
		t.Errorf("install and dracut should each mount /proc once: %v", e.runner.calls)
	}
	dir := filepath.Join(t.TempDir(), "co")
	if err := e.cfg.storeRepo().Checkout(context.Background(), rep.Steps[2].Result, dir); err != nil {
		t.Fatal(err)
	}
	mustExist := []string{
		"usr/lib/modules/" + kver + "/vmlinuz", "usr/lib/modules/" + kver + "/initramfs.img",
		"usr/lib/modules/" + kver + "/config", "usr/etc/passwd", "usr/share/dpkg/database/status",
		"usr/share/factory/var/roothome/.bashrc", treelayout.TmpfilesConf, "sysroot", "usr/etc/machine-id", "usr/etc/default/locale",
	}
	for _, p := range mustExist {
		if !exists(filepath.Join(dir, p)) {
			t.Errorf("missing %s", p)
		}
	}
	for _, p := range []string{"etc", "boot/vmlinuz-" + kver, "usr/etc/passwd-", "usr/etc/hostname", "usr/sbin/policy-rc.d"} {
		if exists(filepath.Join(dir, p)) {
			t.Errorf("%s should be gone", p)
		}
	}
	for _, d := range []string{"var", "boot", "dev", "tmp"} {
		if entries, _ := os.ReadDir(filepath.Join(dir, d)); len(entries) > 0 {
			t.Errorf("/%s is not empty: %v", d, entries)
		}
	}
	links := map[string]string{"home": "var/home", "root": "var/roothome", "ostree": "sysroot/ostree",
		"usr/local": "../var/usrlocal", "media": "run/media", "opt": "var/opt"}
	for l, want := range links {
		if got, _ := os.Readlink(filepath.Join(dir, l)); got != want {
			t.Errorf("%s -> %q, want %q", l, got, want)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(dir, treelayout.TmpfilesConf))
	for _, want := range []string{"L /var/lib/dpkg - - - - ../../usr/share/dpkg/database",
		"C /var/roothome/.bashrc 0644 0 0 - /usr/share/factory/var/roothome/.bashrc",
		"d /var/roothome 0700", "d /var/usrlocal/bin 0755"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("tmpfiles.d lacks %q:\n%s", want, conf)
		}
	}
	if m, _ := e.cfg.outRepo().Metadata(context.Background(), rep.Commit, "ostree.linux"); !strings.Contains(m, kver) {
		t.Errorf("ostree.linux is %q", m)
	}
}

func TestSecondBuildWaitsForTheLock(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), filepath.Join(dir, "lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	holder := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = AcquireLock(ctx, filepath.Join(dir, "lock"), func(h string) { holder <- h })
	if err == nil {
		t.Fatal("two holders of the lock")
	}
	if h := <-holder; !strings.Contains(h, "pid") {
		t.Errorf("waiter was not told the holder: %q", h)
	}
	l.Release()
	l2, err := AcquireLock(context.Background(), filepath.Join(dir, "lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
}

func TestVersionNumbering(t *testing.T) {
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ prev, want string }{
		{"", "13.20261126.0"},
		{"13.20261126.0", "13.20261126.1"},
		{"13.20261125.4", "13.20261126.0"},
	} {
		if got := nextVersion(c.prev, "13", day); got != c.want {
			t.Errorf("after %q: %q, want %q", c.prev, got, c.want)
		}
	}
}

func TestGVariantRoundTrip(t *testing.T) {
	pk := packagesGVariant([][3]string{{"a", "1:2.0~rc1+b1", "amd64"}, {"b'q", "1", "all"}})
	got := ostreeops.GVariantStrings(pk)
	want := []string{"a", "1:2.0~rc1+b1", "amd64", "b'q", "1", "all"}
	if !slices.Equal(got, want) {
		t.Errorf("%s parsed as %v", pk, got)
	}
}

func TestSummaryTableNamesLayers(t *testing.T) {
	table := SummaryTable([]Report{{Variant: "gnome", Ref: "r", Version: "13.1.0", Steps: []StepReport{
		{Step: StepBootstrap, Name: StepBootstrap, Cached: true},
		{Step: StepInstall, Name: "install:gnome", Duration: 2 * time.Second, Size: 3 << 20},
	}}})
	for _, want := range []string{"install:gnome", "built", "cached", "2s", "3 MiB", "no new commit"} {
		if !strings.Contains(table, want) {
			t.Errorf("summary lacks %q:\n%s", want, table)
		}
	}
}

// A full disk during a step: the message says so first, names the cache
// folder and what to do, and the earlier steps and the ref are kept.
func TestDiskFullIsOneClearMessage(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	e.setPackages("hello", "fills-disk")
	_, err := e.build(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "the disk holding "+e.cfg.CacheDir+" is full (") ||
		!strings.Contains(msg, "set DEBIAN_ATOMIC_CACHE to a folder on a bigger disk") ||
		!strings.Contains(msg, "test/t keeps its last commit") || !strings.Contains(msg, "No space left on device") {
		t.Errorf("message:\n%s", msg)
	}
	if cur, _ := e.cfg.outRepo().RevParse(context.Background(), "test/t"); cur != first.Commit {
		t.Error("the ref moved")
	}
}

func TestExplainDiskFullKnowsEachTool(t *testing.T) {
	dir := t.TempDir()
	for _, cause := range []error{
		syscall.ENOSPC,
		errors.New("dpkg: error: failed to write (No space left on device)"),
		errors.New("error: Writing content object: min-free-space-percent '3%' would be exceeded, at least 56.6 MB requested"),
	} {
		err := ExplainDiskFull(fmt.Errorf("step: %w", cause), dir, "kept")
		if !strings.HasPrefix(err.Error(), "the disk holding "+dir+" is full (") || !errors.Is(err, cause) {
			t.Errorf("%v -> %v", cause, err)
		}
	}
	if err := errors.New("exit status 100"); ExplainDiskFull(err, dir, "kept") != err {
		t.Error("an unrelated error was changed")
	}
}

// The benchmarks' baseline: one mmdebstrap with every package, the same
// postprocess with dracut run directly (a plain script has no cache), one
// commit. Its first full run found it still asking the initramfs cache of a
// session it does not have.
func TestPlainScriptCommitsABootableTree(t *testing.T) {
	e := newTestEnv(t, "linux-image-amd64", "ostree-boot", "dracut")
	v, err := variants.LoadChain(e.cfg.VariantsDir, "t")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := PlainScript(context.Background(), e.cfg, v, dir); err != nil {
		t.Fatal(err)
	}
	repo := ostreeops.Repo{Path: filepath.Join(dir, "repo"), Runner: e.runner}
	img, err := repo.Cat(context.Background(), v.Ref, "/usr/lib/modules/"+kver+"/initramfs.img")
	if err != nil || len(img) == 0 {
		t.Fatalf("no initramfs in the plain script's commit: %v", err)
	}
	if string(img) != "initramfs" {
		t.Errorf("the initramfs is %q, not dracut's", img)
	}
}
