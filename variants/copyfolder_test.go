package variants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopyFolderCopiesFilesButSkipped(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	for _, f := range []string{"a.yaml", LockFile, "publish.yaml"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(src, "sub"), 0o755)
	if err := CopyFolder(src, dst, "publish.yaml"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.yaml", LockFile} {
		if data, err := os.ReadFile(filepath.Join(dst, f)); err != nil || string(data) != f {
			t.Errorf("%s: %q %v", f, data, err)
		}
	}
	for _, f := range []string{"publish.yaml", "sub"} {
		if _, err := os.Stat(filepath.Join(dst, f)); !os.IsNotExist(err) {
			t.Errorf("%s was copied", f)
		}
	}
}

// AddPackage edits the file in place, comments kept; a flow list is refused
// with the file named.
func TestAddPackage(t *testing.T) {
	dir := t.TempDir()
	body := "name: v\n# why\npackages:\n  - hello # greet\n"
	if err := os.WriteFile(filepath.Join(dir, "v.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AddPackage(dir, "v", "tmux"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "v.yaml"))
	if want := "name: v\n# why\npackages:\n  - tmux\n  - hello # greet\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.yaml"), []byte("name: f\npackages: [hello]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AddPackage(dir, "f", "tmux"); err == nil || !strings.Contains(err.Error(), "f.yaml") {
		t.Errorf("a flow list: %v, want an error naming f.yaml", err)
	}
}
