package dracuttrace

import (
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// strace stops every traced process at each traced call and wakes itself
// to read it. When the tracer and its tracee sit on different CPUs each of
// those hand-overs is a cross-CPU wake-up, which in a virtual machine costs
// more than the call: measured here (2 vCPUs), minimal's dracut took 18 s
// traced against 10 s untraced, and 14 s with strace and dracut pinned to
// one CPU. dracut is a shell script that runs one program at a time, so one
// CPU loses it little (only zstd's threads at the end).

// Pinner hands out CPUs for traced runs, the least busy first, so that two
// builds tracing dracut at the same time (siblings in `mage all`) are not
// pinned to the same CPU.
type Pinner struct {
	mu   sync.Mutex
	busy map[int]int // CPU -> traced runs pinned to it now
}

// Pin picks a CPU of allowed (the process's affinity) for a traced run and
// returns it with the function that gives it back. With one CPU or none
// known it returns -1: nothing to pin.
func (p *Pinner) Pin(allowed []int) (cpu int, release func()) {
	if len(allowed) < 2 {
		return -1, func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy == nil {
		p.busy = map[int]int{}
	}
	cpu = allowed[0]
	for _, c := range allowed[1:] {
		if p.busy[c] < p.busy[cpu] {
			cpu = c
		}
	}
	p.busy[cpu]++
	var once sync.Once
	return cpu, func() {
		once.Do(func() {
			p.mu.Lock()
			p.busy[cpu]--
			p.mu.Unlock()
		})
	}
}

// AllowedCPUs is the CPUs this process may run on, in order; nil when the
// system does not say.
func AllowedCPUs() []int {
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

// StraceArgs is the command line prefix that traces what follows it into
// out: strace following every process, stopping them only at Calls
// (--seccomp-bpf: not at every system call), with paths for descriptors
// (-y), pinned to cpu with taskset when cpu is not negative.
func StraceArgs(cpu int, out string) []string {
	args := []string{"strace", "-f", "--seccomp-bpf", "-y", "-qq", "-s", "4096", "-e", "trace=" + Calls, "-o", out}
	if cpu < 0 {
		return args
	}
	return append([]string{"taskset", "--cpu-list", strconv.Itoa(cpu)}, args...)
}
