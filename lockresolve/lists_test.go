package lockresolve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// listsDir writes an apt lists folder: the suite with a and b, the security
// archive with b's fix.
func listsDir(t *testing.T, root string) string {
	dir := filepath.Join(root, "var/lib/apt/lists")
	os.MkdirAll(dir, 0o755)
	files := map[string]string{
		"m_debian_dists_trixie_InRelease":                                    "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nLabel: Debian\nSuite: stable\nVersion: 13.2\n",
		"m_debian_dists_trixie_main_binary-amd64_Packages":                   "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b\n\nPackage: b\nVersion: 1\nArchitecture: amd64\n",
		"m_debian-security_dists_trixie-security_InRelease":                  "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nVersion: 13\n",
		"m_debian-security_dists_trixie-security_main_binary-amd64_Packages": "Package: b\nVersion: 1+deb13u1\nArchitecture: amd64\n\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestListsIndexAndPockets(t *testing.T) {
	dir := listsDir(t, t.TempDir())
	all, err := readLists(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := all.releasesOf("b 1+deb13u1"); len(got) != 1 || got[0] != "Debian-Security:13/stable-security" {
		t.Errorf("b's fix is offered by %v", got)
	}
	if got := all.releasesOf("a 1"); len(got) != 1 || got[0] != "Debian:13.2/stable" {
		t.Errorf("a is offered by %v", got)
	}
	status, err := all.status([]string{"a 1 amd64"})
	if err != nil || string(status) != "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b\nStatus: install ok installed\n\n" {
		t.Errorf("status %q, %v", status, err)
	}
	if _, err := all.status([]string{"a 2 amd64"}); err == nil || !strings.Contains(err.Error(), "a 2") {
		t.Errorf("a version the lists lack: %v", err)
	}
	pockets, err := readLists(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(pockets.files) != 1 || len(pockets.at) != 1 || pockets.releasesOf("a 1") != nil {
		t.Errorf("the pockets' lists alone: %d files, %v", len(pockets.files), pockets.at)
	}
}

// A layer's base status is made from the lists once; the next re-lock on
// the same lists reads it back without the lists.
func TestStatusIsKeptForUnchangedLists(t *testing.T) {
	root := t.TempDir()
	dir := listsDir(t, root)
	r := &Resolver{dir: root, log: zerolog.Nop(), origins: map[string]origin{}}
	os.WriteFile(r.stampFile(), []byte("stamp 1\n"), 0o644)
	first, err := r.statusFor([]string{"a 1 amd64"})
	if err != nil || !strings.Contains(string(first), "Depends: b") {
		t.Fatalf("%q %v", first, err)
	}
	os.RemoveAll(dir)
	r.all = nil
	if again, err := r.statusFor([]string{"a 1 amd64"}); err != nil || string(again) != string(first) {
		t.Errorf("kept status: %q %v", again, err)
	}
	// New lists (another stamp): made afresh, and here the lists are gone.
	os.WriteFile(r.stampFile(), []byte("stamp 2\n"), 0o644)
	if _, err := r.statusFor([]string{"a 1 amd64"}); err == nil {
		t.Error("a status for new lists came from the old ones")
	}
}
