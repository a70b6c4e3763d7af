package remotecache

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/lockresolve"
	"github.com/debian-atomic/builder/publish"
	"github.com/debian-atomic/builder/variants"
)

// The three-variant pipeline of .ci/pipeline, simulated on this machine:
// every CI job is a separate builder process (the mage binary) with its own
// cache, pinned to one core with taskset, as a one-core runner would be.
//
//	pipeline:    base job (build BASE, push) ; then one job per child at once
//	             (empty cache, remote cache on, build the child, push)
//	one runner:  the base job's cache, one core: build the children in turn
//
// The base build is the same work in both, so it is measured once: the
// pipeline is base build + base push + the slowest child job; the runner is
// base build + the children built one after the other.

// PipelineJob is one simulated CI job.
type PipelineJob struct {
	Name       string
	Core       int
	Build      time.Duration // the builds, one per variant
	Push       time.Duration // cache:push (zero for the one-runner builds)
	RemoteHits int           // steps the job took from the remote cache
	Ran        int           // steps the job ran
	Log        string        // its output
}

// PipelineBenchResult holds one run's figures.
type PipelineBenchResult struct {
	Base     string
	Children []string
	BaseJob  PipelineJob
	FanOut   []PipelineJob // run at once
	FanWall  time.Duration // wall time of the fan-out
	Runner   PipelineJob   // the children on one runner after the base
	Pipeline time.Duration // base build + push + fan-out
	OneRun   time.Duration // base build + the children in turn
}

