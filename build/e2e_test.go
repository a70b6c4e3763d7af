package build

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/internal/e2etest"
	"github.com/debian-atomic/builder/mountinfo"
	"github.com/debian-atomic/builder/ostreeops"
)

// End-to-end tests: the real Debian archive, real mmdebstrap, debootstrap,
// ostree and dracut. They need root and the network; DEBIAN_ATOMIC_E2E=0 or
// -short skips them.
func e2e(t *testing.T) {
	t.Helper()
	e2etest.Gate(t)
}

// e2eConfig is a fresh cache and repository; packages are shared by every
// end-to-end test, as they are by every build of a user's.
func e2eConfig(t *testing.T, variantsDir string) Config {
	dir := t.TempDir()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	cfg := DefaultConfig(dir, log)
	cfg.VariantsDir = variantsDir
	cfg.CacheDir = filepath.Join(dir, "cache")
	cfg.RepoDir = filepath.Join(dir, "repo")
	cfg.DebsDir = e2eDebs
	return cfg
}

// copyVariant writes testdata/variants/NAME.yaml, edited, into a fresh folder.
func copyVariant(t *testing.T, name string, edit func(string) string) string {
	dir := t.TempDir()
	body, err := os.ReadFile(filepath.Join("..", "testdata", "variants", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(edit(string(body))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func buildOne(t *testing.T, cfg Config, name string) Report {
	t.Helper()
	reps, err := Variants(context.Background(), cfg, []string{name})
	var drift *LockDriftError
	if errors.As(err, &drift) {
		// As e2ebuild.Variants (which imports this package): the archive
		// moved past the committed lock; cfg's variants are the test's copy.
		t.Logf("the archive moved since variants.lock was committed (%v): re-locking this test's copy and building again", drift)
		if _, err := Update(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		reps, err = Variants(context.Background(), cfg, []string{name})
	}
	if err != nil {
		t.Fatal(err)
	}
	if m := mountinfo.Under(cfg.CacheDir); len(m) > 0 {
		t.Fatalf("mounts left after the build: %v", m)
	}
	// Every end-to-end build leaves a sound repository: step results and
	// refs share it (a few seconds for tiny, about 20 for minimal).
	ostreeOut(t, cfg.RepoDir, "fsck", "--quiet")
	return reps[0]
}

func ostreeOut(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ostree", append([]string{"--repo=" + repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ostree %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestE2ESmallVariant(t *testing.T) {
	e2e(t)
	vdir := copyVariant(t, "tiny", func(s string) string { return s })
	cfg := e2eConfig(t, vdir)
	first := buildOne(t, cfg, "tiny")
	if ran := ranSteps(first); !slices.Equal(ran, Steps) {
		t.Fatalf("cold build ran %v", ran)
	}
	ref := "test/tiny"
	if got := strings.TrimSpace(ostreeOut(t, cfg.RepoDir, "rev-parse", ref)); got != first.Commit {
		t.Fatalf("ref %s is %s, report says %s", ref, got, first.Commit)
	}
	root := ostreeOut(t, cfg.RepoDir, "ls", ref, "/")
	if strings.Contains(root, " /etc\n") {
		t.Errorf("commit has /etc:\n%s", root)
	}
	ostreeOut(t, cfg.RepoDir, "ls", ref, "/usr/etc/passwd")
	if l := ostreeOut(t, cfg.RepoDir, "ls", ref, "/usr/etc/dpkg/dpkg.cfg.d"); strings.Contains(l, "99mmdebstrap") {
		t.Errorf("the bootstrap's dpkg settings stayed in the tree:\n%s", l)
	}
	if v := ostreeOut(t, cfg.RepoDir, "ls", ref, "/var"); strings.Count(strings.TrimSpace(v), "\n") != 0 {
		t.Errorf("/var is not empty:\n%s", v)
	}
	pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, ref)
	if !strings.Contains(pk, "('hello', '") || !strings.Contains(pk, "('dpkg', '") {
		t.Errorf("package metadata lacks hello or dpkg: %.300s", pk)
	}

	second := buildOne(t, cfg, "tiny")
	if ran := ranSteps(second); len(ran) != 0 || second.NewCommit || second.Commit != first.Commit {
		t.Fatalf("no-op build ran %v, new commit %v", ran, second.NewCommit)
	}

	os.WriteFile(filepath.Join(vdir, "tiny.yaml"), []byte(strings.Replace(mustRead(t, filepath.Join(vdir, "tiny.yaml")), "  - hello\n", "  - hello\n  - tree\n", 1)), 0o644)
	third := buildOne(t, cfg, "tiny")
	if ran := ranSteps(third); !slices.Equal(ran, []string{StepInstall, StepPostprocess, StepCommit}) {
		t.Fatalf("after adding a package ran %v", ran)
	}
	if pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, ref); !strings.Contains(pk, "('tree', '") {
		t.Errorf("added package missing from metadata")
	}
	if parent := strings.TrimSpace(ostreeOut(t, cfg.RepoDir, "rev-parse", ref+"^")); parent != first.Commit {
		t.Errorf("new commit's parent %s, want %s", parent, first.Commit)
	}
	ostreeOut(t, cfg.RepoDir, "ls", ref, "/usr/bin/tree")
	if !strings.Contains(ostreeOut(t, cfg.RepoDir, "cat", ref, "/usr/share/dpkg/database/status"), "Package: tree\n") {
		t.Error("the dpkg database lacks tree")
	}
	// The incremental install ran on an overlay over hardlinks into the
	// store: every stored object must still match its checksum.
	ostreeOut(t, cfg.storeRepo().Path, "fsck", "--quiet")
}

func TestE2EDebootstrap(t *testing.T) {
	e2e(t)
	vdir := copyVariant(t, "tiny", func(s string) string {
		return strings.Replace(s, "bootstrap: mmdebstrap", "bootstrap: debootstrap", 1)
	})
	cfg := e2eConfig(t, vdir)
	rep := buildOne(t, cfg, "tiny")
	if ran := ranSteps(rep); !slices.Equal(ran, Steps) {
		t.Fatalf("cold build ran %v", ran)
	}
	if b := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key=debian-atomic.bootstrap", "test/tiny"); !strings.Contains(b, "debootstrap") {
		t.Errorf("bootstrap metadata %q", b)
	}
	if pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, "test/tiny"); !strings.Contains(pk, "('hello', '") {
		t.Errorf("hello missing from metadata")
	}
	ostreeOut(t, cfg.RepoDir, "ls", "test/tiny", "/usr/share/dpkg/database/status")
	checkSystemSources(t, cfg, "test/tiny", "tiny") // debootstrap's sources.list replaced too
}

func TestE2EMinimalDeploys(t *testing.T) {
	e2e(t)
	// A copy: the build writes variants.lock, and tests leave the tree alone.
	vdir := t.TempDir()
	for _, f := range []string{"minimal.yaml", "variants.lock"} {
		if data, err := os.ReadFile(filepath.Join("..", "variants", f)); err == nil {
			os.WriteFile(filepath.Join(vdir, f), data, 0o644)
		}
	}
	cfg := e2eConfig(t, vdir)
	began := time.Now()
	rep := buildOne(t, cfg, "minimal")
	ref := "debian/13/x86_64/minimal"
	// No machine-unique secrets, and what makes them on the machine.
	noSecrets(t, cfg, rep.Commit)
	ostreeOut(t, cfg.RepoDir, "ls", ref, "/"+sshdKeygenDropDir+"/debian-atomic.conf")
	checkSystemSources(t, cfg, ref, "minimal")  // one deb822 debian.sources naming trixie, -updates, -security
	checkSecurityKernel(t, cfg, ref, "minimal") // the locked kernel, from trixie-security on 2026-11-29
	repo := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
	mods := ostreeOut(t, cfg.RepoDir, "ls", ref, "/usr/lib/modules")
	var kver string
	for _, l := range strings.Split(mods, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0][0] == 'd' && f[4] != "/usr/lib/modules" {
			kver = filepath.Base(f[4])
		}
	}
	if kver == "" {
		t.Fatalf("no kernel in the commit:\n%s", mods)
	}
	ostreeOut(t, cfg.RepoDir, "ls", ref, "/usr/lib/modules/"+kver+"/vmlinuz")
	img, err := repo.Cat(context.Background(), rep.Commit, "/usr/lib/modules/"+kver+"/initramfs.img")
	if err != nil {
		t.Fatal(err)
	}
	names, err := initramfsNames(img)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "ostree-prepare-root") }) {
		t.Errorf("initramfs (%d files) has no ostree-prepare-root", len(names))
	}
	if m := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key=ostree.linux", ref); !strings.Contains(m, kver) {
		t.Errorf("ostree.linux = %s", m)
	}

	sysroot := filepath.Join(t.TempDir(), "sysroot")
	os.MkdirAll(sysroot, 0o755)
	// ostree makes deployment roots immutable; let the test's cleanup remove them.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(sysroot, "ostree/deploy/*/deploy/*.0"))
		for _, d := range dirs {
			exec.Command("chattr", "-i", d).Run()
		}
	})
	steps := [][]string{
		{"ostree", "admin", "init-fs", sysroot},
		{"ostree", "admin", "os-init", "--sysroot=" + sysroot, "debian"},
		{"ostree", "--repo=" + filepath.Join(sysroot, "ostree/repo"), "pull-local", cfg.RepoDir, ref},
		{"ostree", "admin", "deploy", "--sysroot=" + sysroot, "--os=debian", "--karg=root=LABEL=root", "--karg=rw", ref},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(sysroot, "boot/loader/entries/*.conf"))
	if len(entries) != 1 {
		t.Fatalf("boot entries: %v", entries)
	}
	deployed := filepath.Join(sysroot, "ostree/deploy/debian/deploy", rep.Commit+".0")
	for _, p := range []string{"etc/passwd", "usr/lib/tmpfiles.d/debian-atomic.conf", "usr/bin/ostree"} {
		if !exists(filepath.Join(deployed, p)) {
			t.Errorf("deployment %s has no %s", deployed, p)
		}
	}

	// The same lock, built again cold in another cache minutes later: the
	// same tree, initramfs included.
	reproduceMinimal(t, cfg, rep.Commit, began)
}

