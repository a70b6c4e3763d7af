package remotecache

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/internal/e2etest"
	"github.com/debian-atomic/builder/internal/e2etest/e2ebuild"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/publish"
)

// End-to-end tests: real builds of the tiny test variant from the Debian
// archive, real ostree and gpg (throwaway keys in temporary GnuPG homes),
// Go file servers on 127.0.0.1. Root; DEBIAN_ATOMIC_E2E=0 or -short skips.
func e2e(t *testing.T) {
	t.Helper()
	e2etest.Gate(t, "ostree", "gpg", "mmdebstrap")
	t.Setenv(publish.Env, "")
	t.Setenv(URLEnv, "")
}

// e2eDebs is this package's own package cache (kept across runs), so its
// builds never wait for other packages' tests holding theirs.
const e2eDebs = "/tmp/debian-atomic-e2e-debs-remotecache"

// logBuf keeps a build's log lines (JSON) to count warnings.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// remoteWarnings are the warnings about the remote cache logged so far.
func (l *logBuf) remoteWarnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "warn" && strings.Contains(line, "remote cache") {
			out = append(out, line)
		}
	}
	return out
}

// machine is one builder's own cache and repository.
type machine struct {
	cfg build.Config
	log *logBuf
}

func newMachine(t *testing.T, variantsDir string) *machine {
	lb := &logBuf{}
	return &machine{cfg: e2ebuild.Config(t, t.TempDir(), variantsDir, e2eDebs, lb), log: lb}
}

func (m *machine) build(t *testing.T, name string) (build.Report, time.Duration) {
	t.Helper()
	start := time.Now()
	reps, err := build.Variants(context.Background(), m.cfg, []string{name})
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return reps[0], time.Since(start)
}

// remote points the machine at a remote cache trusting keyFile.
func (m *machine) remote(url, keyFile string, probe time.Duration) {
	m.cfg.Remote = &Remote{URL: url, KeyFile: keyFile, ProbeTimeout: probe, PullTimeout: 2 * time.Minute, Log: m.cfg.Log}
}

// rootTree is a commit's root directory tree checksum: its content only.
func rootTree(t *testing.T, repo, commit string) string {
	t.Helper()
	out, err := exec.Command("ostree", "--repo="+repo, "ls", "-C", "-d", commit, "/").CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 7 {
		t.Fatalf("ostree ls -C -d %s /: %v\n%s", commit, err, out)
	}
	return f[4]
}

// signer makes a throwaway signing key (short GnuPG home path: gpg-agent's
// socket path is limited) and returns it with its exported public key.
func signer(t *testing.T, cfg build.Config) (*publish.Signer, string) {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	s := &publish.Settings{GnuPGHome: home, Keep: publish.DefaultKeep, Repo: filepath.Join(home, "pub")}
	ctx := context.Background()
	if _, err := publish.Keygen(ctx, cfg, s); err != nil {
		t.Fatal(err)
	}
	k, err := s.Signer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.ExportPublic(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return k, pub
}

// steps checks every store step of a report: all remote hits, or none.
func checkSteps(t *testing.T, who string, rep build.Report, remote bool) {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Step == build.StepCommit {
			continue
		}
		if !s.Cached || s.Remote != remote {
			t.Errorf("%s: step %s cached=%v remote=%v, want a remote hit=%v", who, s.Name, s.Cached, s.Remote, remote)
		}
	}
}

