package lockresolve

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/variants"
)

func TestPocketOf(t *testing.T) {
	for _, c := range []struct {
		rel     string
		pocket  string
		inSuite bool
	}{
		{"Debian-Security:13/stable-security", variants.PocketSecurity, false},
		{"Debian:13.2/stable, Debian-Security:13/stable-security", variants.PocketSecurity, true}, // folded into a point release
		{"Local:1/trixie-security", variants.PocketSecurity, false},                               // by suite
		{"Debian-Security:unusual", variants.PocketSecurity, false},                               // by label
		{"Debian:13/stable-updates", variants.PocketUpdates, false},
		{"stable-updates, Debian:13/stable", variants.PocketUpdates, true},
		{"Debian:13.2/stable", "", true},
		{"localhost", "", true},
		{"", "", false},
	} {
		if p, in := pocketOf(c.rel); p != c.pocket || in != c.inSuite {
			t.Errorf("pocketOf(%q) = %q, %v; want %q, %v", c.rel, p, in, c.pocket, c.inSuite)
		}
	}
	o := map[string]origin{
		"openssl 3.5.1-1+deb13u1": {pocket: variants.PocketSecurity},
		"tzdata 2025b-4+deb13u1":  {pocket: variants.PocketUpdates},
	}
	c := markPockets(Change{Variant: "m", Changes: []string{" openssl 3.5.1-1 -> 3.5.1-1+deb13u1", "+tzdata 2025b-4+deb13u1", "-libfoo 1", " libc6 2.41-11 -> 2.41-12"}}, o)
	want := []string{" openssl 3.5.1-1 -> 3.5.1-1+deb13u1 (security)", "+tzdata 2025b-4+deb13u1 (updates)", "-libfoo 1", " libc6 2.41-11 -> 2.41-12"}
	if !slices.Equal(c.Changes, want) || c.Security != 1 {
		t.Errorf("markPockets: %q (security %d)", c.Changes, c.Security)
	}
	o["libc6 2.41-12"] = origin{pocket: variants.PocketSecurity, inSuite: true}
	if sec, upd := countPockets([]string{"openssl 3.5.1-1+deb13u1 amd64", "tzdata 2025b-4+deb13u1 all", "libc6 2.41-12 amd64", "bash 5.2 amd64"}, o); sec != 1 || upd != 1 {
		t.Errorf("countPockets: %d security, %d updates; want 1, 1 (libc6's fix is in the point release)", sec, upd)
	}
}

