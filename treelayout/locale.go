package treelayout

import (
	"os"
	"path/filepath"
)

// defaultLocale sets C.UTF-8, which glibc has built in, in a tree that sets
// no locale: otherwise LANG is unset in every session (pam_env reads
// /etc/default/locale, which trixie ships as a link to ../locale.conf, a
// file nothing makes), programs fall back to ASCII (Qt ones say so), and
// locale-gen cannot add a locale on a read-only /usr. A tree with its own
// locale (locales' /etc/default/locale, or /etc/locale.conf) keeps it.
func defaultLocale(root string) error {
	conf, def := filepath.Join(root, "etc/locale.conf"), filepath.Join(root, "etc/default/locale")
	if fi, err := os.Lstat(def); err == nil && fi.Mode().IsRegular() {
		return nil
	}
	if _, err := os.Lstat(conf); err == nil {
		return nil
	}
	if err := os.WriteFile(conf, []byte("# Made by debian-atomic: C.UTF-8 is built into glibc; another locale needs\n# locales-all in the variant (locale-gen cannot write to a read-only /usr).\nLANG=C.UTF-8\n"), 0o644); err != nil {
		return err
	}
	if _, err := os.Lstat(def); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(def), 0o755); err != nil {
			return err
		}
		return os.Symlink("../locale.conf", def)
	}
	return nil
}
