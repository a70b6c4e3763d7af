package build

import (
	"os"
	"path/filepath"
	"testing"
)

// An installed tree's stored result holds no apt binary cache; the rest of
// /var/cache/apt (the package cache's mount point) stays, and a tree without
// the caches is fine.
func TestDropAptCaches(t *testing.T) {
	root := t.TempDir()
	apt := filepath.Join(root, "var/cache/apt")
	if err := os.MkdirAll(filepath.Join(apt, "archives"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pkgcache.bin", "srcpkgcache.bin", "archives/lock"} {
		if err := os.WriteFile(filepath.Join(apt, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := dropAptCaches(root); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pkgcache.bin", "srcpkgcache.bin"} {
		if _, err := os.Lstat(filepath.Join(apt, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(apt, "archives/lock")); err != nil {
		t.Errorf("dropping the caches removed more: %v", err)
	}
	if err := dropAptCaches(root); err != nil {
		t.Errorf("a tree without the caches: %v", err)
	}
}
