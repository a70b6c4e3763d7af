package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

// seedHook is an mmdebstrap setup hook that hardlinks the shared package cache
// into the new tree, so apt inside mmdebstrap downloads only what is new. It
// is a file run directly by mmdebstrap, not a shell string built from input;
// the cache folder reaches it through the environment.
const seedHook = `#!/bin/sh
# debian-atomic: seed mmdebstrap's package cache from the shared one.
set -eu
dest="$1/var/cache/apt/archives"
mkdir -p "$dest/partial"
[ -d "$DEBIAN_ATOMIC_DEBS" ] || exit 0
# Hard links cost nothing; a cache on another filesystem is copied instead.
find "$DEBIAN_ATOMIC_DEBS" -maxdepth 1 -name '*.deb' -exec cp -l -f -t "$dest/" {} + 2>/dev/null ||
	find "$DEBIAN_ATOMIC_DEBS" -maxdepth 1 -name '*.deb' -exec cp -f -t "$dest/" {} +
`

// mmdebstrapDpkgConf is where mmdebstrap writes --dpkgopt options.
const mmdebstrapDpkgConf = "etc/dpkg/dpkg.cfg.d/99mmdebstrap"

// bootstrapArgs is the bootstrap tool's command line for v into root.
// mmdebstrap reads every suite from sources, a deb822 file of the build's
// mirrors (pasted into the tree, where bootstrap replaces it); debootstrap
// takes one suite and mirror, and bootstrap brings the rest.
func bootstrapArgs(v *variants.Variant, root, debs, hook, sources string) []string {
	comps := strings.Join(v.Components, ",")
	switch v.Bootstrap {
	case variants.Debootstrap:
		return []string{"debootstrap", "--variant=minbase", "--arch=" + v.Architecture,
			"--components=" + comps, "--cache-dir=" + debs, "--merged-usr",
			v.Suite, root, v.Mirror}
	default:
		return []string{"mmdebstrap", "--mode=root", "--variant=minbase",
			"--architectures=" + v.Architecture, "--components=" + comps,
			// Keep downloaded packages for the shared cache, and the package
			// lists so the install step's apt-get update is incremental.
			"--skip=download/empty", "--skip=essential/unlink", "--skip=cleanup/apt/lists",
			// No fsync per unpacked file: the stored result is what lasts.
			// mmdebstrap leaves the setting in the tree; bootstrap removes it.
			"--dpkgopt=force-unsafe-io",
			"--setup-hook=" + hook,
			v.Suite, root, sources}
	}
}

