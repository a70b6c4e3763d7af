package image

import (
	"context"
	"path/filepath"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

// ForSettings writes the variant's image with settings made in code (a
// desktop check's image: its own user and automatic login) to out.raw and
// out.qcow2, leaving the image `mage image:variant` writes alone. The
// variant must be built; a settings remote is not supported here.
func ForSettings(ctx context.Context, cfg build.Config, name string, ic Config, out string) (Result, error) {
	v, err := variants.LoadChain(cfg.VariantsDir, name)
	if err != nil {
		return Result{}, err
	}
	ic.Remote, ic.AutoUpdate = nil, false
	if err := checkFits(ctx, cfg.Runner, cfg.RepoDir, v.Ref, ic, name); err != nil {
		return Result{}, err
	}
	if err := build.EnsureHost(ctx, cfg, hostRequirements(ic)); err != nil {
		return Result{}, err
	}
	lock, err := build.LockCache(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer lock.Release()
	return Build(ctx, Options{
		Runner: cfg.Runner, Log: cfg.Log, Repo: cfg.RepoDir, Ref: v.Ref, OSName: v.OSName,
		KernelArgs: v.KernelArgs, Config: ic,
		Work: filepath.Join(cfg.CacheDir, "work", "image-"+filepath.Base(out)),
		Out:  out,
	})
}
