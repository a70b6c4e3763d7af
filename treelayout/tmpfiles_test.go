package treelayout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTmpfilesLinesUnderLinksPointIntoVar(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib/tmpfiles.d")
	os.MkdirAll(lib, 0o755)
	files := map[string]string{
		"home.conf":      "# Home\nQ /home 0755 - - -\nq /srv 0755 - - -\n",
		"provision.conf": "f^ /etc/hosts - - - - network.hosts\nd- /root :0700 root :root -\nd- /root/.ssh :0700 root :root -\n",
		"tmp.conf":       "D /tmp 1777 root root -\nq /var/tmp 1777 root root 30d\nf /var/lib/x 0644 - - -\n",
		"mine.conf":      "d /home/shared 0755 - - -\n", // the tree overrides it itself
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(lib, n), []byte(c), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "etc/tmpfiles.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/tmpfiles.d/mine.conf"), []byte("# the admin's\n"), 0o644)
	os.WriteFile(filepath.Join(root, TmpfilesConf), []byte("d /var/home 0755 - - -\nd /var/roothome 0700 - - -\nd /var/opt 0755 - - -\nd /var/srv 0755 - - -\nd /var/tmp 1777 0 0 - -\nC /var/lib/x 0644 0 0 - /usr/share/factory/var/lib/x\n"), 0o644)

	if err := retargetTmpfiles(root); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	home := read("etc/tmpfiles.d/home.conf")
	if !strings.Contains(home, "Q /var/home 0755 - - -\nq /var/srv 0755 - - -\n") || strings.Contains(home, " /home ") {
		t.Errorf("home.conf override:\n%s", home)
	}
	prov := read("etc/tmpfiles.d/provision.conf")
	for _, want := range []string{"f^ /etc/hosts - - - - network.hosts", "d- /var/roothome :0700 root :root -", "d- /var/roothome/.ssh :0700"} {
		if !strings.Contains(prov, want) {
			t.Errorf("provision.conf override lacks %q:\n%s", want, prov)
		}
	}
	if read("usr/lib/tmpfiles.d/home.conf") != files["home.conf"] {
		t.Error("the package's own file was changed")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/tmpfiles.d/tmp.conf")); err == nil {
		t.Error("tmp.conf names no link, yet got an override")
	}
	if read("etc/tmpfiles.d/mine.conf") != "# the admin's\n" {
		t.Error("the tree's own override was replaced")
	}
	// One line per path: the packages' folder lines replace the builder's
	// own; a file the tree had is still copied from the factory.
	if own := read(TmpfilesConf); own != "d /var/opt 0755 - - -\nC /var/lib/x 0644 0 0 - /usr/share/factory/var/lib/x\n" {
		t.Errorf("debian-atomic.conf:\n%s", own)
	}
}

func TestDefaultLocaleOnlyWhereNoneIsSet(t *testing.T) {
	read := func(root, p string) string {
		b, _ := os.ReadFile(filepath.Join(root, p)) // through links, as pam_env reads it
		return string(b)
	}
	// trixie: /etc/default/locale is a link to ../locale.conf, which nothing makes.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/default"), 0o755)
	os.Symlink("../locale.conf", filepath.Join(root, "etc/default/locale"))
	if err := defaultLocale(root); err != nil {
		t.Fatal(err)
	}
	if got := read(root, "etc/default/locale"); !strings.Contains(got, "\nLANG=C.UTF-8\n") {
		t.Errorf("through trixie's link: %q", got)
	}
	// No file and no link: both made.
	root = t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := defaultLocale(root); err != nil {
		t.Fatal(err)
	}
	if got := read(root, "etc/default/locale"); !strings.Contains(got, "\nLANG=C.UTF-8\n") {
		t.Errorf("made afresh: %q", got)
	}
	// The tree's own choice stays: locales' file, or a locale.conf.
	for _, own := range []string{"etc/default/locale", "etc/locale.conf"} {
		root = t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc/default"), 0o755)
		os.WriteFile(filepath.Join(root, own), []byte("LANG=de_DE.UTF-8\n"), 0o644)
		if err := defaultLocale(root); err != nil {
			t.Fatal(err)
		}
		if got := read(root, own); got != "LANG=de_DE.UTF-8\n" {
			t.Errorf("%s was replaced: %q", own, got)
		}
		if own == "etc/default/locale" {
			if _, err := os.Lstat(filepath.Join(root, "etc/locale.conf")); err == nil {
				t.Error("a locale.conf was added beside locales' own file")
			}
		}
	}
}
