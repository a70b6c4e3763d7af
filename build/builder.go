package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/cpupin"
	"github.com/debian-atomic/builder/mountinfo"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/overlay"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

// StepReport is what happened to one step.
type StepReport struct {
	Variant  string        `json:"variant"`
	Step     string        `json:"step"` // kind: bootstrap, install, postprocess, commit
	Name     string        `json:"name"` // install steps are named per layer: install:minimal
	Cached   bool          `json:"cached"`
	Remote   bool          `json:"remote,omitempty"` // cached: brought from the remote cache
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
	held  *Lock // the build lock
	store ostreeops.Repo
	out   ostreeops.Repo
	lock  *variants.Lock // variants.lock: the package versions builds use
	// overlays is whether steps can run on overlays over linked trees;
	// probed once, on first need (by whichever variant build asks first).
	overlays     bool
	overlaysOnce sync.Once
	// cpus keeps pinned commands (traced dracut, side-by-side installs) of
	// the session's builds on different CPUs; building counts its variant
	// builds running now.
	cpus     cpupin.Pool
	building atomic.Int32
}

// useOverlays probes once whether this cache's filesystem takes overlays.
func (s *Session) useOverlays(ctx context.Context) bool {
	s.overlaysOnce.Do(func() {
		s.overlays = !s.cfg.NoOverlay && overlay.Works(ctx, s.cfg.Runner, filepath.Join(s.cfg.workDir(), "overlay-probe"))
		if !s.overlays {
			s.cfg.Log.Debug().Msg("overlayfs is not usable here: cached trees are restored by copying")
		}
	})
	return s.overlays
}

type logger = zerolog.Logger

