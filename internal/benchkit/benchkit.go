// Package benchkit holds what the benchmarks (bench's and publish's)
// share: a fresh folder to build in, and the time a build takes as its
// caller waits for it.
package benchkit

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

// Fresh empties dir and returns cfg working in it: a copy of cfg's variants
// folder (files and lock, less the names in skip) at dir/variants, for the
// benchmark to edit, and a cache and repository of its own; the downloaded
// packages stay shared.
func Fresh(cfg build.Config, dir string, skip ...string) (build.Config, error) {
	if err := os.RemoveAll(dir); err != nil {
		return cfg, err
	}
	c := cfg
	c.VariantsDir, c.CacheDir, c.RepoDir = filepath.Join(dir, "variants"), filepath.Join(dir, "cache"), filepath.Join(dir, "repo")
	return c, variants.CopyFolder(cfg.VariantsDir, c.VariantsDir, skip...)
}

// Build builds names with cfg and says how long the call took: what a user
// waits for, opening the cache and re-locking included, which the build's
// own report leaves out.
func Build(ctx context.Context, cfg build.Config, names ...string) (time.Duration, []build.Report, error) {
	start := time.Now()
	reps, err := build.Variants(ctx, cfg, names)
	return time.Since(start), reps, err
}
