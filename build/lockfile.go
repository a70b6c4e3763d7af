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
		before[v.Name] = s.lock.FullSet(v)
		if force || !s.lock.Fresh(v) {
			stale = true
		}
	}
	if !stale {
		return nil, nil
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
	s.lock.SetEpoch() // a new lock's epoch: the newest Release date just read
	if err := s.lock.Write(s.cfg.VariantsDir); err != nil {
		return nil, fmt.Errorf("writing %s: %w", variants.LockFile, err)
	}
	origins := map[string]string{}
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
				Msgf("%d of %d locked packages come from the security archive, %d from %s-updates", sec, len(full), upd, v.Suite)
		}
		if d := variants.PackageDiff(before[v.Name], full); len(d) > 0 {
			c := markPockets(LockChange{Variant: v.Name, Changes: d}, origins)
			changes = append(changes, c)
			s.cfg.Log.Info().Str("variant", v.Name).Int("changes", len(d)).Int("security", c.Security).Msg("locked packages changed: " + summarize(c.Changes, 8))
		}
	}
	return changes, nil
}

// markPockets appends " (security)" or " (updates)" to the changes whose new
// version came from there; origins maps "name version" to the pocket.
func markPockets(c LockChange, origins map[string]string) LockChange {
	for i, l := range c.Changes {
		if strings.HasPrefix(l, "-") {
			continue
		}
		f := strings.Fields(l[1:]) // "name new" or "name old -> new"
		if len(f) < 2 {
			continue
		}
		switch origins[f[0]+" "+f[len(f)-1]] {
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
// came from the security archive and from a -updates suite.
func countPockets(locked []string, origins map[string]string) (security, updates int) {
	for _, e := range locked {
		f := strings.Fields(e)
		if len(f) != 3 {
			continue
		}
		switch origins[f[0]+" "+f[1]] {
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
