package lockresolve

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

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
// the same lists finds it without the lists, at the same path (apt's cache
// beside it stays valid while the file is not rewritten). New lists make it
// afresh and drop the old lists' statuses.
func TestStatusIsKeptForUnchangedLists(t *testing.T) {
	root := t.TempDir()
	dir := listsDir(t, root)
	r := &Resolver{dir: root, log: zerolog.Nop(), origins: map[string]origin{}}
	os.WriteFile(r.stampFile(), []byte("stamp 1\n"), 0o644)
	path, err := r.statusFor([]string{"a 1 amd64"})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if !strings.Contains(string(first), "Depends: b") {
		t.Fatalf("%q", first)
	}
	info, _ := os.Stat(path)
	os.WriteFile(path+cacheSuffix, []byte("apt's cache"), 0o644)
	os.Rename(dir, dir+".away")
	again, err := r.statusFor([]string{"a 1 amd64"})
	if err != nil || again != path {
		t.Fatalf("kept status: %q %v", again, err)
	}
	if info2, _ := os.Stat(path); !info2.ModTime().Equal(info.ModTime()) {
		t.Error("the kept status was rewritten: apt would rebuild its cache")
	}
	// New lists (another stamp): made afresh, and here the lists are gone.
	os.WriteFile(r.stampFile(), []byte("stamp 2\n"), 0o644)
	if _, err := r.statusFor([]string{"a 1 amd64"}); err == nil {
		t.Error("a status for new lists came from the old ones")
	}
	os.Rename(dir+".away", dir)
	if _, err := r.statusFor([]string{"a 1 amd64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the old lists' status is still kept: %v", err)
	}
	if _, err := os.Stat(path + cacheSuffix); !os.IsNotExist(err) {
		t.Errorf("the old lists' apt cache is still kept: %v", err)
	}
}

// Pruning keeps, for the current lists, the keptBases-1 bases used last
// (a re-use touches the cache, so an old status with a recent cache
// stays), making room for the one being added, and drops other lists'.
func TestKeptStatusesArePruned(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "current")
	os.MkdirAll(cur, 0o755)
	os.MkdirAll(filepath.Join(dir, "older"), 0o755)
	base := time.Now().Add(-time.Hour)
	n := keptBases + 2
	for i := 0; i < n; i++ {
		p := filepath.Join(cur, fmt.Sprintf("s%d", i))
		os.WriteFile(p, nil, 0o644)
		os.WriteFile(p+cacheSuffix, nil, 0o644)
		at := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, at, at)
		os.Chtimes(p+cacheSuffix, at, at)
	}
	// s0 is the oldest status, but its cache was used a moment ago.
	os.Chtimes(filepath.Join(cur, "s0"+cacheSuffix), time.Now(), time.Now())
	pruneStatuses(dir, "current")
	var left []string
	entries, _ := os.ReadDir(cur)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	var want []string
	for _, i := range append([]int{0}, seq(n-keptBases+2, n)...) {
		want = append(want, fmt.Sprintf("s%d", i), fmt.Sprintf("s%d%s", i, cacheSuffix))
	}
	sort.Strings(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("kept %v, want %v", left, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "older")); !os.IsNotExist(err) {
		t.Errorf("the statuses of older lists are kept: %v", err)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
