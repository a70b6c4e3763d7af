package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// StepReport is what happened to one step.
type StepReport struct {
	Variant  string        `json:"variant"`
	Step     string        `json:"step"`
	Cached   bool          `json:"cached"`
	Duration time.Duration `json:"duration"`
	Size     int64         `json:"size"` // bytes in the step's tree
	Key      cache.Key     `json:"key"`
	Result   string        `json:"result"`
	Reason   string        `json:"reason,omitempty"` // why it ran
}

// Report is what happened to one variant.
type Report struct {
	Variant   string        `json:"variant"`
	Ref       string        `json:"ref"`
	Commit    string        `json:"commit"`
	Version   string        `json:"version"`
	NewCommit bool          `json:"new_commit"`
	Steps     []StepReport  `json:"steps"`
	Duration  time.Duration `json:"duration"`
}

// Ran counts the steps that ran (were not cached).
func (r Report) Ran() int {
	n := 0
	for _, s := range r.Steps {
		if !s.Cached {
			n++
		}
	}
	return n
}

// Session holds what every build in one invocation shares: the lock, the
// index and the repositories.
type Session struct {
	cfg   Config
	host  HostChecker
	idx   *cache.Index
	lock  *Lock
	store ostreeops.Repo
	out   ostreeops.Repo
}

type logger = zerolog.Logger

// Open validates the variants, checks the host, takes the build lock and
// opens the cache. Nothing is changed before the variants and the host pass.
func Open(ctx context.Context, cfg Config, names []string) (*Session, []*variants.Variant, error) {
	var vs []*variants.Variant
	var errs []error
	for _, n := range names {
		v, err := variants.Load(cfg.VariantsDir, n)
		if err == nil {
			err = v.CheckMirror()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vs = append(vs, v)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	s := &Session{cfg: cfg, host: cfg.Host, store: cfg.storeRepo(), out: cfg.outRepo()}
	if s.host == nil {
		s.host = &realHost{runner: cfg.Runner, versions: map[string]string{},
			log: func(m string) { cfg.Log.Warn().Msg(m) }}
	}
	var reqs []Requirement
	for _, v := range vs {
		reqs = append(reqs, requirements(v)...)
	}
	if err := s.host.Ensure(ctx, reqs); err != nil {
		return nil, nil, err
	}
	lock, err := AcquireLock(ctx, filepath.Join(cfg.CacheDir, "lock"), func(holder string) {
		cfg.Log.Warn().Str("holder", holder).Msg("another build holds the cache; waiting for it to finish")
	})
	if err != nil {
		return nil, nil, err
	}
	s.lock = lock
	// Holding the lock, anything left in the work folder is from a build
	// that was killed: unmount and remove it before trusting the cache.
	if err := s.recover(); err != nil {
		s.Close()
		return nil, nil, err
	}
	s.idx, err = cache.OpenIndex(cfg.indexPath(), 5*time.Second)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := s.store.Init(ctx, "bare"); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("creating the cache store: %w", err)
	}
	if err := s.out.Init(ctx, "bare"); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("creating the output repository %s: %w", cfg.RepoDir, err)
	}
	return s, vs, nil
}

// Close releases the index and the lock.
func (s *Session) Close() {
	if s.idx != nil {
		s.idx.Close()
	}
	if s.lock != nil {
		s.lock.Release()
	}
}

func (s *Session) recover() error {
	work := s.cfg.workDir()
	if err := unmountUnder(s.cfg.Runner, work); err != nil {
		return err
	}
	if entries, _ := os.ReadDir(work); len(entries) > 0 {
		s.cfg.Log.Info().Str("path", work).Msg("removing work trees left by an interrupted build")
		return removeTree(work)
	}
	return nil
}

// removeTree deletes a work tree, never while anything below it is mounted.
func removeTree(dir string) error {
	if m := mountsUnder(dir); len(m) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is still mounted", dir, m[0])
	}
	return os.RemoveAll(dir)
}

// variantBuild is one variant going through the chain.
type variantBuild struct {
	*Session
	v     *variants.Variant
	tools tools
	work  string // the variant's work folder
	tree  string // the tree being built
	holds string // the store commit the tree holds now, "" for none
}

// Build runs the chain for v and returns what happened.
func (s *Session) Build(ctx context.Context, v *variants.Variant) (rep Report, err error) {
	start := time.Now()
	b := &variantBuild{Session: s, v: v, tools: tools{}, work: filepath.Join(s.cfg.workDir(), v.Name)}
	b.tree = filepath.Join(b.work, "rootfs")
	rep = Report{Variant: v.Name, Ref: v.Ref}
	log := s.cfg.Log.With().Str("variant", v.Name).Logger()
	for _, t := range []string{v.Bootstrap, "ostree"} {
		if b.tools[t], err = s.host.ToolVersion(ctx, t); err != nil {
			return rep, err
		}
	}
	// The work tree never outlives the build: results live in the store.
	defer func() {
		if rerr := removeTree(b.work); rerr != nil && err == nil {
			err = rerr
		}
		rep.Duration = time.Since(start)
	}()

	parent := ""
	for _, step := range Steps[:3] {
		sr, err := b.runStep(ctx, step, parent, log)
		rep.Steps = append(rep.Steps, sr)
		if err != nil {
			return rep, err
		}
		parent = sr.Result
	}
	sr, err := b.commit(ctx, parent, log, &rep)
	rep.Steps = append(rep.Steps, sr)
	return rep, err
}

