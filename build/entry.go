package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// Variants builds the named variants, each after its parent, siblings side
// by side (up to Jobs at once), and ends with a summary. A failed variant
// does not stop the others; every error is returned at the end.
func Variants(ctx context.Context, cfg Config, names []string) ([]Report, error) {
	s, vs, err := Open(ctx, cfg, names)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.ensureLocked(ctx, vs, false); err != nil {
		return nil, err
	}
	reports, err := s.buildParallel(ctx, vs)
	Summarize(os.Stderr, cfg.Log, reports)
	return reports, err
}

// All builds every variant in the variants folder.
func All(ctx context.Context, cfg Config) ([]Report, error) {
	names, err := Ordered(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	return Variants(ctx, cfg, names)
}

// Ordered lists the variants with every parent before its children, so
// children find their parents' layers cached.
func Ordered(dir string) ([]string, error) {
	names, err := variants.List(dir)
	if err != nil {
		return nil, err
	}
	depth := map[string]int{}
	for _, n := range names {
		v, err := variants.LoadChain(dir, n)
		if err != nil {
			return nil, err
		}
		depth[n] = len(v.Layers())
	}
	sort.SliceStable(names, func(i, j int) bool { return depth[names[i]] < depth[names[j]] })
	return names, nil
}

// Update locks every variant afresh from the archive and says, per variant,
// what changed. The next build rebuilds only the variants whose set changed.
func Update(ctx context.Context, cfg Config) ([]LockChange, error) {
	return lockAll(ctx, cfg, true)
}

// LockVariants resolves what a build of every variant would resolve first (the
// layers whose packages, sources or parent changed since the lock) and
// writes the lock, without building: edit a package list, lock, commit both.
func LockVariants(ctx context.Context, cfg Config) ([]LockChange, error) {
	return lockAll(ctx, cfg, false)
}

// lockAll locks every variant: what changed, or (afresh) everything.
func lockAll(ctx context.Context, cfg Config, afresh bool) ([]LockChange, error) {
	names, err := Ordered(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	s, vs, err := Open(ctx, cfg, names)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.ensureLocked(ctx, vs, afresh)
}

// Diff lists the packages added, removed and changed between the last two
// commits of a variant's ref, from their metadata.
func Diff(ctx context.Context, cfg Config, name string) (from, to string, changes []string, err error) {
	v, err := variants.LoadChain(cfg.VariantsDir, name)
	if err != nil {
		return "", "", nil, err
	}
	out := cfg.outRepo()
	to, ok := out.RevParse(ctx, v.Ref)
	if !ok {
		return "", "", nil, fmt.Errorf("%s has no commit yet: build it first (mage build:variant %s)", v.Ref, name)
	}
	from = out.Parent(ctx, to)
	if from == "" {
		return "", to, nil, fmt.Errorf("%s has one commit only (%s): nothing to compare", v.Ref, short(to))
	}
	pk := func(c string) ([]string, error) {
		text, err := out.Metadata(ctx, c, MetaPackages)
		if err != nil {
			return nil, err
		}
		s := ostreeops.GVariantStrings(text)
		var l []string
		for i := 0; i+2 < len(s); i += 3 {
			l = append(l, s[i]+" "+s[i+1]+" "+s[i+2])
		}
		return l, nil
	}
	a, err := pk(from)
	if err != nil {
		return "", "", nil, err
	}
	b, err := pk(to)
	if err != nil {
		return "", "", nil, err
	}
	return from, to, variants.PackageDiff(a, b), nil
}

// VariantStatus says whether a variant's ref is up to date, and if not why.
type VariantStatus struct {
	Variant  string   `json:"variant"`
	Ref      string   `json:"ref"`
	Commit   string   `json:"commit,omitempty"`
	Version  string   `json:"version,omitempty"`
	RootTree string   `json:"root_tree,omitempty"` // the commit's root tree checksum: compare with a rebuild
	UpToDate bool     `json:"up_to_date"`
	Rebuild  string   `json:"rebuild_from,omitempty"` // first step that would run
	Why      []string `json:"why,omitempty"`
	Err      string   `json:"error,omitempty"`
}

// Status reports every variant without building anything or using the network.
func Status(ctx context.Context, cfg Config) ([]VariantStatus, error) {
	names, err := Ordered(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	var idx *cache.Index
	if exists(cfg.indexPath()) {
		if idx, err = cache.OpenIndex(cfg.indexPath(), 3*time.Second); err != nil {
			return nil, err
		}
		defer idx.Close()
	}
	lock, err := variants.ReadLock(cfg.VariantsDir)
	if err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == nil {
		host = newRealHost(cfg)
	}
	store, out := cfg.storeRepo(), cfg.outRepo()
	var all []VariantStatus
	for _, n := range names {
		st := VariantStatus{Variant: n}
		v, err := variants.LoadChain(cfg.VariantsDir, n)
		if err != nil {
			st.Err = err.Error()
			all = append(all, st)
			continue
		}
		st.Ref = v.Ref
		refKey := ""
		if out.Exists() {
			if cur, ok := out.RevParse(ctx, v.Ref); ok {
				st.Commit = cur
				meta := readMeta(ctx, out, cur, MetaVersion, MetaRootTree, MetaInputKey)
				st.Version, st.RootTree, refKey = meta[MetaVersion], meta[MetaRootTree], meta[MetaInputKey]
			}
		}
		if !lock.Fresh(v) {
			st.Rebuild = "lock"
			staleParent := ""
			for _, l := range v.Layers() {
				e, ok := lock.Variants[l.Name]
				switch {
				case !ok:
					st.Why = append(st.Why, fmt.Sprintf("%s has no entry in %s", l.Name, variants.LockFile))
				case e.Input != l.LayerInput() && staleParent != "":
					st.Why = append(st.Why, fmt.Sprintf("%s is locked on an earlier %s", l.Name, staleParent))
				case e.Input != l.LayerInput():
					st.Why = append(st.Why, fmt.Sprintf("%s changed since it was locked (packages, recommends or sources)", l.File))
				default:
					continue
				}
				staleParent = l.Name
			}
			all = append(all, st)
			continue
		}
		t := tools{}
		for _, tool := range []string{v.Bootstrap, "ostree"} {
			if t[tool], err = host.ToolVersion(ctx, tool); err != nil {
				st.Err = err.Error()
			}
		}
		if st.Err != "" {
			all = append(all, st)
			continue
		}
		in := planInputs{v: v, lock: lock, tools: t, refCommit: st.Commit, refKey: refKey}
		valid := func(e cache.Entry) error { return store.VerifyCommit(e.Result, e.Size) }
		if miss := makePlan(in, indexView{idx, valid}).firstMiss(); miss != nil {
			st.Rebuild, st.Why = miss.name(), miss.why
		} else {
			st.UpToDate = true
		}
		all = append(all, st)
	}
	return all, nil
}

// Clean removes what the builder made: mounts left behind, work trees, the
// cache store and index, the package cache and the output repository.
func Clean(ctx context.Context, cfg Config) error {
	lock, err := AcquireLock(ctx, filepath.Join(cfg.CacheDir, "lock"), func(holder string) {
		cfg.Log.Warn().Str("holder", holder).Msg("a build is running; waiting for it before cleaning")
	})
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := unmountUnder(cfg.Runner, cfg.CacheDir); err != nil {
		return err
	}
	var errs []error
	// The output repository and package cache may live elsewhere; remove them
	// only when they are what the builder made.
	if r := (ostreeops.Repo{Path: cfg.RepoDir}); r.Exists() {
		errs = append(errs, removeTree(cfg.RepoDir))
	}
	entries, _ := os.ReadDir(cfg.CacheDir)
	for _, e := range entries {
		if e.Name() == "lock" {
			continue
		}
		errs = append(errs, removeTree(filepath.Join(cfg.CacheDir, e.Name())))
	}
	if cfg.DebsDir != filepath.Join(cfg.CacheDir, "debs") {
		errs = append(errs, removeDebs(cfg.DebsDir))
	}
	cfg.Log.Info().Str("cache", cfg.CacheDir).Str("repo", cfg.RepoDir).Msg("cleaned")
	return errors.Join(errs...)
}

// removeDebs empties a package cache folder of .deb files only.
func removeDebs(dir string) error {
	m, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	for _, f := range m {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}
