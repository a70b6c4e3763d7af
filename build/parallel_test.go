package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/variants"
)

// family is base <- c1, c2 (siblings) and c1 <- g (a grandchild).
func family() []*variants.Variant {
	base := &variants.Variant{Name: "base", Ref: "t/base"}
	c1 := &variants.Variant{Name: "c1", Ref: "t/c1", Parent: base}
	c2 := &variants.Variant{Name: "c2", Ref: "t/c2", Parent: base}
	g := &variants.Variant{Name: "g", Ref: "t/g", Parent: c1}
	return []*variants.Variant{base, c1, c2, g}
}

// events records when each fake build started and ended.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) index(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Index(e.log, s)
}

func TestScheduleRunsSiblingsSideBySideAfterTheirParent(t *testing.T) {
	vs := family()
	ev := &events{}
	// The siblings each wait until both have started: built one after the
	// other, they would time out.
	both := sync.WaitGroup{}
	both.Add(2)
	reports, errs := schedule(context.Background(), vs, 2, func(ctx context.Context, v *variants.Variant) (Report, error) {
		ev.add("start " + v.Name)
		defer ev.add("end " + v.Name)
		if v.Name == "c1" || v.Name == "c2" {
			both.Done()
			done := make(chan struct{})
			go func() { both.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				return Report{}, errors.New("the sibling never ran at the same time")
			}
		}
		time.Sleep(10 * time.Millisecond)
		return Report{Variant: v.Name}, nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", vs[i].Name, err)
		}
	}
	for i, r := range reports {
		if r.Variant != vs[i].Name {
			t.Errorf("report %d is %q, want %q (the order of the variants)", i, r.Variant, vs[i].Name)
		}
	}
	for _, c := range [][2]string{{"base", "c1"}, {"base", "c2"}, {"c1", "g"}} {
		if ev.index("end "+c[0]) > ev.index("start "+c[1]) {
			t.Errorf("%s started before its parent %s ended: %v", c[1], c[0], ev.log)
		}
	}
}

func TestScheduleHonoursJobs(t *testing.T) {
	vs := family()
	var mu sync.Mutex
	running, most := 0, 0
	schedule(context.Background(), vs, 1, func(ctx context.Context, v *variants.Variant) (Report, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return Report{Variant: v.Name}, nil
	})
	if most != 1 {
		t.Errorf("%d builds at once with one job", most)
	}
}

func TestScheduleAFailedSiblingDoesNotStopTheOthers(t *testing.T) {
	vs := family()
	ev := &events{}
	_, errs := schedule(context.Background(), vs, 2, func(ctx context.Context, v *variants.Variant) (Report, error) {
		ev.add("start " + v.Name)
		if v.Name == "c1" {
			return Report{Variant: v.Name}, errors.New("c1 broke")
		}
		return Report{Variant: v.Name}, nil
	})
	if errs[1] == nil || errs[0] != nil || errs[2] != nil || errs[3] != nil {
		t.Errorf("errors %v, want c1's only", errs)
	}
	// g still tries, as it would alone: its own build redoes what c1 failed at.
	if ev.index("start c2") < 0 || ev.index("start g") < 0 {
		t.Errorf("builds that ran: %v", ev.log)
	}
}

func TestScheduleCtrlCStopsEveryBuild(t *testing.T) {
	vs := family()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := &events{}
	started := make(chan struct{}, 4)
	done := make(chan []error)
	go func() {
		_, errs := schedule(ctx, vs, 2, func(ctx context.Context, v *variants.Variant) (Report, error) {
			ev.add("start " + v.Name)
			if v.Name == "base" {
				return Report{}, nil
			}
			started <- struct{}{}
			<-ctx.Done() // a long step, stopped by the interrupt
			return Report{}, ctx.Err()
		})
		done <- errs
	}()
	<-started
	<-started // c1 and c2 run
	cancel()
	select {
	case errs := <-done:
		for i, err := range errs[1:] {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want canceled", vs[i+1].Name, err)
			}
		}
		if ev.index("start g") >= 0 {
			t.Errorf("g started after the interrupt: %v", ev.log)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the builds did not stop")
	}
}