// runStep looks a store step up in the cache and runs it on a miss.
func (b *variantBuild) runStep(ctx context.Context, step, parent string, log logger) (StepReport, error) {
	pre := preimage(step, b.v, parent, b.tools)
	key := pre.Sum()
	sr := StepReport{Variant: b.v.Name, Step: step, Key: key}
	if os.Getenv("DEBIAN_ATOMIC_KEYDEBUG") != "" {
		log.Info().Str("step", step).Str("key", string(key)).Msg("preimage:\n" + pre.String())
	}
	e, ok, why := b.idx.Lookup(key, b.validStored)
	if ok {
		sr.Cached, sr.Result, sr.Size = true, e.Result, e.TreeSize
		log.Info().Str("step", step).Str("key", key.Short()).Bool("cached", true).Msg(step + ": cached")
		return sr, nil
	}
	sr.Reason = b.whyMiss(step, pre, why)
	log.Info().Str("step", step).Str("key", key.Short()).Bool("cached", false).Str("reason", sr.Reason).Msg(step + ": running")
	start := time.Now()
	stop := b.progress(log, step, start)
	err := b.execute(ctx, step, parent)
	stop()
	if err != nil {
		// The tree is half-made: drop it, so nothing can mistake it for a result.
		if rerr := removeTree(b.tree); rerr != nil {
			err = errors.Join(err, rerr)
		}
		b.holds = ""
		return sr, fmt.Errorf("variant %s, step %s: %w", b.v.Name, step, err)
	}
	// Device nodes cannot be committed, and steps mount a fresh /dev anyway.
	if err := emptyDir(filepath.Join(b.tree, "dev")); err != nil {
		return sr, err
	}
	result, err := b.store.Commit(ctx, ostreeops.CommitOptions{
		Branch: "cache/" + step + "/" + string(key), Tree: b.tree, Parent: "none",
		Timestamp: "1970-01-01T00:00:00Z", NoBindings: true, NoFsync: true,
	})
	if err != nil {
		return sr, fmt.Errorf("variant %s, step %s: storing the result: %w", b.v.Name, step, err)
	}
	size := treeSize(b.tree)
	sr.Duration, sr.Result, sr.Size = time.Since(start), result, size
	b.holds = result
	// Index entry last: a crash before this line leaves a stored tree nobody
	// points at, never an entry without its tree.
	err = b.idx.Put(key, cache.Entry{Kind: step, Variant: b.v.Name, Result: result,
		Size: b.store.CommitSize(result), TreeSize: size, Created: time.Now(), Duration: sr.Duration},
		b.v.Name, step, pre.Fields())
	if err != nil {
		return sr, err
	}
	log.Info().Str("step", step).Dur("duration", sr.Duration).Int64("size", size).Msg(step + ": done")
	return sr, nil
}

// validStored checks a stored result; a damaged commit object is removed so
// that rebuilding the step writes it afresh (ostree skips objects it has).
func (b *variantBuild) validStored(e cache.Entry) error {
	err := b.store.VerifyCommit(e.Result, e.Size)
	if err != nil && len(e.Result) == 64 {
		os.Remove(b.store.CommitObject(e.Result))
	}
	return err
}

// whyMiss explains a miss by comparing with the variant's previous key.
func (b *variantBuild) whyMiss(step string, pre *cache.Preimage, why string) string {
	last, ok := b.idx.Last(b.v.Name, step)
	if !ok || last.Key == pre.Sum() {
		return why
	}
	if d := cache.Diff(last.Fields, pre.Fields()); len(d) > 0 {
		return fmt.Sprint(d)
	}
	return why
}

// execute makes sure the tree holds the parent's result, then runs the step.
func (b *variantBuild) execute(ctx context.Context, step, parent string) error {
	if step == StepBootstrap {
		if err := removeTree(b.work); err != nil {
			return err
		}
		if err := os.MkdirAll(b.work, 0o755); err != nil {
			return err
		}
		return b.bootstrap(ctx, b.tree)
	}
	if b.holds != parent {
		if err := removeTree(b.tree); err != nil {
			return err
		}
		if err := os.MkdirAll(b.work, 0o755); err != nil {
			return err
		}
		start := time.Now()
		if err := b.store.Checkout(ctx, parent, b.tree); err != nil {
			return fmt.Errorf("restoring the cached tree %s: %w", parent[:12], err)
		}
		b.cfg.Log.Info().Str("variant", b.v.Name).Str("step", step).Dur("duration", time.Since(start)).Msg("restored the previous step's tree from the cache")
		b.holds = parent
	}
	b.holds = ""
	switch step {
	case StepInstall:
		return b.install(ctx, b.tree)
	case StepPostprocess:
		return b.postprocess(ctx, b.tree)
	}
	return fmt.Errorf("unknown step %s", step)
}

// progress logs a line every 15 s while a step runs, with its latest output.
func (b *variantBuild) progress(log logger, step string, start time.Time) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				last := ""
				if b.cfg.Progress != nil {
					last, _ = b.cfg.Progress.Load().(string)
				}
				log.Info().Str("step", step).Dur("elapsed", time.Since(start).Round(time.Second)).Str("last", last).Msg(step + ": still running")
			}
		}
	}()
	return func() { close(done) }
}

// treeSize sums the sizes of regular files below dir.
func treeSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
