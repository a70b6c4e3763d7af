// Package schedule decides when each variant of a multi-variant build runs:
// after its parent, siblings side by side, up to a number of jobs that the
// machine's cores and memory allow.
package schedule

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/debian-atomic/builder/variants"
)

// JobsEnv sets how many variants `mage all` builds at once.
const JobsEnv = "DEBIAN_ATOMIC_JOBS"

// perBuildMemory is what one variant build may take at its peak (apt and
// dpkg, dracut, ostree hashing a desktop tree), for the default of Jobs.
const perBuildMemory = 4 << 30

// Jobs is how many variants may build at once: DEBIAN_ATOMIC_JOBS, else one
// per core as long as each has perBuildMemory of the machine's memory.
func Jobs() (int, error) {
	if v := os.Getenv(JobsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%q: write a number of variants to build at once, 1 or more", JobsEnv, v)
		}
		return n, nil
	}
	return defaultJobs(runtime.NumCPU(), memTotal()), nil
}

func defaultJobs(cores int, mem uint64) int {
	n := cores
	if byMem := int(mem / perBuildMemory); mem > 0 && byMem < n {
		n = byMem
	}
	return max(n, 1)
}

// memTotal is the machine's memory in bytes, 0 when unknown.
func memTotal() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Run builds vs with build, up to jobs at once. A variant starts once its
// nearest ancestor in vs (see after) is ready: its build called ready, which
// it does when the layers a child shares are stored (the parent's own
// postprocess and commit then run beside the child's install), or ended.
// So a child finds that ancestor's layers cached, and siblings run side by
// side. A failed variant does not stop the others (a child of a failed one
// still tries, as it would alone); when ctx ends, builds that have not
// started do not start. Results and errors come back in the order of vs (a
// zero result for a variant that did not start).
func Run[R any](ctx context.Context, vs []*variants.Variant, jobs int, build func(ctx context.Context, v *variants.Variant, ready func()) (R, error)) ([]R, []error) {
	ready := map[string]chan struct{}{}
	readyOnce := map[string]func(){}
	for _, v := range vs {
		ch := make(chan struct{})
		ready[v.Name] = ch
		readyOnce[v.Name] = sync.OnceFunc(func() { close(ch) })
	}
	slots := make(chan struct{}, max(jobs, 1))
	reports := make([]R, len(vs))
	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer readyOnce[v.Name]()
			if err := waitFor(ctx, after(vs, i), ready); err != nil {
				errs[i] = fmt.Errorf("variant %s: not started: %w", v.Name, err)
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("variant %s: not started: %w", v.Name, ctx.Err())
				return
			}
			defer func() { <-slots }()
			if ctx.Err() != nil {
				errs[i] = fmt.Errorf("variant %s: not started: %w", v.Name, ctx.Err())
				return
			}
			reports[i], errs[i] = build(ctx, v, readyOnce[v.Name])
		}()
	}
	wg.Wait()
	return reports, errs
}

// after is whose build vs[i] waits for: its nearest ancestor in vs, else the
// first variant before it built on its parent (which builds the parent's
// layers it will find cached), else none.
func after(vs []*variants.Variant, i int) string {
	in := map[string]bool{}
	for _, v := range vs {
		in[v.Name] = true
	}
	v := vs[i]
	for p := v.Parent; p != nil; p = p.Parent {
		if in[p.Name] {
			return p.Name
		}
	}
	if v.Parent == nil {
		return ""
	}
	for _, u := range vs[:i] {
		for _, l := range u.Layers() {
			if l.Name == v.Parent.Name {
				return u.Name
			}
		}
	}
	return ""
}

// waitFor waits for the build of name to be ready ("" waits for nothing).
func waitFor(ctx context.Context, name string, ready map[string]chan struct{}) error {
	ch, ok := ready[name]
	if !ok {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
