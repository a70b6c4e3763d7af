package remotecache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
)

func testKey(kind string) (cache.Key, []cache.Field) {
	pre := cache.NewPreimage(kind, 1).Add("parent", strings.Repeat("a", 64)).Add("packages", "hello\nzsh")
	return pre.Sum(), pre.Fields()
}

var (
	resultC = strings.Repeat("1", 64)
	entryC  = strings.Repeat("2", 64)
)

func goodEntry(kind string) Entry {
	key, fields := testKey(kind)
	return Entry{Key: key, Kind: kind, Step: kind, Result: resultC, ResultSize: 321, TreeSize: 4096, Inputs: fields}
}

func TestEntryRoundTripAndMismatches(t *testing.T) {
	e := goodEntry(build.StepInstall)
	meta, err := e.Strings()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEntry(meta, build.StepInstall, e.Key, resultC)
	if err != nil || got.ResultSize != 321 || got.TreeSize != 4096 || len(got.Inputs) != len(e.Inputs) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	otherKey, _ := testKey(build.StepPostprocess)
	for name, tc := range map[string]struct {
		edit      func(map[string]string)
		kind      string
		key       cache.Key
		parent    string
		wantInErr string
	}{
		"another key asked":  {nil, build.StepInstall, otherKey, resultC, "is for key"},
		"another kind":       {nil, build.StepPostprocess, e.Key, resultC, "result, not postprocess"},
		"parent differs":     {nil, build.StepInstall, e.Key, entryC, "its parent is"},
		"inputs tampered":    {func(m map[string]string) { m[MetaInputs] = strings.Replace(m[MetaInputs], "zsh", "vim", 1) }, build.StepInstall, e.Key, resultC, "hash to"},
		"inputs not json":    {func(m map[string]string) { m[MetaInputs] = "[" }, build.StepInstall, e.Key, resultC, "not a list"},
		"size missing":       {func(m map[string]string) { delete(m, MetaResultSize) }, build.StepInstall, e.Key, resultC, "not a size"},
		"tree size negative": {func(m map[string]string) { m[MetaTreeSize] = "-1" }, build.StepInstall, e.Key, resultC, "not a size"},
		"result names other": {func(m map[string]string) { m[MetaResult] = entryC }, build.StepInstall, e.Key, resultC, "names result"},
	} {
		m, _ := e.Strings()
		if tc.edit != nil {
			tc.edit(m)
		}
		if _, err := ParseEntry(m, tc.kind, tc.key, tc.parent); err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: got %v, want an error with %q", name, err, tc.wantInErr)
		}
	}
}

// fakeOstree answers the ostree commands Fetch runs; pullErr fails pulls.
type fakeOstree struct {
	calls   []string
	pullErr string
	meta    map[string]string
}

func (f *fakeOstree) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	line := strings.Join(c.Args, " ")
	f.calls = append(f.calls, line)
	arg := func(i int) string { return c.Args[i] }
	switch {
	case arg(2) == "pull" && f.pullErr != "":
		return nil, &run.Error{Cmd: line, Err: errors.New("exit status 1"), Stderr: f.pullErr}
	case arg(2) == "rev-parse" && strings.HasSuffix(arg(3), "^"):
		return []byte(resultC + "\n"), nil
	case arg(2) == "rev-parse":
		return []byte(entryC + "\n"), nil
	case arg(2) == "show":
		k := strings.TrimPrefix(arg(3), "--print-metadata-key=")
		v, ok := f.meta[k]
		if !ok {
			return nil, errors.New("no such metadata key")
		}
		return []byte(ostreeops.GVariantString(v) + "\n"), nil
	}
	return nil, nil
}

func (f *fakeOstree) count(sub string) int {
	n := 0
	for _, c := range f.calls {
		if strings.Contains(c, sub) {
			n++
		}
	}
	return n
}

func fetchOnce(t *testing.T, r *Remote, f *fakeOstree, kind string) (build.RemoteResult, error) {
	store := ostreeops.Repo{Path: t.TempDir(), Runner: f}
	if r.URL == "" {
		// A remote that answers: a folder with an OSTree config.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config"), []byte("[core]\nrepo_version=1\nmode=archive-z2\n"), 0o644)
		r.URL = "file://" + dir
	}
	key, _ := testKey(kind)
	return r.Fetch(context.Background(), store, kind, key)
}