func TestScheduleWaitsForWhoBuildsTheSharedParent(t *testing.T) {
	// base is not built in this run: c2 waits for c1, which builds base's
	// layers, instead of building them a second time beside it.
	vs := family()[1:3]
	if got := after(vs, 1); got != "c1" {
		t.Errorf("c2 waits for %q, want c1", got)
	}
	if got := after(family(), 3); got != "c1" {
		t.Errorf("g waits for %q, want c1", got)
	}
	if got := after(family(), 0); got != "" {
		t.Errorf("base waits for %q", got)
	}
}

func TestJobs(t *testing.T) {
	if n := defaultJobs(2, 24<<30); n != 2 {
		t.Errorf("2 cores, 24 GiB: %d jobs", n)
	}
	if n := defaultJobs(16, 8<<30); n != 2 {
		t.Errorf("16 cores, 8 GiB: %d jobs, want 2 (memory)", n)
	}
	if n := defaultJobs(4, 1<<30); n != 1 {
		t.Errorf("4 cores, 1 GiB: %d jobs", n)
	}
	t.Setenv(JobsEnv, "3")
	if n, err := Jobs(); n != 3 || err != nil {
		t.Errorf("%s=3: %d %v", JobsEnv, n, err)
	}
	t.Setenv(JobsEnv, "zero")
	if _, err := Jobs(); err == nil || !strings.Contains(err.Error(), JobsEnv) {
		t.Errorf("a bad setting: %v", err)
	}
}

// With the fake tools: c1 and c2 are built beside each other on the base
// built first; c2 fails (its disk fills), c1 gets its commit, and the error
// names c2.
func TestVariantsBuildsSiblingsInParallel(t *testing.T) {
	e := newTestEnv(t, "hello")
	t.Setenv(JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "fills-disk"))
	reps, err := Variants(context.Background(), e.cfg, []string{"t", "c1", "c2"})
	if err == nil || !strings.Contains(err.Error(), "variant c2") || strings.Contains(err.Error(), "variant c1") {
		t.Fatalf("error %v, want c2's alone", err)
	}
	if len(reps) != 3 || reps[1].Commit == "" || !reps[1].NewCommit {
		t.Errorf("c1 has no commit: %+v", reps)
	}
	if n := e.runner.count("mmdebstrap"); n != 1 {
		t.Errorf("bootstrap ran %d times", n)
	}
	if m := e.runner.stillMounted(); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cfg.CacheDir, "work")); len(entries) > 0 {
		t.Errorf("work trees left: %v", entries)
	}
}

// Ctrl-C while siblings build: both stop, nothing stays mounted, and the
// next run builds them.
func TestVariantsCtrlCStopsSiblings(t *testing.T) {
	e := newTestEnv(t, "hello")
	t.Setenv(JobsEnv, "2")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "tree"))
	e.buildNamed("t")
	e.runner.blockOn = "zsh:amd64="
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := Variants(ctx, e.cfg, []string{"t", "c1", "c2"})
		done <- err
	}()
	select {
	case <-e.runner.started:
	case err := <-done:
		t.Fatalf("c1's install never blocked: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not stop")
	}
	if m := e.runner.stillMounted(); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	e.runner.blockOn = ""
	for _, r := range e.buildNamed("t", "c1", "c2")[1:] {
		if r.Commit == "" {
			t.Errorf("%s not built after the interrupt", r.Variant)
		}
	}
}

func TestHumanLogLinesStartWithTheVariant(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	w := consoleWriter(f)
	w.NoColor = true
	log := zerolog.New(w)
	log.Info().Str("variant", "gnome").Str("step", "install:gnome").Msg("install:gnome: running")
	log.Info().Msg("building 3 variants")
	f.Close()
	out, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "<nil> INF [gnome] install:gnome: running") || strings.Contains(lines[0], "variant=") ||
		!strings.HasPrefix(lines[1], "<nil> INF building 3 variants") {
		t.Errorf("human log:\n%s", out)
	}
}