// indexSound checks that every index entry's result is in the store intact.
func indexSound(t *testing.T, m *machine) {
	t.Helper()
	idx, err := cache.OpenIndex(m.cfg.IndexPath(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	entries, _ := idx.Entries()
	store := m.cfg.StoreRepo()
	for k, e := range entries {
		if e.Kind == build.StepCommit {
			continue // in the output repository
		}
		if err := store.VerifyCommit(e.Result, e.Size); err != nil {
			t.Errorf("index entry %s: %v", k.Short(), err)
		}
		if out, err := exec.Command("ostree", "--repo="+store.Path, "fsck", "--quiet", e.Result).CombinedOutput(); err != nil {
			t.Errorf("index entry %s: the store's result fails fsck: %v\n%s", k.Short(), err, out)
		}
	}
}

// objectRequests sums the object files a server sent, by path.
func objectRequests(reqs []publish.Request) (map[string]int64, int64) {
	objs, total := map[string]int64{}, int64(0)
	for _, r := range reqs {
		total += r.Bytes
		if strings.HasPrefix(r.Path, "/objects/") && r.Status == http.StatusOK {
			objs[r.Path] += r.Bytes
		}
	}
	return objs, total
}

func writeFile(t *testing.T, path, body string) {
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2ERemoteCache: A builds minimal (cold) and tiny and pushes into a
// folder a Go file server serves; B, with an empty cache, the same variants
// and lock, builds minimal with every step a remote hit and the same root
// tree, then tiny (its bootstrap is minimal's). A child variant pushed later
// comes over with only its own objects. Then the remote is signed by another
// key, has a tampered object, answers 404, or never answers: each time one
// warning and a correct local build, and an index that holds only verified
// results. About 10 minutes on two idle cores (minimal's cold build is most
// of it); it runs beside the build and image packages in CI.
func TestE2ERemoteCache(t *testing.T) {
	e2e(t)
	ctx := context.Background()
	variantsDir := t.TempDir()
	for from, to := range map[string]string{
		"testdata/variants/tiny.yaml": "tiny.yaml",
		"variants/minimal.yaml":       "minimal.yaml",
		// tiny is locked into minimal's lock: one bootstrap for both.
		"variants/variants.lock": "variants.lock",
	} {
		body, err := os.ReadFile(filepath.Join("..", from))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(variantsDir, to), string(body))
	}
	writeFile(t, filepath.Join(variantsDir, "tinychild.yaml"), "name: tinychild\ninherits: tiny\npackages: [figlet]\nref: test/tinychild\n")

	a := newMachine(t, variantsDir)
	repAm, coldAm := a.build(t, "minimal")
	repA, timeAt := a.build(t, "tiny")
	if repAm.Ran() == 0 || repA.Ran() == 0 {
		t.Fatalf("A's builds ran nothing: %+v %+v", repAm, repA)
	}
	key, pubKey, pushDir, prep := firstPush(t, a)
	// Besides the steps, the initramfs minimal's postprocess stored (tiny
	// has no kernel) goes with them.
	images := 0
	for _, ref := range prep.Pushed {
		if strings.HasPrefix(ref, "cache/"+build.StepInitramfs+"/") {
			images++
		}
	}
	if want := stepKeys(repAm, repA); len(prep.Pushed)-images != want || images != 1 {
		t.Fatalf("push of minimal and tiny: %+v, want their %d step results and minimal's initramfs", prep, want)
	}
	again, err := Push(ctx, a.cfg, key, pushDir)
	if err != nil || len(again.Pushed) != 0 || again.Bytes != 0 {
		t.Fatalf("second push wrote something: %+v %v", again, err)
	}

	srv, url := serve(t, pushDir, a.cfg.Log)

	b := newMachine(t, variantsDir)
	b.remote(url, pubKey, 20*time.Second)
	repBm, timeBm := b.build(t, "minimal")
	checkSteps(t, "B minimal", repBm, true)
	if got, want := rootTree(t, b.cfg.RepoDir, repBm.Commit), rootTree(t, a.cfg.RepoDir, repAm.Commit); got != want {
		t.Errorf("B's minimal root tree %s differs from A's %s", got, want)
	}
	minObjs, minBytes := objectRequests(srv.Requests())
	t.Logf("FIGURE minimal: A cold build %s, push %s (%.1f MiB), B from the remote %s (%.3fx; %s); fetched %d bytes in %d objects (%d requests)",
		coldAm.Round(time.Millisecond), prep.Duration.Round(time.Millisecond), float64(prep.Bytes)/(1<<20),
		timeBm.Round(time.Millisecond), timeBm.Seconds()/coldAm.Seconds(), stepTimes(repBm),
		minBytes, len(minObjs), len(srv.Requests()))

	srv.Reset()
	repB, timeB := b.build(t, "tiny")
	for _, s := range repB.Steps {
		// The bootstrap is minimal's, already here.
		wantRemote := s.Step != build.StepBootstrap
		if s.Step != build.StepCommit && (!s.Cached || s.Remote != wantRemote) {
			t.Errorf("B tiny: step %s cached=%v remote=%v", s.Name, s.Cached, s.Remote)
		}
	}
	if w := b.log.remoteWarnings(); len(w) > 0 {
		t.Errorf("B warned: %v", w)
	}
	treeA, treeB := rootTree(t, a.cfg.RepoDir, repA.Commit), rootTree(t, b.cfg.RepoDir, repB.Commit)
	if treeA != treeB {
		t.Errorf("B's root tree %s differs from A's %s", treeB, treeA)
	}
	tinyObjs, tinyBytes := objectRequests(srv.Requests())
	t.Logf("FIGURE tiny after minimal: A %s, B from the remote %s; fetched %d bytes in %d objects (%d requests)",
		timeAt.Round(time.Millisecond), timeB.Round(time.Millisecond), tinyBytes, len(tinyObjs), len(srv.Requests()))
	baseObjs, baseBytes := minObjs, minBytes+tinyBytes
	for p, n := range tinyObjs {
		baseObjs[p] += n
	}
	indexSound(t, b)
	// A no-op build never contacts the remote.
	srv.Reset()
	if rep, _ := b.build(t, "tiny"); rep.Ran() != 0 || len(srv.Requests()) != 0 {
		t.Errorf("B's no-op build ran %d steps and made %d requests", rep.Ran(), len(srv.Requests()))
	}

	// A child variant: B already has tiny's layers, so only the child's
	// own objects come over.
	repAc, _ := a.build(t, "tinychild")
	if prep, err = Push(ctx, a.cfg, key, pushDir); err != nil || len(prep.Pushed) != 2 {
		t.Fatalf("push of tinychild: %+v %v, want its install and postprocess", prep, err)
	}
	srv.Reset()
	repBc, timeBc := b.build(t, "tinychild")
	for _, s := range repBc.Steps {
		wantRemote := s.Name == "install:tinychild" || s.Name == build.StepPostprocess
		if s.Step != build.StepCommit && (!s.Cached || s.Remote != wantRemote) {
			t.Errorf("B tinychild: step %s cached=%v remote=%v", s.Name, s.Cached, s.Remote)
		}
	}
	if rootTree(t, a.cfg.RepoDir, repAc.Commit) != rootTree(t, b.cfg.RepoDir, repBc.Commit) {
		t.Errorf("B's tinychild tree differs from A's")
	}
	childObjs, childBytes := objectRequests(srv.Requests())
	if len(baseObjs) == 0 || len(childObjs) == 0 {
		t.Errorf("the server sent %d objects for tiny and %d for the child", len(baseObjs), len(childObjs))
	}
	for p := range childObjs {
		if _, twice := baseObjs[p]; twice {
			t.Errorf("the child's pull fetched %s again", p)
		}
	}
	t.Logf("FIGURE tinychild after tiny: B %s, fetched %d bytes in %d objects (minimal and tiny fetched %d bytes in %d objects)",
		timeBc.Round(time.Millisecond), childBytes, len(childObjs), baseBytes, len(baseObjs))

	// Negative cases: each a fresh machine holding only tiny's bootstrap (a
	// copy of B's store and index with the later entries dropped), so the
	// remote is asked for install and the local build is short.
	negative := func(t *testing.T, url, keyFile string, probe time.Duration) {
		c := newMachine(t, variantsDir)
		seedBootstrap(t, b, c)
		c.remote(url, keyFile, probe)
		rep, _ := c.build(t, "tiny")
		if w := c.log.remoteWarnings(); len(w) != 1 {
			t.Errorf("%d warnings about the remote cache, want 1: %v", len(w), w)
		}
		for _, s := range rep.Steps {
			if s.Remote {
				t.Errorf("step %s came from a remote that should not be used", s.Name)
			}
		}
		if ran := rep.Ran(); ran < 2 {
			t.Errorf("the local build ran %d steps, want install, postprocess and commit", ran)
		}
		if got := rootTree(t, c.cfg.RepoDir, rep.Commit); got != treeA {
			t.Errorf("the local build's tree %s differs from A's %s", got, treeA)
		}
		indexSound(t, c)
	}
	t.Run("another key", func(t *testing.T) {
		// The same folder, every commit signed by another key instead.
		other, _ := signer(t, a.cfg)
		defer other.Close(ctx)
		dir := copyDir(t, pushDir)
		repo := ostreeops.Repo{Path: dir, Runner: a.cfg.Runner}
		commits, err := repo.Commits()
		if err != nil || len(commits) < 10 {
			t.Fatalf("%d commits in the copy: %v", len(commits), err)
		}
		for _, c := range commits {
			os.Remove(strings.TrimSuffix(repo.CommitObject(c), ".commit") + ".commitmeta")
			if err := repo.GPGSign(ctx, c, other.ID, other.Home); err != nil {
				t.Fatal(err)
			}
		}
		_, u := serve(t, dir, a.cfg.Log)
		negative(t, u, pubKey, 20*time.Second)
	})
	t.Run("tampered object", func(t *testing.T) {
		dir := copyDir(t, pushDir)
		// hello's binary is in install's result and not in the bootstrap's.
		install := storeResult(t, a, "install:tiny")
		obj := objectOf(t, a.cfg.StoreRepo().Path, install, "/usr/bin/hello")
		path := filepath.Join(dir, "objects", obj[:2], obj[2:]+".filez")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		writeFile(t, path, string(data))
		_, u := serve(t, dir, a.cfg.Log)
		negative(t, u, pubKey, 20*time.Second)
	})
	t.Run("404", func(t *testing.T) {
		s := &http.Server{Handler: http.NotFoundHandler()}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(ln)
		defer s.Close()
		negative(t, "http://"+ln.Addr().String()+"/", pubKey, 20*time.Second)
	})
	t.Run("never answers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c) // accepted, never answered
				mu.Unlock()
			}
		}()
		defer func() {
			ln.Close()
			mu.Lock()
			for _, c := range held {
				c.Close()
			}
			mu.Unlock()
		}()
		start := time.Now()
		negative(t, "http://"+ln.Addr().String()+"/", pubKey, 3*time.Second)
		t.Logf("build with a stalled remote: %s", time.Since(start).Round(time.Millisecond))
	})
}

