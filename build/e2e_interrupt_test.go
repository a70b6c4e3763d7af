package build

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/mountinfo"
)

// Log lines that mark the middle of the install step: apt's first line in
// the tree, and the bootstrap's result stored (install already runs then,
// beside the store, and goes on for seconds).
const (
	inInstall         = `"cmd":"chroot"`
	inInstallBootDone = `"message":"bootstrap: done"`
)

// startHelper runs a real build of tiny in another process and returns once
// its log has a line containing mark.
func startHelper(t *testing.T, cfg Config, mark string) *watched {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=tiny")
	return startWatched(t, cmd, cfg, mark)
}

// buildEnv is the environment that points a builder process at cfg's
// folders, with JSON logs that name every command.
func buildEnv(cfg Config) []string {
	return []string{CacheEnv + "=" + cfg.CacheDir, RepoEnv + "=" + cfg.RepoDir, DebsEnv + "=" + cfg.DebsDir,
		VariantsEnv + "=" + cfg.VariantsDir, "DEBIAN_ATOMIC_DEBUG=1", "CI=true"}
}

// watched is a builder process whose output the test reads.
type watched struct {
	*exec.Cmd
	mu    sync.Mutex
	out   strings.Builder
	ended chan struct{}
}

// finish waits for the process and returns its error and whole output.
func (w *watched) finish() (string, error) {
	err := w.Wait()
	<-w.ended
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String(), err
}

// startWatched starts a builder process and, when mark is not empty,
// returns once its log has a line containing mark.
func startWatched(t *testing.T, cmd *exec.Cmd, cfg Config, mark string) *watched {
	t.Helper()
	cmd.Env = append(cmd.Env, buildEnv(cfg)...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &watched{Cmd: cmd, ended: make(chan struct{})}
	seen := make(chan bool, 1)
	go func() {
		defer close(p.ended)
		defer r.Close()
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.out.WriteString(s.Text() + "\n")
			p.mu.Unlock()
			if mark != "" && strings.Contains(s.Text(), mark) {
				select {
				case seen <- true:
				default:
				}
			}
		}
	}()
	if mark == "" {
		return p
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the build never logged %s", mark)
	}
	return p
}

func indexKinds(t *testing.T, cfg Config) map[string]int {
	x, err := cache.OpenIndex(cfg.indexPath(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	entries, _ := x.Entries()
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	return kinds
}

// SIGTERM in the middle of a step: mounts gone, tree gone, no cache entry
// for the step, non-zero exit; the next run resumes at that step.
func TestE2ESigtermCleansUpAndResumes(t *testing.T) {
	e2e(t)
	cfg := e2eConfig(t, copyVariant(t, "tiny", func(s string) string { return s }))
	cmd := startHelper(t, cfg, inInstallBootDone)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	t.Logf("the build stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	checkInterrupted(t, cfg, err, "SIGTERM")
}

// checkInterrupted checks what an interrupted build leaves: a non-zero exit,
// no mount, no tree, no ref, cache entries only for a prefix of the chain
// (the bootstrap at least: the signal came after it was stored); and that
// the next build resumes at the first step without one. Which step that is
// depends on the machine's speed: install, or postprocess when install was
// stored within the grace an interrupt gives a pending store.
func checkInterrupted(t *testing.T, cfg Config, exit error, how string) {
	t.Helper()
	if exit == nil {
		t.Error("an interrupted build exited 0")
	}
	if m := mountinfo.Under(cfg.CacheDir); len(m) > 0 {
		t.Errorf("mounts left after %s: %v", how, m)
	}
	if entries, _ := os.ReadDir(cfg.workDir()); len(entries) > 0 {
		t.Errorf("work trees left after %s: %v", how, entries)
	}
	if _, ok := cfg.outRepo().RevParse(context.Background(), "test/tiny"); ok {
		t.Errorf("the ref was written by a build interrupted by %s", how)
	}
	k := indexKinds(t, cfg)
	resume := ""
	for _, s := range []struct{ kind, name string }{{StepBootstrap, StepBootstrap}, {StepInstall, "install:tiny"}, {StepPostprocess, StepPostprocess}} {
		switch {
		case resume == "" && k[s.kind] == 0:
			resume = s.name
		case resume != "" && k[s.kind] != 0:
			t.Errorf("index after %s has %s but not %s: %v", how, s.kind, resume, k)
		}
	}
	if resume == StepBootstrap || resume == "" {
		t.Fatalf("index after %s: %v; the signal came after the bootstrap was stored and before the end", how, k)
	}
	t.Logf("index after %s: %v; the next run should resume at %s", how, k, resume)
	rep := buildOne(t, cfg, "tiny")
	if got := ranNames(rep); len(got) == 0 || got[0] != resume {
		t.Errorf("after %s the next build ran %v; it should resume at %s", how, got, resume)
	}
}

// kill -9 in the middle of a step: the next run finds the leftovers (mounts,
// processes, the tree), cleans them and builds; never a false cache hit.
func TestE2EKill9Recovers(t *testing.T) {
	e2e(t)
	cfg := e2eConfig(t, copyVariant(t, "tiny", func(s string) string { return s }))
	cmd := startHelper(t, cfg, inInstall)
	cmd.Process.Kill()
	cmd.Wait()
	left := mountinfo.Under(cfg.CacheDir)
	t.Logf("mounts left by kill -9: %d", len(left))
	if len(left) == 0 {
		t.Error("kill -9 in the install step left no mount: the test did not hit the step")
	}
	// The bootstrap's result may still have been being stored, beside the
	// install, when the build was killed: then it is not in the index, and
	// the next run makes it again. What is in the index is kept.
	k := indexKinds(t, cfg)
	if k[StepInstall] != 0 {
		t.Errorf("the killed step has a cache entry: %v", k)
	}
	resume := "install:tiny"
	if k[StepBootstrap] == 0 {
		resume = StepBootstrap
	}
	t.Logf("index after kill -9: %v; the next run should start at %s", k, resume)
	ctx := context.Background()
	reps, err := Variants(ctx, cfg, []string{"tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ranNames(reps[0]); len(got) == 0 || got[0] != resume {
		t.Errorf("after kill -9 the next build ran %v; it should start at %s", got, resume)
	}
	if m := mountinfo.Under(cfg.CacheDir); len(m) > 0 {
		t.Errorf("mounts left after recovery: %v", m)
	}
	if pk := ostreeOut(t, cfg.RepoDir, "show", "--print-metadata-key="+MetaPackages, "test/tiny"); !strings.Contains(pk, "('hello', '") {
		t.Error("the recovered build lacks hello")
	}
}
