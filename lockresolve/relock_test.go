package lockresolve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/internal/e2etest"
	"github.com/debian-atomic/builder/variants"
)

// fakeApt stands in for apt-get in a resolver's private root: update copies
// the archive's InRelease into the lists with a Packages list beside it;
// install --print-uris answers every asked package not in the status it is
// given, and, as apt does, rebuilds the cache it is pointed at when the
// cache is missing or older than the status.
type fakeApt struct {
	archive string // the served InRelease
	mu      sync.Mutex
	updates int
	// per install: the status file and whether the cache was rebuilt
	statuses []string
	rebuilds int
}

func (f *fakeApt) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var conf string
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, "APT_CONFIG="); ok {
			conf = v
		}
	}
	root := filepath.Dir(conf)
	opts := map[string]string{}
	var args []string
	for i := 2; i < len(c.Args); i++ {
		if c.Args[i] == "-o" && i+1 < len(c.Args) {
			k, v, _ := strings.Cut(c.Args[i+1], "=")
			opts[k] = v
			i++
		} else if !strings.HasPrefix(c.Args[i], "-") {
			args = append(args, c.Args[i])
		}
	}
	switch {
	case c.Args[0] == "apt-get" && args[0] == "update":
		f.updates++
		lists := filepath.Join(root, "var/lib/apt/lists")
		data, err := os.ReadFile(f.archive)
		if err != nil {
			return nil, err
		}
		os.WriteFile(filepath.Join(lists, "m_dists_trixie_InRelease"), data, 0o644)
		var packages strings.Builder
		for _, p := range []string{"base-files", "apt", "probe-a", "probe-b", "probe-c"} {
			fmt.Fprintf(&packages, "Package: %s\nVersion: 1\nArchitecture: amd64\n\n", p)
		}
		return nil, os.WriteFile(filepath.Join(lists, "m_dists_trixie_main_binary-amd64_Packages"), []byte(packages.String()), 0o644)
	case c.Args[0] == "apt-get" && args[0] == "install":
		status, cache := opts["Dir::State::status"], opts["Dir::Cache::pkgcache"]
		st, err := os.Stat(status)
		if err != nil {
			return nil, fmt.Errorf("apt: the status %s: %w", status, err)
		}
		if ci, err := os.Stat(cache); err != nil || ci.ModTime().Before(st.ModTime()) {
			f.rebuilds++
			os.WriteFile(cache, []byte("cache of "+status), 0o644)
		}
		f.statuses = append(f.statuses, status)
		installed, _ := os.ReadFile(status)
		var out strings.Builder
		for _, p := range args[1:] {
			if p == "--" {
				continue
			}
			if p == "?essential" {
				p = "base-files"
			}
			if !strings.Contains(string(installed), "Package: "+p+"\n") {
				fmt.Fprintf(&out, "'file:///m/%s_1_amd64.deb' %s_1_amd64.deb 1 SHA256:0\n", p, p)
			}
		}
		return []byte(out.String()), nil
	}
	return nil, fmt.Errorf("fake apt: unexpected %v", c.Args)
}

