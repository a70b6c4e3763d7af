package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cpupin"
	"github.com/debian-atomic/builder/variants"
)

// chroot prepares a tree for running commands inside it and undoes every
// change on every exit path.
type chroot struct {
	root    string
	runner  run.Runner
	mounted []string // mount points, in mount order
	undo    []func() error
}

// chrootMounts are the pseudo-filesystems commands in the tree need. /dev is a
// fresh devtmpfs, not a bind of the host's /dev: with shared mount
// propagation, a devpts mounted on a bind would land on the host's /dev/pts.
var chrootMounts = []struct{ fstype, source, target, opts string }{
	{"proc", "proc", "proc", ""},
	{"sysfs", "sysfs", "sys", "ro"},
	{"devtmpfs", "udev", "dev", ""},
	{"devpts", "devpts", "dev/pts", "newinstance,ptmxmode=0666,mode=0620"},
	{"tmpfs", "tmpfs", "run", "mode=0755"},
}

// enterChroot mounts the pseudo-filesystems. Call close when done, also on
// failure: it unmounts whatever was mounted.
func enterChroot(ctx context.Context, runner run.Runner, root string) (*chroot, error) {
	c := &chroot{root: root, runner: runner}
	for _, m := range chrootMounts {
		target := filepath.Join(root, m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			c.close()
			return nil, err
		}
		args := []string{"mount", "-t", m.fstype}
		if m.opts != "" {
			args = append(args, "-o", m.opts)
		}
		args = append(args, m.source, target)
		if _, err := runner.Run(ctx, run.Cmd{Args: args, Quiet: true}); err != nil {
			c.close()
			return nil, fmt.Errorf("mounting %s in the build tree: %w", m.target, err)
		}
		c.mounted = append(c.mounted, target)
	}
	return c, nil
}

// inChroot runs fn with the tree prepared, and undoes everything after, on
// every exit path.
func inChroot(ctx context.Context, runner run.Runner, root string, fn func(*chroot) error) (err error) {
	c, err := enterChroot(ctx, runner, root)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return fn(c)
}

// bind mounts a host directory into the tree (the shared package cache).
func (c *chroot) bind(ctx context.Context, src, rel string) error {
	target := filepath.Join(c.root, rel)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return c.bindFile(ctx, src, rel)
}

// bindFile mounts a host file or folder over one that exists in the tree.
func (c *chroot) bindFile(ctx context.Context, src, rel string) error {
	target := filepath.Join(c.root, rel)
	if _, err := c.runner.Run(ctx, run.Cmd{Args: []string{"mount", "--bind", src, target}, Quiet: true}); err != nil {
		return err
	}
	c.mounted = append(c.mounted, target)
	return nil
}

// withHostResolver gives the tree the host's resolv.conf for the step and puts
// back what was there, unless a package replaced it meanwhile.
func (c *chroot) withHostResolver() error {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil // no resolver to share; apt will say what fails
	}
	path := filepath.Join(c.root, "etc", "resolv.conf")
	backup := path + ".debian-atomic"
	hadOld := false
	if _, err := os.Lstat(path); err == nil {
		if err := os.Rename(path, backup); err != nil {
			return err
		}
		hadOld = true
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	c.undo = append(c.undo, func() error {
		cur, err := os.ReadFile(path)
		fi, lerr := os.Lstat(path)
		ours := err == nil && lerr == nil && fi.Mode().IsRegular() && string(cur) == string(data)
		if ours {
			os.Remove(path)
		}
		if hadOld {
			if ours {
				return os.Rename(backup, path)
			}
			return os.Remove(backup)
		}
		return nil
	})
	return nil
}

// blockServices stops maintainer scripts from starting daemons in the tree.
func (c *chroot) blockServices() error {
	path := filepath.Join(c.root, "usr", "sbin", "policy-rc.d")
	os.Remove(path) // never write through a link in the tree
	if err := os.WriteFile(path, []byte("#!/bin/sh\n# debian-atomic: no services start while building\nexit 101\n"), 0o755); err != nil {
		return err
	}
	c.undo = append(c.undo, func() error { return os.Remove(path) })
	return nil
}

// withSources adds a layer's extra apt sources for the step. A file: source
// is bind-mounted into the tree, since a host path means nothing inside it.
func (c *chroot) withSources(ctx context.Context, sources []string) error {
	if len(sources) == 0 {
		return nil
	}
	var lines []string
	for i, s := range sources {
		src, err := variants.ParseSource(s)
		if err != nil {
			return err
		}
		url := src.URL
		if strings.HasPrefix(url, "file://") {
			inside := fmt.Sprintf("run/debian-atomic/source-%d", i)
			if err := c.bind(ctx, strings.TrimPrefix(url, "file://"), inside); err != nil {
				return fmt.Errorf("making %s visible in the tree: %w", url, err)
			}
			url = "file:/" + inside
		}
		lines = append(lines, src.Line(url))
	}
	path := filepath.Join(c.root, "etc/apt/sources.list.d/debian-atomic-build.list")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	c.undo = append(c.undo, func() error { return os.Remove(path) })
	return nil
}

// run runs a command inside the tree.
func (c *chroot) run(ctx context.Context, env []string, args ...string) ([]byte, error) {
	return c.runOn(ctx, nil, env, args...)
}

// runOn is run pinned to cpus (none: not pinned).
func (c *chroot) runOn(ctx context.Context, cpus []int, env []string, args ...string) ([]byte, error) {
	full := slices.Concat(cpupin.Prefix(cpus), []string{"chroot", c.root}, args)
	base := []string{"LC_ALL=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}
	return c.runner.Run(ctx, run.Cmd{Args: full, Env: append(base, env...), OnlyEnv: true})
}

// close undoes file changes and unmounts in reverse order. It runs even when
// ctx was cancelled (Ctrl-C), so it uses a context of its own.
func (c *chroot) close() error {
	ctx := context.Background()
	var errs []error
	for i := len(c.undo) - 1; i >= 0; i-- {
		if err := c.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.undo = nil
	for i := len(c.mounted) - 1; i >= 0; i-- {
		if err := run.Unmount(ctx, c.runner, c.mounted[i]); err != nil {
			errs = append(errs, err)
		}
	}
	c.mounted = nil
	return errors.Join(errs...)
}