// bootstrap creates a minimal Debian tree at root.
func (b *variantBuild) bootstrap(ctx context.Context, root string) error {
	v := b.v
	if err := os.MkdirAll(b.cfg.DebsDir, 0o755); err != nil {
		return err
	}
	hook := filepath.Join(b.cfg.CacheDir, "hooks", "seed-debs")
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(hook, []byte(seedHook), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	unlock, err := b.lockDebs(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	sources := filepath.Join(filepath.Dir(hook), v.Name+".sources")
	if err := os.WriteFile(sources, []byte(v.BuildSources()), 0o644); err != nil {
		return err
	}
	args := bootstrapArgs(v, root, b.cfg.DebsDir, hook, sources)
	_, err = b.cfg.Runner.Run(ctx, run.Cmd{Args: args, Env: append([]string{DebsEnv + "=" + b.cfg.DebsDir}, b.epochEnv()...)})
	if err != nil {
		return fmt.Errorf("%s of %s from %s failed (check the suite and mirrors in %s): %w", v.Bootstrap, strings.Join(v.Suites(), ", "), v.Mirror, v.File, err)
	}
	if err := harvestDebs(filepath.Join(root, "var", "cache", "apt", "archives"), b.cfg.DebsDir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(root, mmdebstrapDpkgConf)); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeSystemSources(root, v); err != nil {
		return err
	}
	locked := b.lock.Bootstraps[v.Layers()[0].BootstrapID()]
	if v.Bootstrap == variants.Debootstrap && len(v.Suites()) > 1 {
		if err := b.upgradeToLock(ctx, root, locked); err != nil {
			return err
		}
	}
	return checkAgainstLock(root, locked)
}

// writeSystemSources leaves the tree one apt sources file, the committed
// system's: /etc/apt/sources.list.d/debian.sources with the variant's
// suites. What the bootstrap tool wrote (a sources.list naming the build's
// mirror, mmdebstrap's 0000*.sources) goes, so apt on a deployed machine
// sees the same suites the image was built from, and nothing else.
func writeSystemSources(root string, v *variants.Variant) error {
	dir := filepath.Join(root, filepath.Dir(variants.SourcesFile))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !os.IsNotExist(err) {
		return err
	}
	old, _ := os.ReadDir(dir)
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(root, variants.SourcesFile), []byte(v.SystemSources()), 0o644)
}

// upgradeToLock installs the locked versions of the bootstrap's packages
// that debootstrap, which reads the suite alone, installed older: fixes from
// SUITE-updates and SUITE-security, as mmdebstrap's bootstrap has them.
func (b *variantBuild) upgradeToLock(ctx context.Context, root string, locked []string) error {
	status, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return fmt.Errorf("the bootstrap left no dpkg status: %w", err)
	}
	have := map[string]string{}
	for _, p := range installedPackages(status) {
		have[p[0]+":"+p[2]] = p[1]
	}
	var newer []string
	for _, e := range locked {
		if f := strings.Fields(e); len(f) == 3 {
			if ver, ok := have[f[0]+":"+f[2]]; ok && ver != f[1] {
				newer = append(newer, e)
			}
		}
	}
	if len(newer) == 0 {
		return nil
	}
	b.cfg.Log.Info().Int("packages", len(newer)).Strs("suites", b.v.Suites()).Msg("bringing debootstrap's packages to the locked versions")
	return inChroot(ctx, b.cfg.Runner, root, func(c *chroot) error {
		if err := c.blockServices(); err != nil {
			return err
		}
		if err := c.withHostResolver(); err != nil {
			return err
		}
		if err := c.bind(ctx, b.cfg.DebsDir, "var/cache/apt/archives"); err != nil {
			return err
		}
		if _, err := c.withBuildSources(ctx, b.v); err != nil {
			return err
		}
		env := append(b.epochEnv(), aptEnv...)
		if _, err := c.run(ctx, env, "apt-get", "update", "-q", "--error-on=any"); err != nil {
			return fmt.Errorf("apt-get update from %s failed: %w", strings.Join(b.v.Suites(), ", "), err)
		}
		if _, err := c.run(ctx, env, aptInstallArgs(false, newer)...); err != nil {
			return aptFailed("upgrading debootstrap's packages to the locked versions", err)
		}
		return nil
	})
}

// checkAgainstLock fails when the bootstrap installed other versions than
// the lock names: the mirror has moved on, and building on would drift.
func checkAgainstLock(root string, locked []string) error {
	status, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return fmt.Errorf("the bootstrap left no dpkg status: %w", err)
	}
	want := map[string]string{}
	for _, e := range locked {
		if f := strings.Fields(e); len(f) == 3 {
			want[f[0]+":"+f[2]] = f[1]
		}
	}
	var drift []string
	for _, p := range installedPackages(status) {
		if ver, ok := want[p[0]+":"+p[2]]; ok && ver != p[1] {
			drift = append(drift, fmt.Sprintf("%s %s (the mirror now has %s)", p[0], ver, p[1]))
		}
	}
	if len(drift) > 0 {
		return &LockDriftError{Missing: drift}
	}
	return nil
}

// harvestDebs moves downloaded packages from a tree into the shared cache and
// leaves the tree's package cache empty.
func harvestDebs(archives, debs string) error {
	entries, err := os.ReadDir(archives)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		src := filepath.Join(archives, e.Name())
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".deb") {
			if err := keepDeb(src, filepath.Join(debs, e.Name())); err != nil {
				return fmt.Errorf("keeping %s in the package cache: %w", e.Name(), err)
			}
			continue
		}
		if e.Name() != "partial" && e.Name() != "lock" {
			os.RemoveAll(src)
		}
	}
	os.RemoveAll(filepath.Join(archives, "partial"))
	os.Remove(filepath.Join(archives, "lock"))
	return nil
}

// keepDeb moves a package file into the shared cache: a rename, or a copy
// when the cache is on another filesystem and does not have it yet.
func keepDeb(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	defer os.Remove(src)
	if a, b := fileSize(src), fileSize(dst); a == b && a >= 0 {
		return nil // seeded from the cache: the same file
	}
	tmp := dst + ".part"
	os.Remove(tmp)
	if err := treelayout.CopyFile(src, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	os.Chmod(tmp, 0o644)
	return os.Rename(tmp, dst)
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}
