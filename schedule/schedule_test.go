package schedule

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	reports, errs := Run(context.Background(), vs, 2, func(ctx context.Context, v *variants.Variant, ready func()) (string, error) {
		ev.add("start " + v.Name)
		defer ev.add("end " + v.Name)
		if v.Name == "c1" || v.Name == "c2" {
			both.Done()
			done := make(chan struct{})
			go func() { both.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				return "", errors.New("the sibling never ran at the same time")
			}
		}
		time.Sleep(10 * time.Millisecond)
		return v.Name, nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", vs[i].Name, err)
		}
	}
	for i, r := range reports {
		if r != vs[i].Name {
			t.Errorf("result %d is %q, want %q (the order of the variants)", i, r, vs[i].Name)
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
	Run(context.Background(), vs, 1, func(ctx context.Context, v *variants.Variant, ready func()) (string, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return v.Name, nil
	})
	if most != 1 {
		t.Errorf("%d builds at once with one job", most)
	}
}

func TestScheduleAFailedSiblingDoesNotStopTheOthers(t *testing.T) {
	vs := family()
	ev := &events{}
	_, errs := Run(context.Background(), vs, 2, func(ctx context.Context, v *variants.Variant, ready func()) (string, error) {
		ev.add("start " + v.Name)
		if v.Name == "c1" {
			return v.Name, errors.New("c1 broke")
		}
		return v.Name, nil
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
		_, errs := Run(ctx, vs, 2, func(ctx context.Context, v *variants.Variant, ready func()) (string, error) {
			ev.add("start " + v.Name)
			if v.Name == "base" {
				return "", nil
			}
			started <- struct{}{}
			<-ctx.Done() // a long step, stopped by the interrupt
			return "", ctx.Err()
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

// A parent that says its shared layers are ready lets its children start
// while it goes on (its postprocess and commit beside their installs).
func TestScheduleStartsChildrenWhenTheParentIsReady(t *testing.T) {
	vs := family()
	ev := &events{}
	childStarted := make(chan struct{}, 2)
	_, errs := Run(context.Background(), vs, 3, func(ctx context.Context, v *variants.Variant, ready func()) (string, error) {
		ev.add("start " + v.Name)
		defer ev.add("end " + v.Name)
		if v.Name == "base" {
			ready()
			select {
			case <-childStarted:
			case <-time.After(5 * time.Second):
				return "", errors.New("no child started while base went on after ready")
			}
			return v.Name, nil
		}
		if v.Name == "c1" || v.Name == "c2" {
			childStarted <- struct{}{}
		}
		return v.Name, nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", vs[i].Name, err)
		}
	}
	// g's parent c1 never called ready: g waited for c1's end.
	if ev.index("end c1") > ev.index("start g") {
		t.Errorf("g started before c1, which never said ready, ended: %v", ev.log)
	}
}