// Open validates the variants, checks the host, takes the build lock and
// opens the cache. Nothing is changed before the variants and the host pass.
func Open(ctx context.Context, cfg Config, names []string) (*Session, []*variants.Variant, error) {
	var vs []*variants.Variant
	var errs []error
	for _, n := range names {
		v, err := variants.LoadChain(cfg.VariantsDir, n)
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
		s.host = newRealHost(cfg)
	}
	var reqs []Requirement
	for _, v := range vs {
		reqs = append(reqs, requirements(v)...)
	}
	if err := s.host.Ensure(ctx, reqs); err != nil {
		return nil, nil, err
	}
	lock, err := LockCache(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	s.held = lock
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
	if s.lock, err = variants.ReadLock(cfg.VariantsDir); err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, vs, nil
}

// Close releases the index and the lock.
func (s *Session) Close() {
	if s.idx != nil {
		s.idx.Close()
	}
	if s.held != nil {
		s.held.Release()
	}
}

func (s *Session) recover() error {
	work := s.cfg.workDir()
	// A build killed with -9 leaves its apt and dpkg running in the tree.
	if n := killChrooted(work); n > 0 {
		s.cfg.Log.Warn().Int("processes", n).Msg("stopped processes left running in a work tree by a killed build")
	}
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
	if m := mountinfo.Under(dir); len(m) > 0 {
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
	// loose is how many bytes of the tree's files are not hardlinks to
	// stored objects (what steps' overlays added to a linked checkout), or
	// notLinked when the tree is no linked checkout at all.
	loose int64
	// freshLists is set when the tree's package lists were fetched in this
	// build (a bootstrap just ran), so install needs no apt-get update.
	freshLists bool
	// adopted is set when the tree was just adopted: its times are not yet
	// a checkout's (see likeCheckout).
	adopted bool
	// ready tells the schedule that the layers a child shares are stored
	// (nil: nobody waits). It may be called more than once, and from the
	// goroutine that stores the last layer.
	ready func()
}

// Build runs the chain for v and returns what happened. Its loop: plan
// (keys and hits down to the first miss), report the new hits, then fetch
// the first miss from the remote cache or run it and store its result;
// repeat until the plan has no miss. While a result is stored the next step
// already runs on an overlay (a speculation), and the next plan says
// whether that work is kept (a miss) or dropped (a hit).
func (s *Session) Build(ctx context.Context, v *variants.Variant) (Report, error) {
	return s.build(ctx, v, nil)
}

// build is Build, calling ready once v's layers are stored: its children
// can start then, beside its postprocess and commit. ready may be called
// more than once, and from another goroutine (schedule.Run's is both).
func (s *Session) build(ctx context.Context, v *variants.Variant, ready func()) (rep Report, err error) {
	start := time.Now()
	s.building.Add(1)
	defer s.building.Add(-1)
	b := &variantBuild{Session: s, v: v, tools: tools{}, work: filepath.Join(s.cfg.workDir(), v.Name), loose: notLinked, ready: ready}
	b.tree = filepath.Join(b.work, "rootfs")
	rep = Report{Variant: v.Name, Ref: v.Ref}
	log := s.cfg.Log.With().Str("variant", v.Name).Logger()
	for _, t := range []string{v.Bootstrap, "ostree"} {
		if b.tools[t], err = s.host.ToolVersion(ctx, t); err != nil {
			return rep, err
		}
	}
	var spec *speculation
	// The work tree never outlives the build: results live in the store.
	defer func() {
		if derr := spec.drop(); derr != nil && err == nil {
			err = derr
		}
		if rerr := removeTree(b.work); rerr != nil && err == nil {
			err = rerr
		}
		rep.Duration = time.Since(start)
	}()
	in, prevVersion := b.planInputs(ctx)
	for {
		pl := makePlan(in, indexView{s.idx, b.validStored})
		for i := len(rep.Steps); i < len(pl.steps) && pl.steps[i].hit; i++ {
			if err := b.reportHit(pl.steps[i], i, &spec, prevVersion, &rep, log); err != nil {
				return rep, err
			}
		}
		if b.ready != nil && pl.layersStored() {
			b.ready()
		}
		ps := pl.firstMiss()
		if ps == nil {
			return rep, nil
		}
		if at := len(pl.steps) - 1; at != len(rep.Steps) {
			return rep, fmt.Errorf("variant %s: step %s was stored but the cache index does not return it (run `mage clean` if the cache is damaged)", v.Name, pl.steps[at].name())
		}
		b.keyDebug(*ps, log)
		if ps.kind == StepCommit {
			// The commit reuses the stored tree. Dropping the work tree first
			// spares the output commit's sync from writing it to disk.
			if err = removeTree(b.work); err != nil {
				return rep, err
			}
			b.holds = ""
			sr, err := b.commit(ctx, *ps, prevVersion, log, &rep)
			rep.Steps = append(rep.Steps, sr)
			if err != nil {
				return rep, b.explain(err, sr.Name)
			}
			return rep, nil
		}
		r := &stepRun{st: ps.step, pre: ps.pre, sr: StepReport{Variant: v.Name, Step: ps.kind, Name: ps.name(), Key: ps.key}, start: time.Now()}
		if b.fromRemote(ctx, r, log) {
			if err := spec.drop(); err != nil {
				return rep, err
			}
			spec = nil
			rep.Steps = append(rep.Steps, r.sr)
			continue
		}
		err := b.run(ctx, *ps, r, spec, log)
		spec = nil
		if err != nil {
			rep.Steps = append(rep.Steps, r.sr)
			return rep, b.explain(b.failed(r.sr.Name, err), r.sr.Name)
		}
		// Device nodes cannot be committed, and steps mount a fresh /dev
		// anyway. Emptied here, before a next step's overlay sits on the tree.
		if err := treelayout.EmptyDir(filepath.Join(b.tree, "dev")); err != nil {
			return rep, err
		}
		if next := len(rep.Steps) + 1; pl.chain[next].kind != StepCommit && b.useOverlays(ctx) {
			if spec, err = b.storeWhileNextRuns(ctx, r, pl.chain[next], next, &rep, log); err != nil {
				return rep, err
			}
			continue
		}
		err = b.storeResult(ctx, r, log)
		rep.Steps = append(rep.Steps, r.sr)
		if err != nil {
			return rep, b.explain(err, r.sr.Name)
		}
		b.holds = r.sr.Result
	}
}

// planInputs reads what the plan needs besides the variant: the ref's
// commit, the input key it was made from (when the commit is intact) and
// its version, which the next commit's version follows.
func (b *variantBuild) planInputs(ctx context.Context) (planInputs, string) {
	in := planInputs{v: b.v, lock: b.lock, tools: b.tools}
	cur, ok := b.out.RevParse(ctx, b.v.Ref)
	if !ok {
		return in, ""
	}
	meta := b.commitMeta(ctx, cur)
	in.refCommit = cur
	if b.out.VerifyCommit(cur, 0) == nil {
		in.refKey = meta[MetaInputKey]
	}
	return in, meta[MetaVersion]
}

// reportHit adds the hit at chain index i to the report; a speculation of
// that step is dropped (its parent came out as a result stored before).
func (b *variantBuild) reportHit(ps plannedStep, i int, spec **speculation, prevVersion string, rep *Report, log logger) error {
	b.keyDebug(ps, log)
	if *spec != nil && (*spec).at == i {
		if err := (*spec).drop(); err != nil {
			return err
		}
		*spec = nil
	}
	rep.Steps = append(rep.Steps, StepReport{Variant: b.v.Name, Step: ps.kind, Name: ps.name(), Key: ps.key,
		Cached: true, Result: ps.result, Size: ps.size})
	if ps.kind == StepCommit {
		rep.Commit, rep.Version = ps.result, prevVersion
		log.Info().Str("step", StepCommit).Str("commit", ps.result).Str("version", prevVersion).Bool("cached", true).Msg("commit: up to date")
		return nil
	}
	log.Info().Str("step", ps.name()).Str("key", ps.key.Short()).Bool("cached", true).Msg(ps.name() + ": cached")
	return nil
}

// keyDebug prints a step's key inputs (DEBIAN_ATOMIC_KEYDEBUG).
func (b *variantBuild) keyDebug(ps plannedStep, log logger) {
	if os.Getenv("DEBIAN_ATOMIC_KEYDEBUG") != "" {
		log.Info().Str("step", ps.name()).Str("key", string(ps.key)).Msg("preimage:\n" + ps.pre.String())
	}
}

// run makes r's tree: it keeps a speculation of the step (which ran while
// its parent was stored), or runs the step now.
func (b *variantBuild) run(ctx context.Context, ps plannedStep, r *stepRun, spec *speculation, log logger) error {
	r.sr.Reason = strings.Join(ps.why, "; ")
	if spec != nil {
		log.Info().Str("step", r.sr.Name).Str("key", ps.key.Short()).Bool("cached", false).Str("reason", r.sr.Reason).Msg(r.sr.Name + ": ran")
		r.start = spec.began
		return b.applyOverlay(spec.ovl)
	}
	log.Info().Str("step", r.sr.Name).Str("key", ps.key.Short()).Bool("cached", false).Str("reason", r.sr.Reason).Msg(r.sr.Name + ": running")
	stop := b.progress(log, r.sr.Name, r.start)
	defer stop()
	return b.execute(ctx, ps, log)
}

// explain puts the disk-full message first when a full disk was the cause.
func (b *variantBuild) explain(err error, step string) error {
	return ExplainDiskFull(err, b.cfg.CacheDir, "the steps before "+step+" stay cached and "+b.v.Ref+" keeps its last commit")
}

// stepRun is one store step of a build: its key inputs and its report.
type stepRun struct {
	st    step
	pre   *cache.Preimage
	sr    StepReport
	start time.Time
	adopt bool // stored by moving a tree of hard links in (see adopt)
}

// failed drops a half-made tree, so nothing can mistake it for a result.
func (b *variantBuild) failed(name string, err error) error {
	if rerr := removeTree(b.tree); rerr != nil {
		err = errors.Join(err, rerr)
	}
	b.holds, b.loose, b.adopted = "", notLinked, false
	return fmt.Errorf("variant %s, step %s: %w", b.v.Name, name, err)
}

// storeResult commits the tree as r's result and indexes it.
func (b *variantBuild) storeResult(ctx context.Context, r *stepRun, log logger) error {
	name := r.st.name()
	stored := time.Now()
	// The size walk reads only metadata; beside ostree's hashing it is off
	// the critical path (about a second for gnome, a last step's store).
	sized := make(chan int64, 1)
	go func() { sized <- treeSize(b.tree) }()
	tree := b.tree
	if r.adopt {
		farm, err := b.linkFarm(ctx)
		defer removeTree(farm) // what ostree did not consume: nothing, unless it failed
		if err != nil {
			<-sized
			return fmt.Errorf("variant %s, step %s: storing the result: %w", b.v.Name, name, err)
		}
		tree = farm
	}
	result, err := b.store.Commit(ctx, ostreeops.CommitOptions{
		Branch: "cache/" + r.st.kind + "/" + string(r.sr.Key), Tree: tree, Parent: "none",
		Timestamp: "1970-01-01T00:00:00Z", NoBindings: true, NoFsync: true, LinkSpeedup: b.linked(),
		Consume: r.adopt,
	})
	size := <-sized // also on failure: nothing reads the tree after return
	if err != nil {
		return fmt.Errorf("variant %s, step %s: storing the result: %w", b.v.Name, name, err)
	}
	r.sr.Duration, r.sr.Result, r.sr.Size = time.Since(r.start), result, size
	// Index entry last: a crash before this line leaves a stored tree nobody
	// points at, never an entry without its tree.
	err = b.idx.Put(r.sr.Key, cache.Entry{Kind: r.st.kind, Variant: b.v.Name, Result: result,
		Size: b.store.CommitSize(result), TreeSize: size, Created: time.Now(), Duration: r.sr.Duration},
		lastOwner(r.st, b.v), name, r.pre.Fields())
	if err != nil {
		return err
	}
	log.Info().Str("step", name).Dur("duration", r.sr.Duration).Dur("storing", time.Since(stored)).
		Bool("linked", b.linked()).Bool("adopted", r.adopt).Int64("size", size).Msg(name + ": done")
	return nil
}

// storeGrace is how long an interrupted build lets a result that is being
// stored in the background finish, so the next run need not redo its step.
// With run.KillGrace for the store's ostree to die and the unmounts and
// tree removal after it, it stays inside the 5 s mage allows a target after
// Ctrl-C on a busy machine (at 2.5 s, a CI run took 5.03 s).
var storeGrace = 1500 * time.Millisecond

// speculation is the step after one being stored, run meanwhile on an
// overlay over the same tree: on two cores, ostree's hashing and copying
// overlaps apt or dracut. Its key is known once the store has ended.
type speculation struct {
	at    int // its index in the chain
	ovl   *overlay.Overlay
	began time.Time
}

// drop discards a speculation's work (nil: nothing to drop).
func (s *speculation) drop() error {
	if s == nil {
		return nil
	}
	return s.ovl.Drop()
}

// storeWhileNextRuns stores r's result in the background while next (at
// chain index at) runs on an overlay, and adds r's report once stored.
func (b *variantBuild) storeWhileNextRuns(ctx context.Context, r *stepRun, next step, at int, rep *Report, log logger) (*speculation, error) {
	r.adopt = b.canAdopt(ctx)
	var then func()
	if next.kind == StepPostprocess && b.ready != nil {
		then = b.ready // the last layer: children can start as soon as it is stored
	}
	stored := b.storeInBackground(ctx, r, then, log)
	log.Info().Str("step", next.name()).Msg(next.name() + ": running while the previous result is stored")
	began := time.Now()
	stop := b.progress(log, next.name(), began)
	ovl, serr := b.onOverlay(ctx, next, nil)
	stop()
	perr := <-stored
	rep.Steps = append(rep.Steps, r.sr)
	if perr != nil {
		if ovl != nil {
			perr = errors.Join(perr, ovl.Drop())
		}
		return nil, b.explain(b.failed(r.sr.Name, perr), r.sr.Name)
	}
	b.holds = r.sr.Result
	if r.adopt {
		b.loose, b.adopted = 0, true // its files are the store's objects now
	}
	if serr != nil {
		rep.Steps = append(rep.Steps, StepReport{Variant: b.v.Name, Step: next.kind, Name: next.name()})
		return nil, b.explain(b.failed(next.name(), serr), next.name())
	}
	return &speculation{at: at, ovl: ovl, began: began}, nil
}

// storeInBackground stores r's result, then calls then (when not nil) if
// that worked; an interrupt gives it storeGrace.
func (b *variantBuild) storeInBackground(ctx context.Context, r *stepRun, then func(), log logger) <-chan error {
	done := make(chan error, 1)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(storeGrace):
				cancel()
			case <-finished:
			}
		case <-finished:
		}
	}()
	go func() {
		defer cancel()
		defer close(finished)
		err := b.storeResult(sctx, r, log)
		if err == nil && then != nil {
			then()
		}
		done <- err
	}()
	return done
}

