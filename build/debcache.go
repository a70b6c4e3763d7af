package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/debian-atomic/builder/debcache"
)

// The shared package cache (Config.DebsDir) holds every downloaded .deb
// once for all builds. apt locks its archives folder for a whole install,
// downloads and dpkg alike, so installs that share the folder take turns:
// gnome's and plasma's, side by side in `mage all`, did, 95 s each. So
// only downloads use the shared folder, under the cache's lock; apt then
// installs from a private folder of hard links to it, without the lock.

// sharedDebsInTree is where a download sees the shared cache in the tree.
const sharedDebsInTree = "run/debian-atomic/debs"

// lockDebs serialises downloads into the shared package cache: builds with
// other caches may share it, and two apt runs in one folder fail on its lock.
func (b *variantBuild) lockDebs(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(b.cfg.DebsDir, 0o755); err != nil {
		return nil, err
	}
	l, err := AcquireLock(ctx, filepath.Join(b.cfg.DebsDir, ".lock"), func(holder string) {
		b.cfg.Log.Info().Str("holder", holder).Msg("waiting for another build using the package cache")
	})
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// aptInstall installs locked ("name version arch") in the tree: first, under
// the lock, it downloads what the shared cache lacks; then apt installs
// from private, a folder of hard links to the cache, on its own. When the
// cache is on another filesystem (no hard links), apt installs from the
// shared folder, under the lock, as one build at a time.
func (b *variantBuild) aptInstall(ctx context.Context, c *chroot, private string, args []string, locked []string) error {
	env := append(b.epochEnv(), aptEnv...)
	linked, err := debcache.Link(b.cfg.DebsDir, private)
	if err != nil {
		return err
	}
	if !linked {
		return b.withSharedDebs(ctx, func() error {
			if err := c.bind(ctx, b.cfg.DebsDir, "var/cache/apt/archives"); err != nil {
				return err
			}
			_, err := c.run(ctx, env, args...)
			return err
		})
	}
	if missing := debcache.Missing(private, locked); len(missing) > 0 {
		b.cfg.Log.Debug().Str("variant", b.v.Name).Strs("missing", missing).Msg("downloading into the package cache")
		err := b.withSharedDebs(ctx, func() error {
			if err := c.bind(ctx, b.cfg.DebsDir, sharedDebsInTree); err != nil {
				return err
			}
			dl := append([]string{args[0], args[1], "--download-only", "-o", "Dir::Cache::Archives=/" + sharedDebsInTree + "/"}, args[2:]...)
			_, err := c.run(ctx, env, dl...)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := debcache.Link(b.cfg.DebsDir, private); err != nil {
			return err
		}
	}
	if err := c.bind(ctx, private, "var/cache/apt/archives"); err != nil {
		return err
	}
	cpus, release := b.installCPUs()
	defer release()
	_, err = c.runOn(ctx, cpus, env, args...)
	// A file apt still fetched (one debcache.FileName spells differently) is kept.
	return errors.Join(err, harvestDebs(private, b.cfg.DebsDir))
}

// withSharedDebs runs f holding the shared package cache's lock.
func (b *variantBuild) withSharedDebs(ctx context.Context, f func() error) error {
	unlock, err := b.lockDebs(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// installCPUs are the CPUs an install runs on while other variants build
// beside it: its share of them, the least busy (see package cpupin). An
// install alone is not pinned.
func (b *variantBuild) installCPUs() ([]int, func()) {
	n := int(b.building.Load())
	if n < 2 {
		return nil, func() {}
	}
	all := b.cfg.cpus()
	return b.cpus.Take(all, max(1, len(all)/n))
}
