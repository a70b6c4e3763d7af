package build

import (
	"context"
	"fmt"
	"strings"

	"github.com/debian-atomic/builder/variants"
)

// LockChange is how one variant's locked package set changed.
type LockChange struct {
	Variant string   `json:"variant"`
	Changes []string `json:"changes"` // +added, -removed, " name old -> new"; new versions from the security archive end in " (security)", from a -updates suite in " (updates)"
	// Security counts the changes marked (security).
	Security int `json:"security"`
}

// ensureLocked resolves, from the archive, every layer of vs that the lock
// does not hold for its current inputs (all of them when force is set, as
// `mage update` does), writes the lock, and says what changed. With a fresh
// lock it does nothing and needs no network.
func (s *Session) ensureLocked(ctx context.Context, vs []*variants.Variant, force bool) ([]LockChange, error) {
	before := map[string][]string{}
	stale := false
	for _, v := range vs {
		before[v.Name] = lockedBefore(s.lock, v)
		if force || !s.lock.Fresh(v) {
			stale = true
		}
	}
	if !stale {
		return nil, nil
	}
	if force {
		// Every archive is read again: the lock names those of this run
		// only, not those of suites or mirrors no longer followed.
		s.lock.Archives = map[string]variants.ArchiveState{}
	}
	done := map[string]bool{} // layers and bootstraps resolved in this run
	resolvers := map[string]*resolver{}
	get := func(base *variants.Variant, sources []string) (*resolver, error) {
		r, err := newResolver(s.cfg, base, sources)
		if err != nil {
			return nil, err
		}
		if cached, ok := resolvers[r.dir]; ok {
			return cached, nil
		}
		s.cfg.Log.Info().Str("mirror", base.Mirror).Strs("suites", base.Suites()).Msg("reading the archive's package lists to lock package versions")
		if err := r.update(ctx); err != nil {
			return nil, err
		}
		for k, st := range r.archives() {
			s.lock.Archives[k] = st
		}
		resolvers[r.dir] = r
		return r, nil
	}
	for _, v := range vs {
		layers := v.Layers()
		base := layers[0]
		bid := base.BootstrapID()
		if _, ok := s.lock.Bootstraps[bid]; !ok || force && !done[bid] {
			r, err := get(base, nil)
			if err != nil {
				return nil, err
			}
			if s.lock.Bootstraps[bid], err = r.essential(ctx); err != nil {
				return nil, err
			}
			done[bid] = true
		}
		installed := s.lock.Bootstraps[bid]
		for _, l := range layers {
			e, ok := s.lock.Variants[l.Name]
			if !done[l.Name] && (force || !ok || e.Input != l.LayerInput()) {
				r, err := get(base, sourcesUpTo(l))
				if err != nil {
					return nil, err
				}
				pkgs, err := r.layer(ctx, installed, l.Packages, l.Recommends)
				if err != nil {
					return nil, fmt.Errorf("locking %s: %w", l.File, err)
				}
				e = variants.LockedLayer{Input: l.LayerInput(), Packages: pkgs}
				if l.Parent != nil {
					e.Parent = l.Parent.Name
				} else {
					e.Bootstrap = bid
				}
				s.lock.Variants[l.Name] = e
				done[l.Name] = true
			}
			installed = variants.DedupeSet(append(installed, e.Packages...))
		}
	}
	pruneBootstraps(s.lock)
	s.lock.SetEpoch() // a new lock's epoch: the newest Release date just read
	if err := s.lock.Write(s.cfg.VariantsDir); err != nil {
		return nil, fmt.Errorf("writing %s: %w", variants.LockFile, err)
	}
	origins := map[string]origin{}
	for _, r := range resolvers {
		for k, p := range r.origins {
			origins[k] = p
		}
	}
	var changes []LockChange
	for _, v := range vs {
		full := s.lock.FullSet(v)
		if force {
			sec, upd := countPockets(full, origins)
			s.cfg.Log.Info().Str("variant", v.Name).Int("packages", len(full)).Int("security", sec).Int("updates", upd).
				Msgf("%d of %d locked packages are fixes only the security archive has (no point release yet), %d only %s-updates has",
					sec, len(full), upd, v.Suite)
		}
		if d := variants.PackageDiff(before[v.Name], full); len(d) > 0 {
			c := markPockets(LockChange{Variant: v.Name, Changes: d}, origins)
			changes = append(changes, c)
			s.cfg.Log.Info().Str("variant", v.Name).Int("changes", len(d)).Int("security", c.Security).Msg("locked packages changed: " + summarize(c.Changes, 8))
		}
	}
	return changes, nil
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

// markPockets appends " (security)" or " (updates)" to the changes whose new
// version came from there; origins maps "name version" to the pocket.
func markPockets(c LockChange, origins map[string]origin) LockChange {
	for i, l := range c.Changes {
		if strings.HasPrefix(l, "-") {
			continue
		}
		f := strings.Fields(l[1:]) // "name new" or "name old -> new"
		if len(f) < 2 {
			continue
		}
		switch origins[f[0]+" "+f[len(f)-1]].pocket {
		case variants.PocketSecurity:
			c.Changes[i] = l + " (security)"
			c.Security++
		case variants.PocketUpdates:
			c.Changes[i] = l + " (updates)"
		}
	}
	return c
}

// countPockets counts the locked entries ("name version arch") whose version
// only the security archive, or only a -updates suite, has: what following
// them brings that the suite (its last point release) does not.
func countPockets(locked []string, origins map[string]origin) (security, updates int) {
	for _, e := range locked {
		f := strings.Fields(e)
		if len(f) != 3 {
			continue
		}
		o := origins[f[0]+" "+f[1]]
		if o.inSuite {
			continue
		}
		switch o.pocket {
		case variants.PocketSecurity:
			security++
		case variants.PocketUpdates:
			updates++
		}
	}
	return security, updates
}

func summarize(d []string, n int) string {
	if len(d) <= n {
		return strings.Join(d, ", ")
	}
	return fmt.Sprintf("%s, and %d more", strings.Join(d[:n], ", "), len(d)-n)
}