func TestResolverReadsEverySuite(t *testing.T) {
	t.Setenv(variants.MirrorEnv, "")
	t.Setenv(variants.SecurityMirrorEnv, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("name: b\nsuite: trixie\narchitecture: amd64\nmirror: http://deb.debian.org/debian\nos-name: debian\nref: t/b\npackages: [hello]\n"), 0o644)
	v, err := variants.LoadChain(dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(nil, zerolog.Nop(), t.TempDir(), v, []string{"[trusted=yes] file:///srv/repo ./"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(r.dir, "etc/apt/sources.list.d/debian.sources"))
	want := "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: trixie-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
	if string(got) != want {
		t.Errorf("resolver sources:\n%s\nwant:\n%s", got, want)
	}
	if list, _ := os.ReadFile(filepath.Join(r.dir, "etc/apt/sources.list")); string(list) != "deb [trusted=yes] file:///srv/repo ./\n" {
		t.Errorf("extra sources: %q", list)
	}
	if conf, _ := os.ReadFile(r.conf); strings.Contains(string(conf), "trusted=yes") || !strings.Contains(string(conf), variants.DebianKeyring) {
		t.Errorf("apt.conf:\n%s", conf)
	}
}

// localArchive is a signed APT archive in a folder, laid out as Debian's:
// a main archive with SUITE and SUITE-updates, a security archive with
// SUITE-security whose Release says Label: Debian-Security.
type localArchive struct {
	t       *testing.T
	dir     string
	gnupg   string
	keyring string
}

func newLocalArchive(t *testing.T) *localArchive {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-ftparchive", "gpg", "ostree"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	a := &localArchive{t: t, dir: filepath.Join(t.TempDir(), "archive"), gnupg: t.TempDir()}
	a.keyring = filepath.Join(a.dir, "keyring.gpg")
	os.MkdirAll(a.dir, 0o755)
	a.gpg("--quick-gen-key", "Local Archive <archive@example.org>", "ed25519", "sign", "never")
	key := a.gpg("--export")
	if err := os.WriteFile(a.keyring, key, 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *localArchive) gpg(args ...string) []byte {
	a.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+a.gnupg)
	out, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("gpg %v: %v", args, err)
	}
	return out
}

// publish writes suite (under archive: debian or debian-security) with the
// packages "name version" and signs it.
func (a *localArchive) publish(archive, suite, label string, pkgs ...string) {
	a.t.Helper()
	dist := filepath.Join(a.dir, archive, "dists", suite)
	bin := filepath.Join(dist, "main", "binary-amd64")
	os.MkdirAll(bin, 0o755)
	var b strings.Builder
	for _, p := range pkgs {
		f := strings.Fields(p)
		essential := ""
		if f[0] == "base-files" {
			essential = "Essential: yes\n"
		}
		fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\n%sMaintainer: Test <t@example.org>\nFilename: pool/%s_%s_amd64.deb\nSize: 1000\nSHA256: %064d\nDescription: test package\n\n",
			f[0], f[1], essential, f[0], f[1], 0)
	}
	if err := os.WriteFile(filepath.Join(bin, "Packages"), []byte(b.String()), 0o644); err != nil {
		a.t.Fatal(err)
	}
	for _, old := range []string{"Release", "InRelease"} {
		os.Remove(filepath.Join(dist, old))
	}
	cmd := exec.Command("apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=Debian", "-o", "APT::FTPArchive::Release::Label="+label,
		"-o", "APT::FTPArchive::Release::Suite="+suite, "-o", "APT::FTPArchive::Release::Codename="+suite,
		"-o", "APT::FTPArchive::Release::Components=main", "-o", "APT::FTPArchive::Release::Architectures=amd64",
		"release", ".")
	cmd.Dir = dist
	rel, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("apt-ftparchive release: %v", err)
	}
	os.WriteFile(filepath.Join(dist, "Release"), rel, 0o644)
	a.gpg("--clearsign", "--output", filepath.Join(dist, "InRelease"), filepath.Join(dist, "Release"))
}

