package ostreeops

import (
	"context"
	"path/filepath"

	"github.com/debian-atomic/builder/build/run"
)

// Sysroot is an OSTree sysroot in a folder: what becomes a disk's root
// filesystem.
type Sysroot struct {
	Path   string
	Runner run.Runner
}

func (s Sysroot) admin(ctx context.Context, args ...string) error {
	full := append([]string{"ostree", "admin"}, args...)
	_, err := s.Runner.Run(ctx, run.Cmd{Args: full, Quiet: true})
	return err
}

// Repo is the sysroot's own repository.
func (s Sysroot) Repo() Repo {
	return Repo{Path: filepath.Join(s.Path, "ostree", "repo"), Runner: s.Runner}
}

// Init creates the sysroot layout and the os's stateroot.
func (s Sysroot) Init(ctx context.Context, osName string) error {
	if err := s.admin(ctx, "init-fs", "--modern", s.Path); err != nil {
		return err
	}
	return s.admin(ctx, "os-init", "--sysroot="+s.Path, osName)
}

// SetConfig sets a key in the sysroot repository's config, for example
// sysroot.bootloader.
func (s Sysroot) SetConfig(ctx context.Context, key, value string) error {
	_, err := s.Runner.Run(ctx, run.Cmd{Args: []string{"ostree", "--repo=" + s.Repo().Path, "config", "set", key, value}, Quiet: true})
	return err
}

// Deploy deploys ref (already pulled into the sysroot's repository) with
// kernel arguments.
func (s Sysroot) Deploy(ctx context.Context, osName, ref string, kargs []string) error {
	args := []string{"deploy", "--sysroot=" + s.Path, "--os=" + osName}
	for _, k := range kargs {
		args = append(args, "--karg="+k)
	}
	return s.admin(ctx, append(args, ref)...)
}
