package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	linked, err := linkDebs(b.cfg.DebsDir, private)
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
	if missing := missingDebs(private, locked); len(missing) > 0 {
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
		if _, err := linkDebs(b.cfg.DebsDir, private); err != nil {
			return err
		}
	}
	if err := c.bind(ctx, private, "var/cache/apt/archives"); err != nil {
		return err
	}
	_, err = c.run(ctx, env, args...)
	// A file apt still fetched (one debFile spells differently) is kept.
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

// linkDebs fills dir with hard links to the packages of the shared cache
// debs. It reports false when debs is on another filesystem.
func linkDebs(debs, dir string) (bool, error) {
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o755); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(debs)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		err := os.Link(filepath.Join(debs, e.Name()), filepath.Join(dir, e.Name()))
		switch {
		case errors.Is(err, syscall.EXDEV):
			return false, nil
		case err != nil && !errors.Is(err, os.ErrExist):
			return false, fmt.Errorf("linking the package cache's %s: %w", e.Name(), err)
		}
	}
	return true, nil
}

// missingDebs lists the locked packages ("name version arch") whose file
// dir lacks.
func missingDebs(dir string, locked []string) []string {
	var out []string
	for _, l := range locked {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, debFile(f[0], f[1], f[2]))); err != nil {
			out = append(out, f[0]+"="+f[1])
		}
	}
	return out
}

// debFile is the name apt gives a package's file in its archives folder
// (pkgAcqArchive): name_version_arch.deb, each part with '_', ':', '%' and
// unprintable bytes written %xx, the architecture also '.'.
func debFile(name, version, arch string) string {
	return aptQuote(name, "_:") + "_" + aptQuote(version, "_:") + "_" + aptQuote(arch, "_:.") + ".deb"
}

// aptQuote is apt's QuoteString.
func aptQuote(s, bad string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(bad, c) >= 0 || c == '%' || c <= 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
