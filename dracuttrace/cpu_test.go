package dracuttrace

import (
	"slices"
	"testing"
)

func TestPinnerSpreadsTracedRunsOverCPUs(t *testing.T) {
	var p Pinner
	a, releaseA := p.Pin([]int{0, 1})
	b, releaseB := p.Pin([]int{0, 1})
	if a == b {
		t.Fatalf("two traced runs at once were both pinned to CPU %d", a)
	}
	releaseA()
	releaseA() // twice is once
	if c, _ := p.Pin([]int{0, 1}); c != a {
		t.Errorf("the freed CPU %d was not picked again: got %d", a, c)
	}
	releaseB()
	if c, _ := p.Pin([]int{2, 5}); c != 2 {
		t.Errorf("a CPU outside the allowed ones or not the first free: %d", c)
	}
	if c, _ := p.Pin([]int{3}); c != -1 {
		t.Errorf("one allowed CPU pinned to %d: nothing to choose, nothing to pin", c)
	}
}

func TestStraceArgs(t *testing.T) {
	pinned := StraceArgs(1, "/t")
	if !slices.Equal(pinned[:4], []string{"taskset", "--cpu-list", "1", "strace"}) {
		t.Errorf("pinned: %q", pinned)
	}
	if free := StraceArgs(-1, "/t"); free[0] != "strace" || free[len(free)-1] != "/t" || !slices.Contains(free, "--seccomp-bpf") {
		t.Errorf("unpinned: %q", free)
	}
	if cpus := AllowedCPUs(); len(cpus) == 0 {
		t.Errorf("this process may run on no CPU?")
	}
}
