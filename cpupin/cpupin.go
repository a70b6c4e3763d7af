// Package cpupin hands out CPUs to commands that run better pinned, and
// spells the pin as a taskset prefix.
//
// Why pin at all: on the virtual machines this builder runs on, a wake-up
// across CPUs costs more than the work it wakes. Two kinds of command pay
// for it. strace stops every traced process at each traced call and wakes
// itself to read it: minimal's dracut took 18 s traced against 10 s
// untraced, and 14 s with strace and dracut on one CPU. And two apt installs
// side by side (`mage all`: gnome and plasma) each hand work between apt,
// dpkg and the decompressors through pipes; left to float they took 108 s
// together for what took 69 s and 73 s alone, with the two CPUs 1.77 busy.
// A pool shared by a session keeps such commands on different CPUs.
package cpupin

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Pool tracks how many pinned commands each CPU runs now.
type Pool struct {
	mu   sync.Mutex
	busy map[int]int
}

// Take picks the n least busy CPUs of allowed (ties: the first) for a
// command, and returns them with the function that gives them back. When
// pinning would not narrow anything (n covers allowed, or fewer than two
// CPUs are known) it returns nil: run the command as it is.
func (p *Pool) Take(allowed []int, n int) (cpus []int, release func()) {
	if len(allowed) < 2 || n >= len(allowed) {
		return nil, func() {}
	}
	n = max(n, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy == nil {
		p.busy = map[int]int{}
	}
	order := slices.Clone(allowed)
	slices.SortStableFunc(order, func(a, b int) int { return p.busy[a] - p.busy[b] })
	cpus = order[:n]
	slices.Sort(cpus)
	for _, c := range cpus {
		p.busy[c]++
	}
	var once sync.Once
	return cpus, func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, c := range cpus {
				p.busy[c]--
			}
		})
	}
}

// Allowed is the CPUs this process may run on, in order; nil when the
// system does not say.
func Allowed() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := 0; len(cpus) < set.Count() && c < 1<<16; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// Prefix is the command line prefix that runs a command on cpus: nil for
// none (not pinned).
func Prefix(cpus []int) []string {
	if len(cpus) == 0 {
		return nil
	}
	list := make([]string, len(cpus))
	for i, c := range cpus {
		list[i] = strconv.Itoa(c)
	}
	return []string{"taskset", "--cpu-list", strings.Join(list, ",")}
}