func TestFetchChecksTheEntryAndSetsTheStoreRef(t *testing.T) {
	meta, _ := goodEntry(build.StepInstall).Strings()
	f := &fakeOstree{meta: meta}
	r := &Remote{KeyFile: "/k.gpg", ProbeTimeout: DefaultProbeTimeout, PullTimeout: DefaultPullTimeout}
	res, err := fetchOnce(t, r, f, build.StepInstall)
	if err != nil || res.Result != resultC || res.Size != 321 || res.TreeSize != 4096 {
		t.Fatalf("fetch: %+v %v", res, err)
	}
	if f.count("--commit-metadata-only --depth=1") != 0 || f.count("pull --depth=1 --network-retries=0 --commit-metadata-only") != 1 ||
		f.count("pull --depth=1 --network-retries=0 --disable-fsync "+RemoteName+" "+entryC) != 1 {
		t.Errorf("want a pull of the commits by ref, then of the checked entry by checksum: %v", f.calls)
	}
	if f.count("remote add --set=gpg-verify=true --set=gpg-verify-summary=false --gpg-import=/k.gpg") != 1 {
		t.Errorf("remote not configured with GPG verification: %v", f.calls)
	}
	key, _ := testKey(build.StepInstall)
	if f.count("refs --force --create=cache/install/"+string(key)+" "+resultC) != 1 {
		t.Errorf("store ref not set: %v", f.calls)
	}
	// An entry for another kind (a server swapping refs) is refused before
	// any tree is pulled.
	f2 := &fakeOstree{meta: meta}
	if _, err := fetchOnce(t, r, f2, build.StepPostprocess); err == nil || errors.Is(err, build.ErrRemoteMiss) {
		t.Fatalf("a mismatched entry was accepted: %v", err)
	}
	if f2.count("pull --depth=1 --network-retries=0 "+RemoteName) != 0 {
		t.Errorf("trees pulled for a refused entry: %v", f2.calls)
	}
}

func TestFetchMissIsQuietFailureTurnsTheRemoteOff(t *testing.T) {
	r := &Remote{KeyFile: "/k.gpg", ProbeTimeout: DefaultProbeTimeout, PullTimeout: DefaultPullTimeout}
	f := &fakeOstree{pullErr: "error: Server returned HTTP 404"}
	for i := 0; i < 2; i++ {
		if _, err := fetchOnce(t, r, f, build.StepInstall); !errors.Is(err, build.ErrRemoteMiss) {
			t.Fatalf("a key the remote lacks: %v, want a quiet miss", err)
		}
	}
	if f.count(" pull ") != 2 {
		t.Errorf("a miss must not turn the remote off: %v", f.calls)
	}
	f = &fakeOstree{pullErr: "error: Server returned HTTP 500"}
	_, err := fetchOnce(t, r, f, build.StepInstall)
	if err == nil || errors.Is(err, build.ErrRemoteMiss) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("a failing remote: %v, want an error to warn about", err)
	}
	calls := len(f.calls)
	if _, err := fetchOnce(t, r, f, build.StepPostprocess); !errors.Is(err, build.ErrRemoteMiss) || len(f.calls) != calls {
		t.Fatalf("after a failure the remote is asked again (%v, %d commands)", err, len(f.calls)-calls)
	}
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := build.DefaultConfig(dir, zerolog.Nop())
	cfg.VariantsDir = filepath.Join(dir, "variants")
	key := filepath.Join(dir, "k.gpg")
	os.WriteFile(key, []byte("key"), 0o644)
	t.Setenv("DEBIAN_ATOMIC_PUBLISH", "")
	t.Setenv(URLEnv, "")
	if r, err := FromEnv(cfg); r != nil || err != nil {
		t.Fatalf("unset: %v %v", r, err)
	}
	t.Setenv(KeyEnv, key)
	for _, bad := range []string{"ftp://x/", "http://", "not a url", "127.0.0.1:8080"} {
		t.Setenv(URLEnv, bad)
		if _, err := FromEnv(cfg); err == nil || !strings.Contains(err.Error(), URLEnv) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	t.Setenv(URLEnv, "https://cache.example.org/debian-atomic/")
	if r, err := FromEnv(cfg); err != nil || r.KeyFile != key || r.URL != "https://cache.example.org/debian-atomic/" {
		t.Fatalf("good: %+v %v", r, err)
	}
	t.Setenv(KeyEnv, "")
	_, err := FromEnv(cfg)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(cfg.CacheDir, "publish", "debian-atomic.gpg")) || !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("no key file: %v", err)
	}
}

func TestFetchFromARemoteThatIsNotThere(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for name, url := range map[string]string{"404": srv.URL + "/", "no folder": "file:///nonexistent/cache", "refused": "http://127.0.0.1:1/"} {
		f := &fakeOstree{}
		r := &Remote{URL: url, KeyFile: "/k.gpg", ProbeTimeout: 5 * time.Second, PullTimeout: DefaultPullTimeout}
		if _, err := fetchOnce(t, r, f, build.StepBootstrap); err == nil || errors.Is(err, build.ErrRemoteMiss) {
			t.Errorf("%s: %v, want an error to warn about", name, err)
		}
		if len(f.calls) != 0 {
			t.Errorf("%s: ran %v before the remote answered", name, f.calls)
		}
	}
}
