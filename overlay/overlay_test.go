package overlay

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/mountinfo"
	"github.com/debian-atomic/builder/treelayout"
	"golang.org/x/sys/unix"
)

// A step on an overlay over a linked tree: whatever it does, the files the
// tree shares with the store never change, and after apply the tree is what
// the step saw.
func TestOverlayKeepsSharedFilesAndAppliesChanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	dir := t.TempDir()
	objects, lower := filepath.Join(dir, "objects"), filepath.Join(dir, "lower")
	// "objects" stands for the store: lower holds hardlinks to its files.
	files := map[string]string{
		"etc/passwd": "root\n", "etc/shells": "/bin/sh\n", "var/log/dpkg.log": "old\n",
		"usr/bin/tool": "v1", "usr/share/doc/a/copyright": "a", "usr/share/doc/b/copyright": "b",
		"opt/x/file": "x",
	}
	for p, body := range files {
		obj := filepath.Join(objects, strings.ReplaceAll(p, "/", "_"))
		os.MkdirAll(objects, 0o755)
		os.WriteFile(obj, []byte(body), 0o644)
		os.MkdirAll(filepath.Dir(filepath.Join(lower, p)), 0o755)
		if err := os.Link(obj, filepath.Join(lower, p)); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("usr/bin", filepath.Join(lower, "bin"))

	ctx := context.Background()
	o, err := Mount(ctx, run.Exec{}, lower, filepath.Join(dir, "ovl"))
	if err != nil {
		t.Fatal(err)
	}
	m := func(p string) string { return filepath.Join(o.Merged, p) }
	// What dpkg and maintainer scripts do: append in place, replace by
	// rename, delete, make folders, remove a folder and make it again.
	f, _ := os.OpenFile(m("var/log/dpkg.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("appended\n")
	f.Close()
	os.WriteFile(m("usr/bin/tool.dpkg-new"), []byte("v2"), 0o755)
	os.Rename(m("usr/bin/tool.dpkg-new"), m("usr/bin/tool"))
	os.Remove(m("etc/shells"))
	os.MkdirAll(m("usr/share/doc/c"), 0o755)
	os.WriteFile(m("usr/share/doc/c/copyright"), []byte("c"), 0o644)
	os.RemoveAll(m("usr/share/doc/b"))
	os.MkdirAll(m("usr/share/doc/b"), 0o700)
	os.WriteFile(m("usr/share/doc/b/new"), []byte("new b"), 0o644)
	os.Chmod(m("usr/share/doc/a"), 0o750)
	os.Remove(m("bin"))
	os.MkdirAll(m("bin"), 0o755)
	// Folders of the lower layer are renamed (redirects): into an existing
	// folder, into a new one, within one folder, and changed after the move.
	if err := treelayout.MoveTree(m("etc"), m("usr/etc")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(m("usr/etc/hostname"), []byte("new\n"), 0o644)
	if err := treelayout.MoveTree(m("opt"), m("var/opt")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(m("usr/lib/sysimage"), 0o755)
	if err := treelayout.MoveTree(m("usr/share/doc/a"), m("usr/lib/sysimage/a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m("usr/lib/sysimage/a"), m("usr/lib/sysimage/a2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m("usr/share/doc/c"), m("usr/share/doc/c2")); err != nil {
		t.Fatal(err)
	}
	// xattrs the step sets (setcap writes security.capability) stay; a
	// copied-up file and a new folder carry overlayfs's own, which go.
	unix.Setxattr(m("usr/bin/tool"), "user.cap", []byte("tool"), 0)
	unix.Setxattr(m("usr/share/doc/c2"), "user.dir", []byte("c2"), 0)
	unix.Setxattr(m("usr/share/doc"), "user.merged", []byte("doc"), 0)
	if err := o.Apply(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"usr/bin/tool": "user.cap", "usr/share/doc/c2": "user.dir", "usr/share/doc": "user.merged"} {
		if names, _ := xattrNames(filepath.Join(lower, p)); !slices.Contains(names, want) {
			t.Errorf("%s lost its xattr %s: %v", p, want, names)
		}
	}
	filepath.WalkDir(lower, func(p string, _ os.DirEntry, err error) error {
		names, _ := xattrNames(p)
		for _, n := range names {
			if isOverlayXattr(n) {
				t.Errorf("%s keeps overlayfs's %s", p, n)
			}
		}
		return nil
	})
	if mountinfo.Under(dir) != nil {
		t.Fatal("overlay still mounted after apply")
	}

	for p, body := range files {
		obj := filepath.Join(objects, strings.ReplaceAll(p, "/", "_"))
		if got, _ := os.ReadFile(obj); string(got) != body {
			t.Errorf("the stored object of %s changed: %q", p, got)
		}
	}
	want := map[string]string{
		"var/log/dpkg.log": "old\nappended\n", "usr/bin/tool": "v2", "usr/etc/passwd": "root\n",
		"usr/etc/hostname": "new\n", "usr/lib/sysimage/a2/copyright": "a", "usr/share/doc/c2/copyright": "c",
		"usr/share/doc/b/new": "new b", "var/opt/x/file": "x",
	}
	for p, body := range want {
		if got, err := os.ReadFile(filepath.Join(lower, p)); err != nil || string(got) != body {
			t.Errorf("%s after apply: %q %v", p, got, err)
		}
	}
	for _, p := range []string{"etc", "opt", "usr/share/doc/b/copyright", "usr/etc/shells", "usr/share/doc/a", "usr/lib/sysimage/a", "usr/share/doc/c"} {
		if _, err := os.Lstat(filepath.Join(lower, p)); err == nil {
			t.Errorf("%s should be gone after apply", p)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(lower, "bin")); fi == nil || !fi.IsDir() {
		t.Error("the bin link replaced by a folder is not a folder")
	}
	if fi, _ := os.Stat(filepath.Join(lower, "usr/lib/sysimage/a2")); fi == nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("folder mode not applied: %v", fi)
	}
	if fi, _ := os.Stat(filepath.Join(lower, "usr/share/doc/b")); fi == nil || fi.Mode().Perm() != 0o700 {
		t.Error("the folder made again is not the new one")
	}
	// Unchanged files are still the stored objects: the commit skips them.
	// Renamed folders were renamed, not copied: their files too.
	for _, p := range []string{"usr/lib/sysimage/a2/copyright", "usr/etc/passwd", "var/opt/x/file"} {
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(lower, p), &st)
		if st.Nlink != 2 {
			t.Errorf("%s lost its link to the store (nlink %d): copied, not renamed", p, st.Nlink)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(lower, stagedPrefix+"*")); len(left) > 0 {
		t.Errorf("renamed folders left aside: %v", left)
	}
	var left []string
	filepath.WalkDir(lower, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.Type()&os.ModeCharDevice != 0 {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("whiteouts left in the tree: %v", left)
	}
}

func TestOverlayProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	if !Works(context.Background(), run.Exec{}, filepath.Join(t.TempDir(), "probe")) {
		t.Error("overlayfs does not work here; builds restore trees by copy")
	}
	if Works(context.Background(), pretend{}, filepath.Join(t.TempDir(), "probe")) {
		t.Error("a runner that only pretends to mount passed the probe")
	}
}

// pretend is a runner whose every command succeeds and does nothing.
type pretend struct{}

func (pretend) Run(context.Context, run.Cmd) ([]byte, error) { return nil, nil }
