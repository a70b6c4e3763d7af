package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// Variants builds the named variants in order and ends with a summary.
func Variants(ctx context.Context, cfg Config, names []string) ([]Report, error) {
	s, vs, err := Open(ctx, cfg, names)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var reports []Report
	for _, v := range vs {
		rep, err := s.Build(ctx, v)
		reports = append(reports, rep)
		if err != nil {
			Summarize(os.Stderr, cfg.Log, reports)
			return reports, err
		}
	}
	Summarize(os.Stderr, cfg.Log, reports)
	return reports, nil
}

// VariantStatus says whether a variant's ref is up to date, and if not why.
type VariantStatus struct {
	Variant  string   `json:"variant"`
	Ref      string   `json:"ref"`
	Commit   string   `json:"commit,omitempty"`
	Version  string   `json:"version,omitempty"`
	UpToDate bool     `json:"up_to_date"`
	Rebuild  string   `json:"rebuild_from,omitempty"` // first step that would run
	Why      []string `json:"why,omitempty"`
	Err      string   `json:"error,omitempty"`
}

// Status reports every variant without building anything.
func Status(ctx context.Context, cfg Config) ([]VariantStatus, error) {
	names, err := variants.List(cfg.VariantsDir)
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
	host := cfg.Host
	if host == nil {
		host = &realHost{runner: cfg.Runner, versions: map[string]string{}}
	}
	store, out := cfg.storeRepo(), cfg.outRepo()
	var all []VariantStatus
	for _, n := range names {
		st := VariantStatus{Variant: n}
		v, err := variants.Load(cfg.VariantsDir, n)
		if err != nil {
			st.Err = err.Error()
			all = append(all, st)
			continue
		}
		st.Ref = v.Ref
		if out.Exists() {
			if cur, ok := out.RevParse(ctx, v.Ref); ok {
				st.Commit = cur
				st.Version = readMeta(ctx, out, cur, MetaVersion)[MetaVersion]
			}
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
		parent := ""
		for _, step := range Steps {
			pre := preimage(step, v, parent, t)
			key := pre.Sum()
			if step == StepCommit {
				meta := map[string]string{}
				if st.Commit != "" {
					meta = readMeta(ctx, out, st.Commit, MetaInputKey)
				}
				if meta[MetaInputKey] == string(key) {
					st.UpToDate = true
					break
				}
				st.Rebuild, st.Why = step, explain(idx, v.Name, step, pre, "no commit on the ref yet")
				break
			}
			var e cache.Entry
			ok := false
			if idx != nil {
				e, ok, _ = idx.Lookup(key, func(e cache.Entry) error { return store.VerifyCommit(e.Result, e.Size) })
			}
			if !ok {
				st.Rebuild, st.Why = step, explain(idx, v.Name, step, pre, "never built")
				break
			}
			parent = e.Result
		}
		all = append(all, st)
	}
	return all, nil
}

func explain(idx *cache.Index, variant, step string, pre *cache.Preimage, none string) []string {
	if idx == nil {
		return []string{none}
	}
	last, ok := idx.Last(variant, step)
	if !ok {
		return []string{none}
	}
	if d := cache.Diff(last.Fields, pre.Fields()); len(d) > 0 {
		return d
	}
	return []string{"cached result missing or damaged"}
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
