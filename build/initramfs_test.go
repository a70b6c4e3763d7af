package build

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/dracuttrace"
)

var bootable = []string{"linux-image-amd64", "dracut", "ostree-boot"}

func initramfsOf(t *testing.T, e *testEnv, commit string) string {
	t.Helper()
	img, err := e.cfg.outRepo().Cat(context.Background(), commit, initramfsPath(kver))
	if err != nil {
		t.Fatal(err)
	}
	return string(img)
}

// A tree that gains an unrelated package reuses the stored initramfs; one
// that gains what dracut looked for and did not find (plymouth) runs dracut.
func TestInitramfsReusedOnlyWhenItsInputsAreUnchanged(t *testing.T) {
	e := newTestEnv(t, bootable...)
	first := e.mustBuild()
	if n := e.runner.count("strace"); n != 1 {
		t.Fatalf("dracut ran %d times in the first build", n)
	}
	if len(e.runner.pinned) != 1 || !strings.Contains(e.runner.pinned[0], " strace ") || strings.Contains(strings.Fields(e.runner.pinned[0])[0], ",") {
		t.Errorf("traced dracut was not pinned to one CPU: %q", e.runner.pinned)
	}
	e.setPackages(append(bootable, "hello")...)
	second := e.mustBuild()
	if got := ranSteps(second); len(got) < 2 || got[len(got)-2] != StepPostprocess {
		t.Fatalf("adding hello ran %v: postprocess should run", got)
	}
	if n := e.runner.count("strace"); n != 1 {
		t.Errorf("adding an unrelated package ran dracut again (%d runs)", n)
	}
	if a, b := initramfsOf(t, e, first.Commit), initramfsOf(t, e, second.Commit); a != b {
		t.Errorf("reused initramfs %q differs from the first %q", b, a)
	}
	e.setPackages(append(bootable, "hello", "plymouth")...)
	third := e.mustBuild()
	if n := e.runner.count("strace"); n != 2 {
		t.Errorf("a tree that gained plymouth, which dracut looked for, did not run dracut (%d runs)", n)
	}
	if img := initramfsOf(t, e, third.Commit); !strings.Contains(img, "plymouth") {
		t.Errorf("the initramfs after adding plymouth is %q", img)
	}
	// Back to hello alone: the tree is the second's again, and so is the image.
	e.setPackages(append(bootable, "hello")...)
	fourth := e.mustBuild()
	if img := initramfsOf(t, e, fourth.Commit); strings.Contains(img, "plymouth") {
		t.Errorf("plymouth's image was reused for a tree without plymouth: %q", img)
	}
}

// A library dracut's globs do not match (libevent, tmux's) reuses the
// image; one they match (libkmod) runs dracut, whose image then has it.
// The traced run mounts the marked dracut-init.sh over the tree's.
func TestInitramfsLibraryGlobs(t *testing.T) {
	e := newTestEnv(t, bootable...)
	e.mustBuild()
	if n := e.runner.count("strace"); n != 1 {
		t.Fatalf("dracut ran %d times in the first build", n)
	}
	if len(e.runner.pinned) != 1 || !strings.Contains(e.runner.pinned[0], " strace ") || strings.Contains(strings.Fields(e.runner.pinned[0])[0], ",") {
		t.Errorf("traced dracut was not pinned to one CPU: %q", e.runner.pinned)
	}
	if !slices.ContainsFunc(e.runner.calls, func(c string) bool {
		return strings.HasPrefix(c, "mount --bind ") && strings.HasSuffix(c, dracuttrace.InitScript)
	}) {
		t.Errorf("the traced dracut did not run the marked dracut-init.sh:\n%s", strings.Join(e.runner.calls, "\n"))
	}
	e.setPackages(append(bootable, "libevent")...)
	e.mustBuild()
	if n := e.runner.count("strace"); n != 1 {
		t.Errorf("a library no glob matches ran dracut (%d runs)", n)
	}
	e.setPackages(append(bootable, "libevent", "kmod")...)
	third := e.mustBuild()
	if n := e.runner.count("strace"); n != 2 {
		t.Errorf("a library dracut globs for did not run dracut (%d runs)", n)
	}
	if img := initramfsOf(t, e, third.Commit); !strings.Contains(img, "libkmod") {
		t.Errorf("the initramfs after adding kmod is %q", img)
	}
}

