package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

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

// buildFunc builds one variant.
type buildFunc func(ctx context.Context, v *variants.Variant) (Report, error)

// schedule builds vs, up to jobs at once. A variant starts once the build of
// its nearest ancestor in vs has ended (see after), so it finds that
// ancestor's layers cached; siblings then run side by side. A failed variant does not stop
// the others (a child of a failed one still tries, as it would alone);
// when ctx ends, builds that have not started do not start. Reports and
// errors come back in the order of vs.
func schedule(ctx context.Context, vs []*variants.Variant, jobs int, build buildFunc) ([]Report, []error) {
	ended := map[string]chan struct{}{}
	for _, v := range vs {
		ended[v.Name] = make(chan struct{})
	}
	slots := make(chan struct{}, max(jobs, 1))
	reports := make([]Report, len(vs))
	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(ended[v.Name])
			reports[i] = Report{Variant: v.Name, Ref: v.Ref}
			if err := waitFor(ctx, after(vs, i), ended); err != nil {
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
			reports[i], errs[i] = build(ctx, v)
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

// waitFor waits for the build of name to end ("" waits for nothing).
func waitFor(ctx context.Context, name string, ended map[string]chan struct{}) error {
	ch, ok := ended[name]
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

// buildParallel builds vs with the session, siblings side by side, and
// logs every failure again at the end, where it is seen.
func (s *Session) buildParallel(ctx context.Context, vs []*variants.Variant) ([]Report, error) {
	jobs, err := Jobs()
	if err != nil {
		return nil, err
	}
	if len(vs) > 1 {
		s.cfg.Log.Info().Int("jobs", jobs).Int("variants", len(vs)).Msgf("building %d variants, up to %d at once (%s)", len(vs), jobs, JobsEnv)
	}
	// The host checker caches tool versions in a map: one caller at a time.
	s.host = &syncHost{h: s.host}
	reports, errs := schedule(ctx, vs, jobs, s.Build)
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err)
			if len(vs) > 1 {
				s.cfg.Log.Error().Str("variant", vs[i].Name).Err(err).Msg(vs[i].Name + " failed")
			}
		}
	}
	return reports, errors.Join(failed...)
}

// syncHost serialises a HostChecker.
type syncHost struct {
	mu sync.Mutex
	h  HostChecker
}

func (s *syncHost) Ensure(ctx context.Context, reqs []Requirement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Ensure(ctx, reqs)
}

func (s *syncHost) ToolVersion(ctx context.Context, tool string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.ToolVersion(ctx, tool)
}

// consoleWriter is the human log: the variant a line is about comes first,
// so the lines of variants built side by side stay readable.
func consoleWriter(f *os.File) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05",
		PartsOrder:    []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, "variant", zerolog.MessageFieldName},
		FieldsExclude: []string{"variant"},
		FormatPartValueByName: func(v any, name string) string {
			if name == "variant" && v != nil {
				return fmt.Sprintf("[%v]", v)
			}
			return ""
		},
	}
}
