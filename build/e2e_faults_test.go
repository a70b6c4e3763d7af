package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debian-atomic/builder/mountinfo"
)

// Ctrl-C in a terminal sends SIGINT to the whole foreground process group:
// go run, mage, the compiled magefile and the build's commands. Mage gives
// the target 5 s to clean up, then exits; the cleanup must fit.
func TestE2ECtrlCThroughMage(t *testing.T) {
	e2e(t)
	cfg := e2eConfig(t, copyVariant(t, "tiny", func(s string) string { return s }))
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "run", "mage.go", "build:variant", "tiny")
	cmd.Dir = ".."
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a foreground group of its own, as a shell makes
	p := startWatched(t, cmd, cfg, inInstallBootDone)
	start := time.Now()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	out, err := p.finish()
	took := time.Since(start)
	t.Logf("go run mage.go build:variant tiny stopped %s after Ctrl-C", took.Round(time.Millisecond))
	if strings.Contains(out, "cleanup timeout exceeded") || strings.Contains(out, "exit forced") {
		t.Errorf("the build did not clean up within mage's 5 s:\n%s", tail(out, 20))
	}
	checkInterrupted(t, cfg, err, "Ctrl-C")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Two builds of the same cache started at once: the second waits, naming
// the first; both succeed, and the second finds everything cached.
func TestE2ETwoBuildsAtOnce(t *testing.T) {
	e2e(t)
	cfg := e2eConfig(t, copyVariant(t, "tiny", func(s string) string { return s }))
	var ps []*watched
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=tiny")
		ps = append(ps, startWatched(t, cmd, cfg, ""))
	}
	waited := 0
	for i, p := range ps {
		out, err := p.finish()
		if err != nil {
			t.Errorf("build %d of two at once failed: %v\n%s", i, err, tail(out, 30))
		}
		if strings.Contains(out, "another build holds the cache") {
			waited++
			if !strings.Contains(out, `"holder":"pid `) {
				t.Errorf("the waiting build did not name the holder:\n%s", tail(out, 30))
			}
			if strings.Contains(out, `"cached":false`) {
				t.Errorf("the build that waited ran steps again:\n%s", tail(out, 30))
			}
		}
	}
	if waited != 1 {
		t.Errorf("%d of two builds waited for the lock, want 1", waited)
	}
	if k := indexKinds(t, cfg); k[StepBootstrap] != 1 || k[StepInstall] != 1 || k[StepPostprocess] != 1 {
		t.Errorf("index after two builds at once: %v", k)
	}
	ostreeOut(t, cfg.storeRepo().Path, "fsck", "--quiet")
	rep := buildOne(t, cfg, "tiny")
	if got := ranNames(rep); len(got) > 0 {
		t.Errorf("after two builds at once a third ran %v", got)
	}
}

// The disk fills during a step (a small tmpfs holds the cache): a clear
// message, earlier results and the ref kept, the store consistent; with
// room again the build resumes.
func TestE2EDiskFull(t *testing.T) {
	e2e(t)
	ctx := context.Background()
	small := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3g", "debian-atomic-test", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "--lazy", small).Run() })
	vdir := copyVariant(t, "tiny", func(s string) string { return s })
	cfg := e2eConfig(t, vdir)
	cfg.CacheDir, cfg.RepoDir = filepath.Join(small, "cache"), filepath.Join(small, "repo")
	before := buildOne(t, cfg, "tiny")
	installed := before.Steps[1]

	// vim brings vim-runtime, 40 MB unpacked: more than the room left.
	body, _ := os.ReadFile(filepath.Join(vdir, "tiny.yaml"))
	os.WriteFile(filepath.Join(vdir, "tiny.yaml"), []byte(strings.Replace(string(body), "  - hello\n", "  - hello\n  - vim\n", 1)), 0o644)
	if _, err := Update(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	syscall.Statfs(small, &st)
	used := int64(st.Blocks-st.Bfree) * int64(st.Bsize)
	size := used + installed.Size + 12<<20
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), small).CombinedOutput(); err != nil {
		t.Fatalf("shrinking the tmpfs: %v %s", err, out)
	}
	t.Logf("cache on a tmpfs of %d MiB, %d MiB used, install tree %d MiB", size>>20, used>>20, installed.Size>>20)
	_, err := Variants(ctx, cfg, []string{"tiny"})
	if err == nil {
		t.Fatal("the build succeeded on a full disk")
	}
	first := strings.SplitN(err.Error(), "\n", 2)[0]
	t.Logf("message: %s", first)
	if !strings.HasPrefix(first, "the disk holding "+cfg.CacheDir+" is full") || !(strings.Contains(err.Error(), "No space left") || strings.Contains(err.Error(), "min-free-space")) {
		t.Errorf("unclear message on a full disk: %v", err)
	}
	if m := mountinfo.Under(cfg.CacheDir); len(m) > 0 {
		t.Errorf("mounts left after the disk filled: %v", m)
	}
	if entries, _ := os.ReadDir(cfg.workDir()); len(entries) > 0 {
		t.Errorf("work trees left after the disk filled: %v", entries)
	}
	if cur, _ := cfg.outRepo().RevParse(ctx, "test/tiny"); cur != before.Commit {
		t.Errorf("the ref moved to %s after a failed build", cur)
	}
	if k := indexKinds(t, cfg); k[StepBootstrap] != 1 || k[StepInstall] != 1 {
		t.Errorf("earlier results lost: %v", k)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=3g", small).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v %s", err, out)
	}
	ostreeOut(t, cfg.storeRepo().Path, "fsck", "--quiet")
	rep := buildOne(t, cfg, "tiny")
	if got := ranNames(rep); len(got) == 0 || got[0] != "install:tiny" {
		t.Errorf("with room again the build ran %v; it should resume at install", got)
	}
}