// firstPush pushes a's results, signed with a new key, into a new folder.
func firstPush(t *testing.T, a *machine) (*publish.Signer, string, string, PushReport) {
	t.Helper()
	key, pubKey := signer(t, a.cfg)
	t.Cleanup(func() { key.Close(context.Background()) })
	pushDir := filepath.Join(t.TempDir(), "remote-cache")
	prep, err := Push(context.Background(), a.cfg, key, pushDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("push: %s", prep.Text())
	return key, pubKey, pushDir, prep
}

// copyDir copies a pushed folder, to spoil the copy.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, to).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	return to
}

// serve serves dir on 127.0.0.1 with the publish package's recording file
// server until the test ends.
func serve(t *testing.T, dir string, log zerolog.Logger) (*publish.Server, string) {
	t.Helper()
	srv := publish.NewServer(dir, log)
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, url
}

// storeResult is the result of a step of the last build on m.
func storeResult(t *testing.T, m *machine, step string) string {
	t.Helper()
	idx, err := cache.OpenIndex(m.cfg.IndexPath(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	lasts, _ := idx.Lasts()
	for owner, l := range lasts {
		if strings.HasSuffix(owner, "/"+step) {
			if e, ok := idx.Get(l.Key); ok {
				return e.Result
			}
		}
	}
	t.Fatalf("no result of %s in %s", step, m.cfg.CacheDir)
	return ""
}

// objectOf is the content object checksum of a file in a commit.
func objectOf(t *testing.T, repo, commit, path string) string {
	t.Helper()
	out, err := exec.Command("ostree", "--repo="+repo, "ls", "-C", commit, path).CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 6 || len(f[4]) != 64 {
		t.Fatalf("ostree ls -C %s %s: %v\n%s", commit, path, err, out)
	}
	return f[4]
}

// seedBootstrap gives c a store holding only from's bootstrap result (so
// the remote is asked for everything after it) and an index with its entry.
func seedBootstrap(t *testing.T, from, c *machine) {
	t.Helper()
	if err := os.MkdirAll(c.cfg.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from.cfg.IndexPath(), c.cfg.IndexPath()).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	idx, err := cache.OpenIndex(c.cfg.IndexPath(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	entries, _ := idx.Entries()
	store := c.cfg.StoreRepo()
	ctx := context.Background()
	if err := store.Init(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	for k, e := range entries {
		if e.Kind != build.StepBootstrap {
			idx.Delete(k)
			continue
		}
		if err := store.PullLocal(ctx, from.cfg.StoreRepo().Path, e.Result); err != nil {
			t.Fatal(err)
		}
	}
}

// stepKeys counts the distinct step results (not output commits) of reports.
func stepKeys(reps ...build.Report) int {
	keys := map[cache.Key]bool{}
	for _, r := range reps {
		for _, s := range r.Steps {
			if s.Step != build.StepCommit {
				keys[s.Key] = true
			}
		}
	}
	return len(keys)
}

// stepTimes is where a build's time went, step by step.
func stepTimes(r build.Report) string {
	var parts []string
	for _, s := range r.Steps {
		parts = append(parts, s.Name+" "+s.Duration.Round(time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}
