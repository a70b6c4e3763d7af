package cpupin

import (
	"slices"
	"testing"
)

func TestTakeSpreadsCommandsOverCPUs(t *testing.T) {
	var p Pool
	a, releaseA := p.Take([]int{0, 1}, 1)
	b, releaseB := p.Take([]int{0, 1}, 1)
	if !slices.Equal(a, []int{0}) || !slices.Equal(b, []int{1}) {
		t.Fatalf("two commands at once got %v and %v: want different CPUs", a, b)
	}
	releaseA()
	releaseA() // twice is once
	if c, _ := p.Take([]int{0, 1}, 1); !slices.Equal(c, a) {
		t.Errorf("the freed CPU %v was not picked again: got %v", a, c)
	}
	releaseB()
	if c, _ := p.Take([]int{4, 5, 6, 7}, 2); !slices.Equal(c, []int{4, 5}) {
		t.Errorf("two of four free CPUs: got %v", c)
	}
	if c, _ := p.Take([]int{4, 5, 6, 7}, 2); !slices.Equal(c, []int{6, 7}) {
		t.Errorf("two more: got %v, want the two not taken", c)
	}
	if c, _ := p.Take([]int{3}, 1); c != nil {
		t.Errorf("one allowed CPU pinned to %v: nothing to choose, nothing to pin", c)
	}
	if c, _ := p.Take([]int{0, 1}, 2); c != nil {
		t.Errorf("all allowed CPUs pinned to %v: that narrows nothing", c)
	}
}

func TestPrefix(t *testing.T) {
	if got := Prefix([]int{1, 3}); !slices.Equal(got, []string{"taskset", "--cpu-list", "1,3"}) {
		t.Errorf("Prefix: %q", got)
	}
	if Prefix(nil) != nil {
		t.Errorf("no CPUs: a prefix")
	}
	if len(Allowed()) == 0 {
		t.Errorf("this process may run on no CPU?")
	}
}
