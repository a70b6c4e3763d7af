// Package e2ebuild gives end-to-end tests outside package build a builder
// configuration of their own (package build's tests cannot import it: it
// imports build).
package e2ebuild

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
)

// Config is a fresh cache and repository under dir, the variants of
// variantsDir and the package cache debs (kept across runs, one per test
// package so packages testing in parallel never wait on each other's apt).
// The log goes to the test's output at info level, and to logs as well.
func Config(t testing.TB, dir, variantsDir, debs string, logs ...io.Writer) build.Config {
	t.Helper()
	w := io.Writer(zerolog.NewTestWriter(t))
	if len(logs) > 0 {
		w = zerolog.MultiLevelWriter(append([]io.Writer{w}, logs...)...)
	}
	cfg := build.DefaultConfig(dir, zerolog.New(w).Level(zerolog.InfoLevel))
	cfg.VariantsDir = variantsDir
	cfg.CacheDir = filepath.Join(dir, "cache")
	cfg.RepoDir = filepath.Join(dir, "repo")
	cfg.DebsDir = debs
	return cfg
}

// Variants builds names as build.Variants does. When the archive no longer
// has a version the lock names (Debian replaced a package since the lock
// was committed: trixie-security keeps only the newest), it says so in the
// test's log, re-locks cfg's variants folder, which must be the test's own
// copy, and builds once more. The tests check builds, images and boots; a
// lock older than the archive's latest security fix is the maintainers'
// `mage update`, not a defect of what they test.
func Variants(t testing.TB, ctx context.Context, cfg build.Config, names ...string) ([]build.Report, error) {
	t.Helper()
	reps, err := build.Variants(ctx, cfg, names)
	var drift *build.LockDriftError
	if !errors.As(err, &drift) {
		return reps, err
	}
	t.Logf("the archive moved since variants.lock was committed (%v): re-locking this test's copy and building again", drift)
	if _, err := build.Update(ctx, cfg); err != nil {
		return reps, err
	}
	return build.Variants(ctx, cfg, names)
}
