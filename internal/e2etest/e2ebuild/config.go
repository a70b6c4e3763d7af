// Package e2ebuild gives end-to-end tests outside package build a builder
// configuration of their own (package build's tests cannot import it: it
// imports build).
package e2ebuild

import (
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