// The manifest's states: absent paths, files by bytes and mode, links
// resolved inside the tree, relative lookups under a directory fd, and no
// host paths from before the chroot or scratch folders.
func TestManifestFromTrace(t *testing.T) {
	root := t.TempDir()
	if err := fakeBootstrap(root); err != nil {
		t.Fatal(err)
	}
	fakeInChroot(root, []string{"apt-get", "install", "--", "linux-image-amd64", "ostree-boot"})
	trace := t.TempDir() + "/trace"
	if err := fakeStrace([]string{"strace", "-o", trace, "chroot", root, "dracut", initramfsPath(kver)}); err != nil {
		t.Fatal(err)
	}
	m, err := dracuttrace.FromTrace(trace, root, kver)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/usr/bin/plymouth":           "absent:/usr/bin/plymouth",
		"/bin/true":                   "link:/bin->usr/bin file:644:",
		"/usr/lib/modules/" + kver:    "dir",
		"ls:/usr/lib/modules/" + kver: "kernel",
	}
	for p, w := range want {
		if got := m.Paths[p]; !strings.HasPrefix(got, w) {
			t.Errorf("%s: %q, want %q...", p, got, w)
		}
	}
	for p := range m.Paths {
		if strings.Contains(p, "ld.so.cache") || strings.HasPrefix(p, "/var/tmp") || p == initramfsPath(kver) {
			t.Errorf("%s should not be in the manifest", p)
		}
	}
	if why := m.Differs(root); why != "" {
		t.Errorf("the tree differs from its own manifest: %s", why)
	}
}

// A trace that cannot be read costs the image's reuse, not the build: the
// image dracut made ships, nothing is stored, and the next build traces again.
func TestUnreadableTraceStoresNothing(t *testing.T) {
	e := newTestEnv(t, bootable...)
	e.runner.emptyTrace = true
	rep := e.mustBuild()
	if img := initramfsOf(t, e, rep.Commit); img == "" {
		t.Error("the commit has an empty initramfs")
	}
	if n := storedInitramfs(t, e); n != 0 {
		t.Errorf("%d initramfs images stored from an empty trace", n)
	}
	e.runner.emptyTrace = false
	e.setPackages(append(bootable, "hello")...)
	e.mustBuild()
	if n := e.runner.count("strace"); n != 2 {
		t.Errorf("dracut ran %d times: the second build had nothing to reuse and should trace again", n)
	}
	if n := storedInitramfs(t, e); n != 1 {
		t.Errorf("%d initramfs images stored after a readable trace, want 1", n)
	}
}

func storedInitramfs(t *testing.T, e *testEnv) int {
	t.Helper()
	s, _, err := Open(context.Background(), e.cfg, []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, _ := s.idx.Entries()
	n := 0
	for _, en := range entries {
		if en.Kind == StepInitramfs {
			n++
		}
	}
	return n
}

// DEBIAN_ATOMIC_INITRAMFS_CACHE=0: dracut runs untraced every time, nothing is stored.
func TestInitramfsCacheOff(t *testing.T) {
	e := newTestEnv(t, bootable...)
	e.cfg.NoInitramfsCache = true
	e.mustBuild()
	e.setPackages(append(bootable, "hello")...)
	e.mustBuild()
	if n, d := e.runner.count("strace"), e.runner.count("chroot"); n != 0 || !strings.Contains(strings.Join(e.runner.calls, "\n"), " dracut --force") {
		t.Errorf("strace ran %d times (chroot %d): want dracut untraced", n, d)
	}
	if n := storedInitramfs(t, e); n != 0 {
		t.Errorf("%d initramfs images stored with the cache off", n)
	}
}
