package variants

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// AddPackage puts pkg first in the block package list of variant name's
// file in dir, keeping the rest of the file (comments, order) as it is:
// benchmarks measure "after adding one package" on such a copy.
func AddPackage(dir, name, pkg string) error {
	file := filepath.Join(dir, name+".yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	text := strings.Replace(string(data), "packages:\n", "packages:\n  - "+pkg+"\n", 1)
	if text == string(data) {
		return fmt.Errorf("%s: no block list of packages (a line \"packages:\") to add %s to", file, pkg)
	}
	return os.WriteFile(file, []byte(text), 0o644)
}
