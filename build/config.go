// Package build turns a variant into an OSTree commit through a chain of
// cached steps: bootstrap, install, postprocess, commit.
package build

import (
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cpupin"
	"github.com/debian-atomic/builder/ostreeops"
)

// Version is this builder's version; it is part of the commit step's key and
// of every commit's metadata.
const Version = "0.1.0"

// Environment variables that move the builder's folders.
const (
	CacheEnv = "DEBIAN_ATOMIC_CACHE" // runtime state (default .cache)
	// RepoEnv moves the one repository (default .cache/repo): step results
	// under cache/ refs and the variants' refs, side by side.
	RepoEnv = "DEBIAN_ATOMIC_REPO"
	DebsEnv = "DEBIAN_ATOMIC_DEBS" // shared .deb cache (default .cache/debs)
	// VariantsEnv points at another folder of variant files (default variants).
	VariantsEnv = "DEBIAN_ATOMIC_VARIANTS"
)

// Config says where things live and how commands run.
type Config struct {
	VariantsDir string // variant files
	CacheDir    string // index, work trees
	RepoDir     string // the repository: step results and the variants' refs
	DebsDir     string // downloaded packages, shared by every build
	Runner      run.Runner
	Log         zerolog.Logger
	// Host checks and installs host tools; nil means the real host.
	Host HostChecker
	// Progress holds the latest line a command printed, for progress logs.
	Progress *atomic.Value
	// NoOverlay restores trees by copy and runs steps one after the other,
	// as where overlayfs is unusable (DEBIAN_ATOMIC_NO_OVERLAY=1).
	NoOverlay bool
	// Remote is asked for a step's result on a local miss; nil: no remote.
	Remote RemoteCache
	// NoInitramfsCache runs dracut untraced and stores no image, as
	// DEBIAN_ATOMIC_INITRAMFS_CACHE=0 does: tracing makes dracut slower
	// (see the README) in exchange for reuse in later builds.
	NoInitramfsCache bool
	// CPUs are the CPUs commands may be pinned to (see package cpupin);
	// nil: the ones this process may run on.
	CPUs []int
}

func (c Config) cpus() []int {
	if c.CPUs != nil {
		return c.CPUs
	}
	return cpupin.Allowed()
}

// DefaultConfig resolves folders from the project root and the environment.
func DefaultConfig(root string, log zerolog.Logger) Config {
	c := Config{
		NoOverlay:        os.Getenv("DEBIAN_ATOMIC_NO_OVERLAY") == "1",
		NoInitramfsCache: os.Getenv("DEBIAN_ATOMIC_INITRAMFS_CACHE") == "0",
		VariantsDir:      envOr(VariantsEnv, filepath.Join(root, "variants")),
		CacheDir:         envOr(CacheEnv, filepath.Join(root, ".cache")),
		Log:              log,
	}
	c.RepoDir = envOr(RepoEnv, filepath.Join(c.CacheDir, "repo"))
	c.DebsDir = envOr(DebsEnv, filepath.Join(c.CacheDir, "debs"))
	c.Progress = &atomic.Value{}
	c.Runner = run.Exec{Line: func(cmd, line string) {
		c.Progress.Store(line)
		log.Debug().Str("cmd", cmd).Msg(line)
	}}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		if abs, err := filepath.Abs(v); err == nil {
			return abs
		}
		return v
	}
	return def
}

// storeRepo and outRepo are one bare repository: step results live under
// cache/<kind>/<key> refs beside the variants' refs, so the output commit is
// a commit object over a stored tree and copies no file. (Before, results
// lived in .cache/store and each output commit pulled its whole tree into
// the output repository: 31 s for gnome.)
func (c Config) storeRepo() ostreeops.Repo { return c.outRepo() }

func (c Config) outRepo() ostreeops.Repo {
	return ostreeops.Repo{Path: c.RepoDir, Runner: c.Runner}
}

func (c Config) indexPath() string { return filepath.Join(c.CacheDir, "index.db") }

func (c Config) workDir() string { return filepath.Join(c.CacheDir, "work") }
