// Package debcache holds what the shared package cache's files are called
// and how a build gets a folder of them: apt's own file names for locked
// packages, and a private folder of hard links for one install.
package debcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Link fills dir with hard links to the packages of the shared cache
// debs. It reports false when debs is on another filesystem.
func Link(debs, dir string) (bool, error) {
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o755); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(debs)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		err := os.Link(filepath.Join(debs, e.Name()), filepath.Join(dir, e.Name()))
		switch {
		case errors.Is(err, syscall.EXDEV):
			return false, nil
		case err != nil && !errors.Is(err, os.ErrExist):
			return false, fmt.Errorf("linking the package cache's %s: %w", e.Name(), err)
		}
	}
	return true, nil
}

// Missing lists the locked packages ("name version arch") whose file
// dir lacks.
func Missing(dir string, locked []string) []string {
	var out []string
	for _, l := range locked {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, FileName(f[0], f[1], f[2]))); err != nil {
			out = append(out, f[0]+"="+f[1])
		}
	}
	return out
}

// FileName is the name apt gives a package's file in its archives folder
// (pkgAcqArchive): name_version_arch.deb, each part with '_', ':', '%' and
// unprintable bytes written %xx, the architecture also '.'.
func FileName(name, version, arch string) string {
	return aptQuote(name, "_:") + "_" + aptQuote(version, "_:") + "_" + aptQuote(arch, "_:.") + ".deb"
}

// aptQuote is apt's QuoteString.
func aptQuote(s, bad string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(bad, c) >= 0 || c == '%' || c <= 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