func mustRead(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// initramfsNames lists the files of an initramfs: uncompressed cpio
// archives (early microcode) followed by a compressed one (zstd, as the
// builder asks dracut for, or gzip, dracut's default).
func initramfsNames(img []byte) ([]string, error) {
	var names []string
	r := bufio.NewReader(bytes.NewReader(img))
	for {
		head, err := r.Peek(6)
		if err == io.EOF || len(head) < 2 {
			return names, nil
		}
		if err != nil {
			return names, err
		}
		switch {
		case string(head) == "070701":
			n, err := cpioNames(r)
			names = append(names, n...)
			if err != nil {
				return names, err
			}
		case head[0] == 0x1f && head[1] == 0x8b:
			z, err := gzip.NewReader(r)
			if err != nil {
				return names, err
			}
			n, err := cpioNames(bufio.NewReader(z))
			return append(names, n...), err
		case string(head[:4]) == "\x28\xb5\x2f\xfd":
			z, err := zstd.NewReader(r)
			if err != nil {
				return names, err
			}
			defer z.Close()
			n, err := cpioNames(bufio.NewReader(z))
			return append(names, n...), err
		default:
			if _, err := r.ReadByte(); err != nil { // padding between archives
				return names, nil
			}
		}
	}
}

// cpioNames reads one newc archive up to its trailer.
func cpioNames(r *bufio.Reader) ([]string, error) {
	var names []string
	read := 0
	for {
		hdr := make([]byte, 110)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return names, err
		}
		field := func(i int) int64 {
			v, _ := strconv.ParseInt(string(hdr[6+8*i:6+8*i+8]), 16, 64)
			return v
		}
		size, nameLen := field(6), field(11)
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(r, name); err != nil {
			return names, err
		}
		read += 110 + int(nameLen)
		pad := (4 - read%4) % 4
		r.Discard(pad)
		read += pad
		n := strings.TrimRight(string(name), "\x00")
		if n == "TRAILER!!!" {
			// Archives are padded to 512 bytes; the caller skips zeros.
			return names, nil
		}
		names = append(names, n)
		r.Discard(int(size))
		read += int(size)
		pad = (4 - read%4) % 4
		r.Discard(pad)
		read += pad
	}
}
