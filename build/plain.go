package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

// PlainScript is the baseline benchmarks compare with: what a person would
// script by hand (mmdebstrap with every package, the same postprocess, one
// ostree commit into dir/repo), with no cache. It shares the package cache.
func PlainScript(ctx context.Context, cfg Config, v *variants.Variant, dir string) error {
	root := filepath.Join(dir, "rootfs")
	os.MkdirAll(dir, 0o755)
	hook := filepath.Join(cfg.CacheDir, "hooks", "seed-debs")
	os.MkdirAll(filepath.Dir(hook), 0o755)
	if err := os.WriteFile(hook, []byte(seedHook), 0o755); err != nil {
		return err
	}
	var pkgs []string
	for _, l := range v.Layers() {
		pkgs = append(pkgs, l.Packages...)
	}
	args := []string{"mmdebstrap", "--mode=root", "--variant=minbase", "--architectures=" + v.Architecture,
		"--components=" + strings.Join(v.Components, ","), "--setup-hook=" + hook,
		"--include=" + strings.Join(pkgs, ","), v.Suite, root, v.Mirror}
	if _, err := cfg.Runner.Run(ctx, run.Cmd{Args: args, Env: append([]string{DebsEnv + "=" + cfg.DebsDir}, aptEnv...)}); err != nil {
		return err
	}
	// dracut runs directly: a plain script has no cache to keep the
	// initramfs in (nor a session's index and store to ask).
	cfg.NoInitramfsCache = true
	b := &variantBuild{Session: &Session{cfg: cfg}, v: v}
	if err := b.postprocess(ctx, root); err != nil {
		return err
	}
	if err := treelayout.EmptyDir(filepath.Join(root, "dev")); err != nil {
		return err
	}
	repo := ostreeops.Repo{Path: filepath.Join(dir, "repo"), Runner: cfg.Runner}
	if err := repo.Init(ctx, "bare"); err != nil {
		return err
	}
	// Bootable as the builder's commit step: when there is a kernel.
	_, err := repo.Commit(ctx, ostreeops.CommitOptions{Branch: v.Ref, Tree: root, Bootable: exists(filepath.Join(root, "usr/lib/modules"))})
	return err
}
