package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/mountinfo"
	"github.com/debian-atomic/builder/ostreeops"
)

// treeClient is an ostree client as machines run it: the ostree of a built
// commit (trixie's, not the host's), run in a chroot of that commit with
// its own client repository at /var/client. Pulls go over the host's
// loopback, which the chroot shares. Close undoes the mounts and removes
// the tree.
type treeClient struct {
	root    string
	runner  run.Runner
	mounted []string
}

var errNoOstree = errors.New("the commit has no /usr/bin/ostree")

func newTreeClient(ctx context.Context, out ostreeops.Repo, commit, root string) (c *treeClient, err error) {
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	c = &treeClient{root: root, runner: out.Runner}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := out.Checkout(ctx, commit, root); err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "ostree")); err != nil {
		return c, errNoOstree
	}
	// The commit keeps /etc in /usr/etc; the loader's cache and gpg's
	// settings are read from /etc.
	if err := os.Symlink("usr/etc", filepath.Join(root, "etc")); err != nil {
		return c, err
	}
	for _, m := range [][]string{
		{"mount", "-t", "proc", "proc", filepath.Join(root, "proc")},
		{"mount", "--bind", "/dev", filepath.Join(root, "dev")},
		{"mount", "-t", "tmpfs", "tmpfs", filepath.Join(root, "tmp")},
	} {
		if _, err := c.runner.Run(ctx, run.Cmd{Args: m, Quiet: true}); err != nil {
			return c, err
		}
		c.mounted = append(c.mounted, m[len(m)-1])
	}
	// /var is committed empty; a machine's tmpfiles make /var/tmp, which
	// ostree's pull writes into.
	if err := os.MkdirAll(filepath.Join(root, "var", "tmp"), 0o755); err != nil {
		return c, err
	}
	if err := os.Chmod(filepath.Join(root, "var", "tmp"), 0o777|os.ModeSticky); err != nil {
		return c, err
	}
	return c, os.MkdirAll(filepath.Join(root, "var", "client"), 0o755)
}

// ostree runs the tree's ostree on its client repository.
func (c *treeClient) ostree(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"chroot", c.root, "/usr/bin/ostree", "--repo=/var/client"}, args...)
	out, err := c.runner.Run(ctx, run.Cmd{Args: full, Env: []string{"HOME=/tmp", "PATH=/usr/sbin:/usr/bin"}, OnlyEnv: true, Quiet: true})
	return strings.TrimSpace(string(out)), err
}

// version is the tree's ostree version.
func (c *treeClient) version(ctx context.Context) string {
	out, err := c.runner.Run(ctx, run.Cmd{Args: []string{"chroot", c.root, "/usr/bin/ostree", "--version"}, Env: []string{"PATH=/usr/bin"}, OnlyEnv: true, Quiet: true})
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			return strings.Trim(strings.TrimSpace(v), "'")
		}
	}
	return ""
}

// addRemote configures the remote as a machine has it: GPG verification
// on, trusting keyFile.
func (c *treeClient) addRemote(ctx context.Context, url, keyFile string) error {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.root, "var", "key.gpg"), data, 0o644); err != nil {
		return err
	}
	if _, err := c.ostree(ctx, "init", "--mode=bare-user"); err != nil {
		return err
	}
	_, err = c.ostree(ctx, "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true", "--gpg-import=/var/key.gpg", "origin", url)
	return err
}

// Close unmounts what newTreeClient mounted and removes the tree.
func (c *treeClient) Close() error {
	var errs []error
	// ostree's signature checks start a gpg-agent inside the tree, which
	// would keep its mounts busy.
	stopChrooted(c.root)
	for i := len(c.mounted) - 1; i >= 0; i-- {
		if _, err := c.runner.Run(context.Background(), run.Cmd{Args: []string{"umount", c.mounted[i]}, Quiet: true}); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", c.mounted[i], err))
		}
	}
	c.mounted = nil
	if len(errs) == 0 && len(mountinfo.Under(c.root)) == 0 {
		errs = append(errs, os.RemoveAll(c.root))
	}
	return errors.Join(errs...)
}

// stopChrooted ends the processes whose root directory is root: those the
// client's commands started there (gpg-agent).
func stopChrooted(root string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	stopped := false
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if r, err := os.Readlink(filepath.Join(p, "root")); err == nil && (r == root || strings.HasPrefix(r, root+"/")) {
			syscall.Kill(pid, syscall.SIGKILL)
			stopped = true
		}
	}
	if stopped {
		time.Sleep(300 * time.Millisecond) // the kernel releases their files
	}
}