// BenchPipeline runs the simulation in dir (removed first) with the mage
// binary exe, for base (a variant of cfg.VariantsDir or testdata/variants)
// and one child per extra package ("BASE-EXTRA", inheriting BASE). The
// package cache is copied (hard links) into every job, so jobs download
// only what it lacks and never wait on one another's apt.
func BenchPipeline(ctx context.Context, cfg build.Config, exe, base string, extras []string, dir string) (PipelineBenchResult, error) {
	res := PipelineBenchResult{Base: base}
	if len(extras) < 1 {
		return res, fmt.Errorf("give at least one package to make a child variant of %s with", base)
	}
	for _, tool := range []string{"taskset", "cp", exe} {
		if _, err := exec.LookPath(tool); err != nil {
			return res, fmt.Errorf("the pipeline bench needs %s (taskset: util-linux): %w", tool, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return res, err
	}
	vdir := filepath.Join(dir, "variants")
	if err := copyVariants(cfg.VariantsDir, base, vdir); err != nil {
		return res, err
	}
	for _, extra := range extras {
		name := base + "-" + extra
		body := fmt.Sprintf("name: %s\ninherits: %s\npackages: [%s]\nref: bench/%s\n", name, base, extra, name)
		if err := os.WriteFile(filepath.Join(vdir, name+".yaml"), []byte(body), 0o644); err != nil {
			return res, err
		}
		res.Children = append(res.Children, name)
	}
	// A short GnuPG home: gpg-agent's socket path is limited to ~107 bytes.
	home, err := os.MkdirTemp("", "dab-gpg-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	defer cfg.Runner.Run(context.WithoutCancel(ctx), run.Cmd{Args: []string{"gpgconf", "--homedir", home, "--kill", "gpg-agent"}, Quiet: true})
	keyDir := filepath.Join(dir, "key")
	settings := fmt.Sprintf("gnupg-home: %s\nrepo: %s\n", home, keyDir)
	if err := os.WriteFile(filepath.Join(vdir, publish.SettingsFile), []byte(settings), 0o644); err != nil {
		return res, err
	}
	key, err := publish.Keygen(ctx, cfg, &publish.Settings{GnuPGHome: home, Keep: publish.DefaultKeep, Repo: keyDir})
	if err != nil {
		return res, err
	}
	// The lock, as a project commits it: resolved once, before the jobs.
	if err := lockAll(ctx, cfg, vdir, append([]string{base}, res.Children...)); err != nil {
		return res, err
	}

	pushDir := filepath.Join(dir, "remote-cache")
	env := func(cache string, remote string) []string {
		return []string{"CI=1", build.VariantsEnv + "=" + vdir, build.CacheEnv + "=" + cache,
			build.DebsEnv + "=" + filepath.Join(cache, "debs"), build.RepoEnv + "=", publish.Env + "=",
			URLEnv + "=" + remote, KeyEnv + "=" + key.PublicKey}
	}
	job := func(j *PipelineJob, cache, remote string, push bool, names ...string) error {
		if err := seedDebs(ctx, cfg, filepath.Join(cache, "debs")); err != nil {
			return err
		}
		var mu sync.Mutex
		var log strings.Builder
		r := run.Exec{Line: func(_, line string) {
			mu.Lock()
			defer mu.Unlock()
			log.WriteString(line + "\n")
			switch {
			case strings.Contains(line, `"remote":true`) && strings.Contains(line, "remote hit"):
				j.RemoteHits++
			case strings.Contains(line, `"cached":false`) && strings.Contains(line, `: running"`):
				j.Ran++
			}
		}}
		defer func() { j.Log = log.String() }()
		pin := []string{"taskset", "-c", fmt.Sprint(j.Core), exe}
		start := time.Now()
		for _, n := range names {
			if _, err := r.Run(ctx, run.Cmd{Args: append(pin, "build:variant", n), Env: env(cache, remote)}); err != nil {
				return fmt.Errorf("job %s: building %s: %w", j.Name, n, err)
			}
		}
		j.Build = time.Since(start)
		if push {
			start = time.Now()
			if _, err := r.Run(ctx, run.Cmd{Args: append(pin, "cache:push", pushDir), Env: env(cache, remote)}); err != nil {
				return fmt.Errorf("job %s: cache:push: %w", j.Name, err)
			}
			j.Push = time.Since(start)
		}
		cfg.Log.Info().Str("job", j.Name).Int("core", j.Core).Float64("build_s", j.Build.Seconds()).
			Float64("push_s", j.Push.Seconds()).Int("remote_hits", j.RemoteHits).Int("ran", j.Ran).Msg("pipeline bench: job done")
		return nil
	}

	baseCache := filepath.Join(dir, "job-base")
	res.BaseJob = PipelineJob{Name: "base", Core: 0}
	if err := job(&res.BaseJob, baseCache, "", true, base); err != nil {
		return res, err
	}
	srv := publish.NewServer(pushDir, cfg.Log)
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer srv.Close()

	res.FanOut = make([]PipelineJob, len(res.Children))
	errs := make([]error, len(res.Children))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range res.Children {
		res.FanOut[i] = PipelineJob{Name: c, Core: i % 2}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = job(&res.FanOut[i], filepath.Join(dir, "job-"+c), url, true, c)
		}()
	}
	wg.Wait()
	res.FanWall = time.Since(start)
	for _, err := range errs {
		if err != nil {
			return res, err
		}
	}

	res.Runner = PipelineJob{Name: "one runner", Core: 0}
	if err := job(&res.Runner, baseCache, "", false, res.Children...); err != nil {
		return res, err
	}
	res.Pipeline = res.BaseJob.Build + res.BaseJob.Push + res.FanWall
	res.OneRun = res.BaseJob.Build + res.Runner.Build
	return res, nil
}

// copyVariants copies the variant files, the lock and base's file (from
// testdata/variants when the project has none, as for tiny) into to.
func copyVariants(from, base, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(from, "*.yaml"))
	files = append(files, filepath.Join(from, variants.LockFile))
	if _, err := os.Stat(filepath.Join(from, base+".yaml")); err != nil {
		files = append(files, filepath.Join(filepath.Dir(from), "testdata", "variants", base+".yaml"))
	}
	for _, f := range files {
		if filepath.Base(f) == publish.SettingsFile {
			continue
		}
		body, err := os.ReadFile(f)
		if os.IsNotExist(err) && filepath.Base(f) == variants.LockFile {
			continue
		}
		if err != nil {
			return fmt.Errorf("the pipeline bench needs %s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// lockAll resolves the lock for names in vdir (nothing when it is fresh).
func lockAll(ctx context.Context, cfg build.Config, vdir string, names []string) error {
	lock, err := variants.ReadLock(vdir)
	if err != nil {
		return err
	}
	var vs []*variants.Variant
	for _, n := range names {
		v, err := variants.LoadChain(vdir, n)
		if err != nil {
			return err
		}
		vs = append(vs, v)
	}
	_, err = lockresolve.Ensure(ctx, lockresolve.Config{CacheDir: filepath.Join(filepath.Dir(vdir), "lock-cache"),
		VariantsDir: vdir, Runner: cfg.Runner, Log: cfg.Log}, lock, vs, false)
	return err
}

// seedDebs gives a new job cache a copy of the project's package cache
// (hard links where it can, else a copy); a job's own is left as it is.
func seedDebs(ctx context.Context, cfg build.Config, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(cfg.DebsDir, "*.deb"))
	if len(debs) == 0 {
		return nil
	}
	cp := func(flags ...string) error {
		args := append(append(append([]string{"cp"}, flags...), "--"), debs...)
		_, err := cfg.Runner.Run(ctx, run.Cmd{Args: append(args, to), Quiet: true})
		return err
	}
	if cp("-l") == nil {
		return nil
	}
	return cp("-f")
}

// Text is the result as a table for people.
func (r PipelineBenchResult) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline bench: base %s, children %s; each job one core (taskset), its own cache\n", r.Base, strings.Join(r.Children, ", "))
	row := func(j PipelineJob) {
		fmt.Fprintf(&b, "| %s | %d | %.1f s | %.1f s | %d | %d |\n", j.Name, j.Core, j.Build.Seconds(), j.Push.Seconds(), j.RemoteHits, j.Ran)
	}
	fmt.Fprintf(&b, "\n| job | core | build | push | remote hits | steps run |\n| --- | --- | --- | --- | --- | --- |\n")
	row(r.BaseJob)
	for _, j := range r.FanOut {
		row(j)
	}
	row(r.Runner)
	fmt.Fprintf(&b, "\nfan-out wall time %.1f s\n", r.FanWall.Seconds())
	fmt.Fprintf(&b, "pipeline (base build + push + fan-out): %.1f s\n", r.Pipeline.Seconds())
	fmt.Fprintf(&b, "one runner (base build + children in turn): %.1f s\n", r.OneRun.Seconds())
	if r.OneRun > 0 {
		fmt.Fprintf(&b, "pipeline / one runner: %.2fx\n", r.Pipeline.Seconds()/r.OneRun.Seconds())
	}
	return b.String()
}
