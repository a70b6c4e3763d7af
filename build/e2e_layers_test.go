package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// probeRepo is a local flat APT repository with one throwaway package whose
// version the test bumps.
type probeRepo struct {
	t   *testing.T
	dir string
}

func newProbeRepo(t *testing.T) *probeRepo {
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	return &probeRepo{t: t, dir: dir}
}

// publish replaces the repository's contents with the probe at version.
func (r *probeRepo) publish(version string) {
	r.t.Helper()
	old, _ := filepath.Glob(filepath.Join(r.dir, "*.deb"))
	for _, f := range old {
		os.Remove(f)
	}
	src := filepath.Join(r.t.TempDir(), "pkg")
	os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(src, "usr/share/debian-atomic-probe"), 0o755)
	os.WriteFile(filepath.Join(src, "DEBIAN/control"), []byte(fmt.Sprintf(
		"Package: debian-atomic-probe\nVersion: %s\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: probe package for tests\n", version)), 0o644)
	os.WriteFile(filepath.Join(src, "usr/share/debian-atomic-probe/version"), []byte(version+"\n"), 0o644)
	run := func(name string, args ...string) []byte {
		cmd := exec.Command(name, args...)
		cmd.Dir = r.dir
		out, err := cmd.Output()
		if err != nil {
			r.t.Fatalf("%s %v: %v", name, args, err)
		}
		return out
	}
	run("dpkg-deb", "--root-owner-group", "--build", src, filepath.Join(r.dir, "debian-atomic-probe_"+version+"_all.deb"))
	os.WriteFile(filepath.Join(r.dir, "Packages"), run("apt-ftparchive", "packages", "."), 0o644)
	os.WriteFile(filepath.Join(r.dir, "Release"), run("apt-ftparchive", "release", "."), 0o644)
}

func (r *probeRepo) source() string { return "[trusted=yes] file://" + r.dir + " ./" }

func TestE2ELayersLockAndUpdate(t *testing.T) {
	e2e(t)
	if _, err := exec.LookPath("apt-ftparchive"); err != nil {
		t.Skip("apt-ftparchive (apt-utils) is not installed")
	}
	repo := newProbeRepo(t)
	repo.publish("1")
	vdir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(vdir, name+".yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("base", "name: base\nsuite: trixie\narchitecture: amd64\nos-name: debian\nref: test/base\npackages: [hello]\n")
	write("withprobe", "name: withprobe\ninherits: base\nref: test/withprobe\npackages: [debian-atomic-probe]\nsources: ['"+repo.source()+"']\n")
	write("withtree", "name: withtree\ninherits: base\nref: test/withtree\npackages: [tree]\n")
	cfg := e2eConfig(t, vdir)
	ctx := context.Background()
	all := func() map[string]Report {
		t.Helper()
		reps, err := All(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Report{}
		for _, r := range reps {
			out[r.Variant] = r
		}
		return out
	}

	first := all()
	if !exists(filepath.Join(vdir, "variants.lock")) {
		t.Fatal("the first build wrote no lock")
	}
	for _, name := range []string{"withprobe", "withtree"} {
		want := []string{"install:" + name, StepPostprocess, StepCommit}
		if got := ranNames(first[name]); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want %v: the base's layers should be reused", name, got, want)
		}
	}
	if pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, "test/withprobe"); !strings.Contains(pk, "('debian-atomic-probe', '1', 'all')") {
		t.Errorf("probe 1 missing: %.200s", pk)
	}

	// Nothing changed: nothing runs, with the mirror on a closed port.
	t.Setenv("DEBIAN_ATOMIC_MIRROR", "http://127.0.0.1:9/debian")
	start := time.Now()
	for name, r := range all() {
		if r.Ran() != 0 || r.Commit != first[name].Commit {
			t.Errorf("no-op: %s ran %v", name, ranNames(r))
		}
	}
	t.Logf("no-op build of three variants, mirror unreachable: %s", time.Since(start))
	t.Setenv("DEBIAN_ATOMIC_MIRROR", "")

	// Editing one child rebuilds only that child.
	write("withtree", "name: withtree\ninherits: base\nref: test/withtree\npackages: [tree, figlet]\n")
	second := all()
	for name, r := range second {
		if name == "withtree" {
			if r.Commit == first[name].Commit {
				t.Errorf("edited child kept its commit")
			}
			continue
		}
		if r.Ran() != 0 || r.Commit != first[name].Commit {
			t.Errorf("%s rebuilt after an edit of withtree: %v", name, ranNames(r))
		}
	}

	// The probe moves to 2: update says so for withprobe only, and only it rebuilds.
	repo.publish("2")
	changes, err := Update(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Variant != "withprobe" || !slices.Contains(changes[0].Changes, " debian-atomic-probe 1 -> 2") {
		t.Fatalf("update reported %+v", changes)
	}
	third := all()
	for name, r := range third {
		if name == "withprobe" {
			if want := []string{"install:withprobe", StepPostprocess, StepCommit}; !slices.Equal(ranNames(r), want) {
				t.Errorf("withprobe ran %v, want %v", ranNames(r), want)
			}
			continue
		}
		if r.Ran() != 0 || r.Commit != second[name].Commit {
			t.Errorf("%s rebuilt after the probe moved: %v", name, ranNames(r))
		}
	}
	if pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, "test/withprobe"); !strings.Contains(pk, "('debian-atomic-probe', '2', 'all')") {
		t.Errorf("probe 2 missing after update")
	}
	from, to, diff, err := Diff(ctx, cfg, "withprobe")
	if err != nil || from != first["withprobe"].Commit || to != third["withprobe"].Commit || !slices.Equal(diff, []string{" debian-atomic-probe 1 -> 2"}) {
		t.Errorf("diff %s..%s: %v %v", from, to, diff, err)
	}

	// The lock names probe 2; the repository goes back to 1 only. A build
	// that must install it stops and says to run mage update.
	repo.publish("1")
	fresh := cfg
	fresh.CacheDir, fresh.RepoDir = filepath.Join(t.TempDir(), "cache"), filepath.Join(t.TempDir(), "repo")
	_, err = Variants(ctx, fresh, []string{"withprobe"})
	if err == nil || !strings.Contains(err.Error(), "mage update") || !strings.Contains(err.Error(), "debian-atomic-probe") {
		t.Errorf("drifted mirror: %v", err)
	}
}
