package lockresolve

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/variants"
)

// Config is what resolving needs: where the private apt roots live, how
// commands run, where the lock is written.
type Config struct {
	CacheDir    string // apt roots under CacheDir/apt
	VariantsDir string // the lock file's folder
	Runner      run.Runner
	Log         zerolog.Logger
}

// Change is how one variant's locked package set changed.
type Change struct {
	Variant string   `json:"variant"`
	Changes []string `json:"changes"` // +added, -removed, " name old -> new"; new versions from the security archive end in " (security)", from a -updates suite in " (updates)"
	// Security counts the changes marked (security).
	Security int `json:"security"`
}

// Ensure resolves, from the archive, every layer of vs that lock does not
// hold for its current inputs (all of them when force is set, as `mage
// update` does), writes the lock, and says what changed. Layers whose input
// is unchanged keep their locked packages. With a fresh lock it does nothing
// and needs no network.
func Ensure(ctx context.Context, cfg Config, lock *variants.Lock, vs []*variants.Variant, force bool) ([]Change, error) {
	before := map[string][]string{}
	stale := false
	for _, v := range vs {
		before[v.Name] = lockedBefore(lock, v)
		if force || !lock.Fresh(v) {
			stale = true
		}
	}
	if !stale {
		return nil, nil
	}
	start := time.Now()
	if force {
		// Every archive is read again: the lock names those of this run
		// only, not those of suites or mirrors no longer followed.
		lock.Archives = map[string]variants.ArchiveState{}
	}
	done := map[string]bool{} // layers and bootstraps resolved in this run
	resolvers := map[string]*Resolver{}
	get := func(base *variants.Variant, sources []string) (*Resolver, error) {
		r, err := Open(cfg.Runner, cfg.Log, cfg.CacheDir, base, sources)
		if err != nil {
			return nil, err
		}
		if cached, ok := resolvers[r.dir]; ok {
			return cached, nil
		}
		cfg.Log.Info().Str("mirror", base.Mirror).Strs("suites", base.Suites()).Msg("reading the archive's package lists to lock package versions")
		t := time.Now()
		if err := r.Update(ctx); err != nil {
			return nil, err
		}
		cfg.Log.Debug().Float64("seconds", time.Since(t).Seconds()).Msg("package lists up to date")
		for k, st := range r.Archives() {
			lock.Archives[k] = st
		}
		resolvers[r.dir] = r
		return r, nil
	}
	for _, v := range vs {
		layers := v.Layers()
		base := layers[0]
		bid := base.BootstrapID()
		if _, ok := lock.Bootstraps[bid]; !ok || force && !done[bid] {
			r, err := get(base, nil)
			if err != nil {
				return nil, err
			}
			if lock.Bootstraps[bid], err = r.Essential(ctx); err != nil {
				return nil, err
			}
			done[bid] = true
		}
		installed := lock.Bootstraps[bid]
		for _, l := range layers {
			e, ok := lock.Variants[l.Name]
			if !done[l.Name] && (force || !ok || e.Input != l.LayerInput()) {
				r, err := get(base, sourcesUpTo(l))
				if err != nil {
					return nil, err
				}
				t := time.Now()
				pkgs, err := r.Layer(ctx, installed, l.Packages, l.Recommends)
				if err != nil {
					return nil, fmt.Errorf("locking %s: %w", l.File, err)
				}
				cfg.Log.Debug().Str("variant", l.Name).Float64("seconds", time.Since(t).Seconds()).Int("packages", len(pkgs)).Msg("resolved a layer")
				e = variants.LockedLayer{Input: l.LayerInput(), Packages: pkgs}
				if l.Parent != nil {
					e.Parent = l.Parent.Name
				} else {
					e.Bootstrap = bid
				}
				lock.Variants[l.Name] = e
				done[l.Name] = true
			}
			installed = variants.DedupeSet(append(installed, e.Packages...))
		}
	}
	pruneBootstraps(lock)
	lock.SetEpoch() // a new lock's epoch: the newest Release date just read
	t := time.Now()
	if err := lock.Write(cfg.VariantsDir); err != nil {
		return nil, fmt.Errorf("writing %s: %w", variants.LockFile, err)
	}
	cfg.Log.Debug().Float64("seconds", time.Since(t).Seconds()).Msg("wrote the lock")
	origins := map[string]origin{}
	for _, r := range resolvers {
		// countPockets needs to know what the suite offers too.
		if force {
			if err := r.completeOrigins(); err != nil {
				return nil, err
			}
		}
		for k, p := range r.origins {
			origins[k] = p
		}
	}
	var changes []Change
	for _, v := range vs {
		full := lock.FullSet(v)
		if force {
			sec, upd := countPockets(full, origins)
			cfg.Log.Info().Str("variant", v.Name).Int("packages", len(full)).Int("security", sec).Int("updates", upd).
				Msgf("%d of %d locked packages are fixes only the security archive has (no point release yet), %d only %s-updates has",
					sec, len(full), upd, v.Suite)
		}
		if d := variants.PackageDiff(before[v.Name], full); len(d) > 0 {
			c := markPockets(Change{Variant: v.Name, Changes: d}, origins)
			changes = append(changes, c)
			cfg.Log.Info().Str("variant", v.Name).Int("changes", len(d)).Int("security", c.Security).Msg("locked packages changed: " + summarize(c.Changes, 8))
		}
	}
	cfg.Log.Info().Float64("seconds", time.Since(start).Seconds()).Int("layers", len(done)).Msg("locked")
	return changes, nil
}

// sourcesUpTo is the extra apt sources a layer installs with: its own and
// those of every layer under it.
func sourcesUpTo(layer *variants.Variant) []string {
	var out []string
	for _, l := range layer.Layers() {
		out = append(out, l.Sources...)
	}
	return out
}

// lockedBefore is v's full set as the lock holds it, on the bootstrap its
// base layer was locked on: a change of the suites followed renames the
// bootstrap, and the diff should still show versions, not a new system.
func lockedBefore(l *variants.Lock, v *variants.Variant) []string {
	base := v.Layers()[0]
	boot := l.Bootstraps[base.BootstrapID()]
	if e, ok := l.Variants[base.Name]; ok && e.Bootstrap != "" {
		boot = l.Bootstraps[e.Bootstrap]
	}
	all := append([]string(nil), boot...)
	for _, layer := range v.Layers() {
		all = append(all, l.Variants[layer.Name].Packages...)
	}
	return variants.DedupeSet(all)
}

// pruneBootstraps drops bootstraps no locked base layer is on any more.
func pruneBootstraps(l *variants.Lock) {
	used := map[string]bool{}
	for _, e := range l.Variants {
		used[e.Bootstrap] = true
	}
	for id := range l.Bootstraps {
		if !used[id] {
			delete(l.Bootstraps, id)
		}
	}
}

func summarize(d []string, n int) string {
	if len(d) <= n {
		return strings.Join(d, ", ")
	}
	return fmt.Sprintf("%s, and %d more", strings.Join(d[:n], ", "), len(d)-n)
}
