package publish

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/internal/e2etest"
	"github.com/debian-atomic/builder/internal/e2etest/e2ebuild"
	"github.com/debian-atomic/builder/ostreeops"
)

// End-to-end tests: real ostree and gpg (a throwaway key in a temporary
// GnuPG home), and for TestE2EPublishTiny real builds from the Debian
// archive. Root; DEBIAN_ATOMIC_E2E=0 or -short skips them.
func e2e(t *testing.T) {
	t.Helper()
	e2etest.Gate(t, "ostree", "gpg")
	t.Setenv(Env, "")
}

// e2eDebs is the package cache the build package's end-to-end tests use too.
var e2eDebs = filepath.Join("/tmp", "debian-atomic-e2e-debs")

func testConfig(t *testing.T, dir string) build.Config {
	return e2ebuild.Config(t, dir, filepath.Join(dir, "variants"), e2eDebs)
}

// testKey makes a throwaway signing key with Keygen in a temporary GnuPG
// home (short path: gpg-agent's socket path is limited), stopped at the end.
func testKey(t *testing.T, cfg build.Config, s *Settings) KeyInfo {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	s.GnuPGHome = home
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	k, err := Keygen(context.Background(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Created || len(k.ID) != 40 {
		t.Fatalf("keygen: %+v", k)
	}
	again, err := Keygen(context.Background(), cfg, s)
	if err != nil || again.Created || again.ID != k.ID {
		t.Fatalf("keygen again made another key: %+v %v", again, err)
	}
	return k
}

func ostreeT(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ostree", append([]string{"--repo=" + repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ostree %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// snapshot lists every file of a repository with size and modification
// time, to prove a publish wrote nothing.
func snapshot(t *testing.T, dir string) string {
	var lines []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() == ".lock" {
			return nil
		}
		fi, _ := e.Info()
		lines = append(lines, p+" "+fi.ModTime().String()+" "+string(rune(fi.Size())))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func writeVariant(t *testing.T, dir, name, ref string) {
	os.MkdirAll(dir, 0o755)
	body := "name: " + name + "\nsuite: trixie\narchitecture: amd64\npackages: [hello]\nos-name: debian\nref: " + ref + "\n"
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2EPublishHistory drives publishing with small synthetic commits in a
// bare output repository (as builds write them: each commit's parent is the
// ref's previous one): parents brought along, signatures, deltas, the
// retention depth, nothing written when nothing is new, a rebuilt output
// repository, and one message before anything is written.
func TestE2EPublishHistory(t *testing.T) {
	e2e(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	writeVariant(t, cfg.VariantsDir, "a", "test/a")
	s := &Settings{Keep: 3}

	// No key yet: one message, nothing written.
	out := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
	if err := out.Init(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	commit := func(content string) string {
		os.MkdirAll(filepath.Join(tree, "usr"), 0o755)
		os.WriteFile(filepath.Join(tree, "usr", "file-"+content), []byte(content), 0o644)
		c, err := out.Commit(ctx, ostreeops.CommitOptions{Branch: "test/a", Tree: tree, Subject: content})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1 := commit("one")
	s.GnuPGHome = filepath.Join(dir, "no-such-home")
	if _, err := Publish(ctx, cfg, s, nil); err == nil || !strings.Contains(err.Error(), "mage.go keygen") || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("publish without a key: %v", err)
	}
	if _, err := os.Stat(s.RepoDir(cfg)); !os.IsNotExist(err) {
		t.Fatalf("publish without a key wrote %s", s.RepoDir(cfg))
	}
	if _, err := Publish(ctx, cfg, &Settings{Keep: 3, Unsigned: true}, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `no variant "nope"`) {
		t.Fatalf("unknown variant: %v", err)
	}
	key := testKey(t, cfg, s)
	pub := s.RepoDir(cfg)

	rep, err := Publish(ctx, cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Refs[0]
	if !r.NewCommit || r.New != c1 || r.Old != "" || r.Delta != "" || r.Brought != 1 || !rep.Summary || rep.KeyID != key.ID || r.CommitSize == 0 {
		t.Fatalf("first publish: %+v %+v", rep, r)
	}
	if got := ostreeT(t, pub, "rev-parse", "test/a"); got != c1 {
		t.Fatalf("published ref is %s, built %s", got, c1)
	}
	for _, f := range []string{"summary", "summary.sig", KeyFileName} {
		if _, err := os.Stat(filepath.Join(pub, f)); err != nil {
			t.Fatalf("publish left no %s", f)
		}
	}
	if mode := ostreeT(t, pub, "config", "get", "core.mode"); mode != "archive-z2" && mode != "archive" {
		t.Fatalf("publish repository mode %s", mode)
	}
	t.Log(rep.Text())

	// Nothing new: nothing written, not even the summary.
	before := snapshot(t, pub)
	time.Sleep(10 * time.Millisecond)
	if rep, err := Publish(ctx, cfg, s, nil); err != nil || rep.Changed() || rep.Refs[0].NewCommit {
		t.Fatalf("publish with nothing new: %+v %v", rep, err)
	}
	if after := snapshot(t, pub); after != before {
		t.Fatalf("publish with nothing new changed files:\n%s\n---\n%s", before, after)
	}

	// Two builds, one publish: the one between comes along, signed; the
	// delta is from the published commit.
	c2 := commit("two")
	c3 := commit("three")
	rep, err = Publish(ctx, cfg, s, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	r = rep.Refs[0]
	if r.Old != c1 || r.New != c3 || r.Brought != 2 || r.Delta != c1+"-"+c3 || r.DeltaSize == 0 {
		t.Fatalf("publish after two builds: %+v", r)
	}
	if got := ostreeT(t, pub, "rev-parse", c3+"^"); got != c2 {
		t.Fatalf("the published commit's parent is %s, want %s", got, c2)
	}
	for _, c := range []string{c2, c3} {
		if !(ostreeops.Repo{Path: pub}).HasDetachedMetadata(c) {
			t.Fatalf("commit %s was not signed", c)
		}
	}

	// A fourth commit with keep 3: c1 goes, with the delta from it.
	c4 := commit("four")
	rep, err = Publish(ctx, cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Refs[0]; r.Delta != c3+"-"+c4 || len(rep.PrunedCommits) != 1 || rep.PrunedCommits[0] != c1 ||
		len(rep.PrunedDeltas) != 1 || rep.PrunedDeltas[0] != c1+"-"+c3 || len(r.Pruned) != 1 {
		t.Fatalf("retention: %+v %+v", rep, r)
	}
	if deltas := ostreeT(t, pub, "static-delta", "list"); deltas != c3+"-"+c4 {
		t.Fatalf("deltas left: %s", deltas)
	}
	if log := ostreeT(t, pub, "log", "test/a"); strings.Count("\n"+log, "\ncommit ") != 3 {
		t.Fatalf("history kept:\n%s", log)
	}

	// The output repository rebuilt from scratch: the new commit does not
	// descend from the published one; it is published whole and the old
	// history goes.
	os.RemoveAll(cfg.RepoDir)
	out.Init(ctx, "bare")
	c5 := commit("five")
	rep, err = Publish(ctx, cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Refs[0]; r.New != c5 || r.Old != c4 || r.Delta != "" || len(rep.PrunedCommits) != 3 || len(rep.PrunedDeltas) != 1 {
		t.Fatalf("rebuilt output repository: %+v %+v", rep, r)
	}
	if got := ostreeT(t, pub, "rev-parse", "test/a"); got != c5 {
		t.Fatalf("ref %s", got)
	}
	// Signing switched off: a stale summary signature is removed.
	rep, err = Publish(ctx, cfg, &Settings{Keep: 3, Unsigned: true, GnuPGHome: s.GnuPGHome}, nil)
	if err != nil || !rep.Summary || rep.Signed {
		t.Fatalf("unsigned publish: %+v %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(pub, "summary.sig")); !os.IsNotExist(err) {
		t.Fatal("an unsigned summary kept the old signature")
	}
}

// TestE2EPublishTiny is the host end-to-end test on the tiny test
// variant, built from the real archive: publish, serve on 127.0.0.1, a
// client pulls with the signature verified; a rebuild with one more
// package and a second publish; the client's pull takes the static delta
// (the server saw the superblock and no loose object); publishing again
// writes nothing; another key, a remote without the key and a tampered
// object are each rejected. It logs the figures the closing note needs.
func TestE2EPublishTiny(t *testing.T) {
	e2e(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	// tiny with ostree, so the delta pull is also made by trixie's ostree,
	// the one machines run.
	cfg.VariantsDir = filepath.Join(dir, "variants")
	os.MkdirAll(cfg.VariantsDir, 0o755)
	body, err := os.ReadFile(filepath.Join("..", "testdata", "variants", "tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cfg.VariantsDir, "tiny.yaml"), []byte(strings.Replace(string(body), "  - hello\n", "  - hello\n  - ostree\n", 1)), 0o644)
	benchDir := filepath.Join(dir, "bench")
	if d := os.Getenv("DEBIAN_ATOMIC_KEEP_BENCH"); d != "" {
		benchDir = d // kept after the test, to look into
	}
	var res BenchResult
	res, err = Bench(ctx, cfg, "tiny", "tree", benchDir)
	t.Cleanup(func() { // the publishes below start the bench key's agent again
		exec.Command("gpgconf", "--homedir", filepath.Join(benchDir, "gnupg"), "--kill", "gpg-agent").Run()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + BenchTable(res))
	// The machine's ostree takes the delta alone: the superblock, no loose
	// object.
	if res.MachineOstree == "" || !res.MachinePull.Superblock || res.MachinePull.Loose != 0 {
		t.Fatalf("ostree %q of the commit did not take the static delta alone: %+v", res.MachineOstree, res.MachinePull)
	}
	// The host's ostree 2022.7 takes the delta too, but marks the commit
	// partial and may fetch a few changed objects loose beside it
	// (ostreedev/ostree#2680): never more than a handful.
	if !res.DeltaPull.Superblock || res.DeltaPull.Loose > res.FullPull.Loose/100 {
		t.Fatalf("the host's second pull did not take the static delta: %+v", res.DeltaPull)
	}
	if res.FullPull.Superblock || res.FullPull.Loose == 0 {
		t.Fatalf("the fresh client's pull: %+v", res.FullPull)
	}
	if res.DeltaSize == 0 || res.DeltaSize >= res.CommitSize {
		t.Fatalf("delta %d bytes against a full commit of %d", res.DeltaSize, res.CommitSize)
	}
	for _, client := range []string{"client-delta", "client-full"} {
		repo := filepath.Join(benchDir, client)
		if got := ostreeT(t, repo, "rev-parse", "origin:"+res.Ref); got != res.Second {
			t.Fatalf("%s has %s, published %s", client, got, res.Second)
		}
		ostreeT(t, repo, "ls", res.Second, "/usr/bin/tree")
		ostreeT(t, repo, "fsck")
	}

	// Publishing again with nothing new writes nothing.
	before := snapshot(t, res.PublishDir)
	if rep, err := Publish(ctx, res.Config, res.Settings, nil); err != nil || rep.Changed() {
		t.Fatalf("publish with nothing new: %+v %v", rep, err)
	}
	if snapshot(t, res.PublishDir) != before {
		t.Fatal("publish with nothing new changed the repository")
	}

	serve := func(dir string) string {
		srv := NewServer(dir, res.Config.Log)
		url, err := srv.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return url
	}
	rejected := func(what, url, keyFile, want string) {
		t.Helper()
		client := ostreeops.Repo{Path: filepath.Join(dir, "client-"+strings.ReplaceAll(what, " ", "-")), Runner: res.Config.Runner}
		err := clientPull(ctx, client, url, keyFile, res.Ref)
		if err == nil {
			t.Fatalf("%s: the pull was accepted", what)
		}
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Fatalf("%s: rejected, but not for the expected reason (%q): %v", what, want, err)
		}
		if _, ok := client.RevParse(ctx, "origin:"+res.Ref); ok {
			t.Fatalf("%s: the ref was written", what)
		}
		t.Logf("%s: rejected: %.200s", what, err)
	}
	url := serve(res.PublishDir)
	rejected("remote without the key", url, "", "public key not found")

	// The same commits published by another key.
	other := &Settings{Keep: DefaultKeep, Repo: filepath.Join(dir, "other")}
	testKey(t, res.Config, other)
	if _, err := Publish(ctx, res.Config, other, nil); err != nil {
		t.Fatal(err)
	}
	rejected("signed by another key", serve(other.Repo), res.KeyFile, "signature")

	// One object of the published commit changed on the server.
	tampered := filepath.Join(dir, "tampered")
	if out, err := exec.Command("cp", "-a", res.PublishDir, tampered).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	fields := strings.Fields(ostreeT(t, tampered, "ls", "-C", res.Second, "/usr/bin/hello"))
	obj := filepath.Join(tampered, "objects", fields[4][:2], fields[4][2:]+".filez")
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rejected("tampered object", serve(tampered), res.KeyFile, "corrupted")
}
