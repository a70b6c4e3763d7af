package variants

import (
	"os"
	"path/filepath"
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