// Update locks every variant of the folder, afresh when force is set (as
// `mage update` does), else what changed.
func Update(ctx context.Context, cfg Config, force bool) ([]Change, error) {
	names, err := variants.List(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	var vs []*variants.Variant
	for _, n := range names {
		v, err := variants.LoadChain(cfg.VariantsDir, n)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	lock, err := variants.ReadLock(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	return Ensure(ctx, cfg, lock, vs, force)
}

// countingRunner runs commands for real and records them.
type countingRunner struct {
	real  run.Runner
	mu    sync.Mutex
	calls []string
}

func (c *countingRunner) Run(ctx context.Context, cmd run.Cmd) ([]byte, error) {
	c.mu.Lock()
	c.calls = append(c.calls, cmd.String())
	c.mu.Unlock()
	return c.real.Run(ctx, cmd)
}

func (c *countingRunner) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.calls {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestUpdateMarksSecurityChanges locks a variant from a local signed archive
// with a security archive beside it, then publishes a security fix and a
// -updates fix: mage update's changes say which is which.
func TestUpdateMarksSecurityChanges(t *testing.T) {
	a := newLocalArchive(t)
	main := []string{"base-files 13.8", "apt 3.0.3", "probe-a 1", "probe-b 1"}
	a.publish("debian", "trixie", "Debian", main...)
	a.publish("debian", "trixie-updates", "Debian")
	a.publish("debian-security", "trixie-security", "Debian-Security")
	old := archiveKeyring
	archiveKeyring = a.keyring
	t.Cleanup(func() { archiveKeyring = old })
	t.Setenv(variants.MirrorEnv, "")
	t.Setenv(variants.SecurityMirrorEnv, "")

	dir := t.TempDir()
	runner := &countingRunner{real: run.Exec{}}
	cfg := Config{
		VariantsDir: filepath.Join(dir, "variants"),
		CacheDir:    filepath.Join(dir, "cache"),
		Runner:      runner,
		Log:         zerolog.New(zerolog.NewTestWriter(t)),
	}
	os.MkdirAll(cfg.VariantsDir, 0o755)
	variant := func(updates string) {
		os.WriteFile(filepath.Join(cfg.VariantsDir, "b.yaml"), []byte("name: b\nsuite: trixie\narchitecture: amd64\n"+
			"mirror: file://"+a.dir+"/debian\nsecurity-mirror: file://"+a.dir+"/debian-security\n"+updates+
			"os-name: debian\nref: t/b\npackages: [probe-a, probe-b]\n"), 0o644)
	}
	// First the suite alone, as locks made before -updates and -security were followed.
	variant("updates: []\n")
	ctx := context.Background()
	first, err := Update(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || !slices.Contains(first[0].Changes, "+probe-a 1") || first[0].Security != 0 {
		t.Fatalf("first update: %+v", first)
	}
	lock, err := variants.ReadLock(cfg.VariantsDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lock.Bootstraps["trixie amd64 main"]; !ok || len(lock.Archives) != 1 {
		t.Errorf("the suite alone: bootstraps %v, archives %v", lock.Bootstraps, lock.Archives)
	}

	// A DSA for probe-a and a point-release fix for probe-b and apt; the
	// variant now follows both (the default). The changes are versions, not
	// a new bootstrap.
	a.publish("debian-security", "trixie-security", "Debian-Security", "probe-a 1+deb13u1")
	a.publish("debian", "trixie-updates", "Debian", "probe-b 1+deb13u2", "apt 3.0.4")
	variant("")
	second, err := Update(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{" apt 3.0.3 -> 3.0.4 (updates)", " probe-a 1 -> 1+deb13u1 (security)", " probe-b 1 -> 1+deb13u2 (updates)"}
	if len(second) != 1 || !slices.Equal(second[0].Changes, want) || second[0].Security != 1 {
		t.Errorf("second update: %+v, want changes %q with one security", second, want)
	}
	if lock, err = variants.ReadLock(cfg.VariantsDir); err != nil {
		t.Fatal(err)
	}
	if _, ok := lock.Bootstraps["trixie,trixie-updates,trixie-security amd64 main"]; !ok || len(lock.Bootstraps) != 1 {
		t.Errorf("bootstraps after following the pockets: %v", lock.Bootstraps)
	}
	var releases []string
	for k, st := range lock.Archives {
		if st.Date == "" || len(st.SHA256) != 64 {
			t.Errorf("archive %s: %+v", k, st)
		}
		releases = append(releases, k)
	}
	slices.Sort(releases)
	if len(releases) != 3 || !strings.HasSuffix(releases[0], "debian-security_dists_trixie-security_InRelease") ||
		!strings.HasSuffix(releases[1], "debian_dists_trixie-updates_InRelease") || !strings.HasSuffix(releases[2], "debian_dists_trixie_InRelease") {
		t.Errorf("the lock records the Release files %v, want the three suites' InRelease", releases)
	}

	updates := runner.count("apt-get -q update")
	if again, err := Update(ctx, cfg, true); err != nil || len(again) != 0 {
		t.Errorf("an update with nothing new: %+v %v", again, err)
	}
	if n := runner.count("apt-get -q update"); n != updates {
		t.Errorf("the Release files did not change, yet apt-get update ran again (%d times)", n-updates)
	}
	// A new Release is read, though the variant did not change.
	a.publish("debian-security", "trixie-security", "Debian-Security", "probe-a 1+deb13u2")
	if third, err := Update(ctx, cfg, true); err != nil || len(third) != 1 || !slices.Equal(third[0].Changes, []string{" probe-a 1+deb13u1 -> 1+deb13u2 (security)"}) {
		t.Errorf("an update after a new DSA: %+v %v", third, err)
	}
	if n := runner.count("apt-get -q update"); n != updates+1 {
		t.Errorf("a Release file changed: apt-get update ran %d times, want once", n-updates)
	}

	// A security archive signed by another key is refused, not trusted.
	other := newLocalArchive(t)
	archiveKeyring = other.keyring
	if _, err := Update(ctx, cfg, true); err == nil || !strings.Contains(err.Error(), "reading the archive's package lists failed") {
		t.Errorf("archive signed by an unknown key: %v", err)
	}
}