// Re-locking a layer after adding a package runs no apt-get update while
// the archive's InRelease is unchanged, and points apt at the same kept
// base status, never rewritten, so its cache is not rebuilt; when the
// archive moves on, the lists are read again, the lock records the new
// InRelease and the base status is made afresh from the new lists.
func TestRelockKeepsListsAndCacheUntilTheArchiveMovesOn(t *testing.T) {
	dir := t.TempDir()
	inRelease := filepath.Join(dir, "debian", "dists", "trixie", "InRelease")
	os.MkdirAll(filepath.Dir(inRelease), 0o755)
	os.WriteFile(inRelease, []byte("Origin: Debian\nSuite: trixie\nDate: Sat, 08 Nov 2025 09:09:53 UTC\n"), 0o644)
	t.Setenv(variants.MirrorEnv, "")
	t.Setenv(variants.SecurityMirrorEnv, "")
	apt := &fakeApt{archive: inRelease}
	cfg := Config{VariantsDir: filepath.Join(dir, "variants"), CacheDir: filepath.Join(dir, "cache"), Runner: apt, Log: zerolog.New(zerolog.NewTestWriter(t))}
	os.MkdirAll(cfg.VariantsDir, 0o755)
	os.WriteFile(filepath.Join(cfg.VariantsDir, "b.yaml"), []byte("name: b\nsuite: trixie\narchitecture: amd64\nmirror: file://"+dir+"/debian\n"+
		"updates: []\nos-name: debian\nref: t/b\npackages:\n  - probe-a\n"), 0o644)
	ctx := context.Background()
	relock := func(add string) *variants.Lock {
		t.Helper()
		if add != "" {
			if err := variants.AddPackage(cfg.VariantsDir, "b", add); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Update(ctx, cfg, false); err != nil {
			t.Fatal(err)
		}
		lock, err := variants.ReadLock(cfg.VariantsDir)
		if err != nil {
			t.Fatal(err)
		}
		return lock
	}

	first := relock("")
	if apt.updates != 1 || len(apt.statuses) != 2 || apt.rebuilds != 2 {
		t.Fatalf("locking afresh: %d updates, statuses %v, %d cache rebuilds; want 1, bootstrap's and layer's, 2", apt.updates, apt.statuses, apt.rebuilds)
	}
	base := apt.statuses[1]
	info, _ := os.Stat(base)

	second := relock("probe-b")
	if apt.updates != 1 {
		t.Errorf("re-locking with the archive unchanged ran apt-get update")
	}
	if len(apt.statuses) != 3 || apt.statuses[2] != base || apt.rebuilds != 2 {
		t.Errorf("re-locking: statuses %v, %d cache rebuilds; want the kept %s and no rebuild", apt.statuses, apt.rebuilds, base)
	}
	if again, _ := os.Stat(base); !again.ModTime().Equal(info.ModTime()) {
		t.Error("the kept base status was rewritten")
	}
	if got := second.Variants["b"].Packages; !slices.Equal(got, []string{"probe-a 1 amd64", "probe-b 1 amd64"}) {
		t.Errorf("re-locked layer %v", got)
	}
	if !maps(first.Archives, second.Archives) {
		t.Errorf("the lock's archives changed with the archive unchanged: %v -> %v", first.Archives, second.Archives)
	}

	// The archive moves on: noticed, the lists read again, a new base status.
	os.WriteFile(inRelease, []byte("Origin: Debian\nSuite: trixie\nDate: Sat, 15 Nov 2025 09:09:53 UTC\n"), 0o644)
	third := relock("probe-c")
	if apt.updates != 2 {
		t.Errorf("a changed InRelease did not run apt-get update (%d updates)", apt.updates)
	}
	if last := apt.statuses[len(apt.statuses)-1]; last == base {
		t.Error("the layer was resolved on the status made from the old lists")
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("the old lists' base status is still kept: %v", err)
	}
	if maps(second.Archives, third.Archives) {
		t.Errorf("the lock does not record the archive's new InRelease: %v", third.Archives)
	}
	if got := third.Variants["b"].Packages; !slices.Equal(got, []string{"probe-a 1 amd64", "probe-b 1 amd64", "probe-c 1 amd64"}) {
		t.Errorf("re-locked layer %v", got)
	}
}

func maps(a, b map[string]variants.ArchiveState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestE2ERelockEqualsFresh re-locks a layer against the real archive after
// adding a package, twice, in a warm cache, and checks the lock equals one
// resolved from scratch in an empty cache with the same packages: keeping
// the lists, the base status and apt's cache changes no answer. The
// re-locks run no apt-get update, and the second maps the apt cache the
// first made (same file). About 30-60 s, two downloads of trixie's lists.
func TestE2ERelockEqualsFresh(t *testing.T) {
	e2etest.Gate(t, "apt-get")
	ctx := context.Background()
	tiny, err := os.ReadFile(filepath.Join("..", "testdata", "variants", "tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runner := &countingRunner{real: run.Exec{}}
	config := func(adds ...string) Config {
		vdir := t.TempDir()
		os.WriteFile(filepath.Join(vdir, "tiny.yaml"), tiny, 0o644)
		for _, p := range adds {
			if err := variants.AddPackage(vdir, "tiny", p); err != nil {
				t.Fatal(err)
			}
		}
		return Config{VariantsDir: vdir, CacheDir: t.TempDir(), Runner: runner, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)}
	}
	lock := func(cfg Config) *variants.Lock {
		t.Helper()
		if _, err := Update(ctx, cfg, false); err != nil {
			t.Fatal(err)
		}
		l, err := variants.ReadLock(cfg.VariantsDir)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	warm := config()
	lock(warm)
	updates := runner.count("apt-get -q update")
	relock := func(pkg string) (*variants.Lock, string) {
		if err := variants.AddPackage(warm.VariantsDir, "tiny", pkg); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		l := lock(warm)
		t.Logf("re-locked after adding %s in %.2f s", pkg, time.Since(start).Seconds())
		caches, _ := filepath.Glob(filepath.Join(warm.CacheDir, "apt", "*", "status", "*", "*"+cacheSuffix))
		var newest string
		var at time.Time
		for _, c := range caches {
			if i, err := os.Stat(c); err == nil && i.ModTime().After(at) {
				newest, at = c, i.ModTime()
			}
		}
		return l, newest
	}
	_, cache1 := relock("curl")
	first, _ := os.Stat(cache1)
	relocked, cache2 := relock("jq")
	if runner.count("apt-get -q update") != updates {
		t.Error("re-locking with the archive unchanged ran apt-get update")
	}
	if second, err := os.Stat(cache2); err != nil || cache2 != cache1 || !os.SameFile(first, second) {
		t.Errorf("the second re-lock did not map the apt cache the first made: %s then %s (%v)", cache1, cache2, err)
	}
	fresh := lock(config("curl", "jq"))
	if !maps(relocked.Archives, fresh.Archives) {
		t.Skipf("the archive moved on during the test (%v, then %v): nothing to compare", relocked.Archives, fresh.Archives)
	}
	if got, want := relocked.Variants["tiny"].Packages, fresh.Variants["tiny"].Packages; !slices.Equal(got, want) {
		t.Errorf("re-locked layer differs from a fresh resolution:\n%v\nwant\n%v", variants.PackageDiff(want, got), want)
	}
	if !slices.Contains(relocked.Variants["tiny"].Packages, "curl "+version(fresh, "curl")+" amd64") {
		t.Errorf("curl is not in the re-locked layer: %v", relocked.Variants["tiny"].Packages)
	}
	for id, want := range fresh.Bootstraps {
		if got := relocked.Bootstraps[id]; !slices.Equal(got, want) {
			t.Errorf("bootstrap %s differs: %v", id, variants.PackageDiff(want, got))
		}
	}
}

// version is name's locked version in l's tiny layer.
func version(l *variants.Lock, name string) string {
	for _, e := range l.Variants["tiny"].Packages {
		if f := strings.Fields(e); f[0] == name {
			return f[1]
		}
	}
	return ""
}