// lastOwner is whose history a step's key joins: an install step belongs to
// its layer, shared by every variant built on it.
func lastOwner(st step, v *variants.Variant) string {
	if st.kind == StepInstall {
		return st.layer.Name
	}
	return v.Name
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

// execute makes sure the tree holds the step's starting point, then runs it.
func (b *variantBuild) execute(ctx context.Context, ps plannedStep, log logger) error {
	st := ps.step
	if st.kind == StepBootstrap {
		if err := removeTree(b.work); err != nil {
			return err
		}
		if err := os.MkdirAll(b.work, 0o755); err != nil {
			return err
		}
		b.loose = notLinked
		if err := b.bootstrap(ctx, b.tree); err != nil {
			return err
		}
		b.freshLists = true
		return nil
	}
	from, only := ps.parent, []string(nil)
	if st.kind == StepInstall {
		from, only = b.incrementalBase(ps)
	}
	if b.holds != from {
		if err := b.restore(ctx, from, log, st.name()); err != nil {
			return err
		}
	}
	if !b.linked() {
		b.holds = ""
		return b.body(ctx, st, b.tree, only)
	}
	ovl, err := b.onOverlay(ctx, st, only)
	if err != nil {
		b.holds = ""
		return err
	}
	return b.applyOverlay(ovl)
}

// body runs an install or postprocess step in root.
func (b *variantBuild) body(ctx context.Context, st step, root string, only []string) error {
	switch st.kind {
	case StepInstall:
		return b.install(ctx, root, st.layer, only)
	case StepPostprocess:
		return b.postprocess(ctx, root)
	}
	return fmt.Errorf("unknown step %s", st.kind)
}

// onOverlay runs a step on an overlay over the tree, leaving the tree as it
// was; on failure the overlay is unmounted.
func (b *variantBuild) onOverlay(ctx context.Context, st step, only []string) (*overlay.Overlay, error) {
	ovl, err := overlay.Mount(ctx, b.cfg.Runner, b.tree, filepath.Join(b.work, "overlay"))
	if err != nil {
		return nil, fmt.Errorf("mounting an overlay on the tree: %w", err)
	}
	if err := b.body(ctx, st, ovl.Merged, only); err != nil {
		return nil, errors.Join(err, ovl.Unmount())
	}
	return ovl, nil
}

// restore checks a stored result out as the work tree.
func (b *variantBuild) restore(ctx context.Context, commit string, log logger, name string) error {
	b.holds = ""
	if err := removeTree(b.tree); err != nil {
		return err
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	start := time.Now()
	b.loose, b.adopted = notLinked, false
	if b.useOverlays(ctx) {
		if err := b.store.CheckoutLinked(ctx, commit, b.tree); err == nil {
			b.loose = 0
		} else {
			log.Info().Err(err).Msg("a linked checkout failed; restoring by copy")
			if err := removeTree(b.tree); err != nil {
				return err
			}
		}
	}
	if !b.linked() {
		if err := b.store.Checkout(ctx, commit, b.tree); err != nil {
			return fmt.Errorf("restoring the cached tree %s (run `mage clean` if the cache is damaged): %w", short(commit), err)
		}
	}
	log.Info().Str("step", name).Dur("duration", time.Since(start)).Msg("restored a cached tree")
	b.holds, b.freshLists = commit, false
	return nil
}

// incrementalBase finds a cheaper start for an install step: the layer's
// previous result on the same parent, when everything it installed is still
// wanted. Then only the missing or changed packages are installed; with
// versions from the lock, the result holds the same packages as a fresh
// install. It returns the parent and nil when there is no such result.
func (b *variantBuild) incrementalBase(ps plannedStep) (string, []string) {
	parent := ps.parent
	last, ok := b.idx.Last(ps.layer.Name, ps.name())
	if !ok {
		return parent, nil
	}
	prev := map[string]string{}
	for _, f := range last.Fields {
		prev[f.Label] = f.Value
	}
	cur := map[string]string{}
	for _, f := range ps.pre.Fields() {
		cur[f.Label] = f.Value
	}
	for _, same := range []string{"parent", "mirror", "sources", "recommends", "source-date-epoch"} {
		if prev[same] != cur[same] {
			return parent, nil
		}
	}
	e, ok, _ := b.idx.Lookup(last.Key, b.validStored)
	if !ok {
		return parent, nil
	}
	had := map[string]string{}
	for _, p := range strings.Split(prev["locked-packages"], "\n") {
		if f := strings.Fields(p); len(f) == 3 {
			had[f[0]+":"+f[2]] = f[1]
		}
	}
	want := map[string]bool{}
	var add []string
	for _, p := range strings.Split(cur["locked-packages"], "\n") {
		f := strings.Fields(p)
		if len(f) != 3 {
			continue
		}
		want[f[0]+":"+f[2]] = true
		if had[f[0]+":"+f[2]] != f[1] {
			add = append(add, p)
		}
	}
	for k := range had {
		if !want[k] {
			return parent, nil // a package went away: only a fresh install drops it
		}
	}
	// Files are all written again; one the layer no longer has would stay.
	wantFiles := filePaths(cur["files"])
	for p := range filePaths(prev["files"]) {
		if !wantFiles[p] {
			return parent, nil
		}
	}
	if len(had) == 0 || len(add) == 0 && prev["files"] == cur["files"] {
		return parent, nil
	}
	return e.Result, append([]string{}, add...) // non-nil: install just these
}

// filePaths is the paths of a "files" key field (lines "path=digest").
func filePaths(v string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(v, "\n") {
		if p, _, ok := strings.Cut(l, "="); ok {
			out[p] = true
		}
	}
	return out
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

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
