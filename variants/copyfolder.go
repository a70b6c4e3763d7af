package variants

import (
	"os"
	"path/filepath"
	"slices"
)

// CopyFolder copies the regular files of a variants folder (variant files,
// the lock, settings) into dst, leaving out the names in skip: benchmarks
// edit such a copy without touching the user's variants.
func CopyFolder(src, dst string, skip ...string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || slices.Contains(skip, e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
