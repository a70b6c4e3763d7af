// Package treelayout makes an installed Debian tree deployable and bootable
// by OSTree (see ../shared/notes/ostree-layout.md): the kernel where ostree
// looks, the dpkg database and /etc under /usr, the machine's state in /var
// made at boot from tmpfiles.d lines, and nothing the build itself left.
// It only moves and writes files below the root it is given; building the
// initramfs, stripping secrets and caching are the builder's.
package treelayout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/debian-atomic/builder/mountinfo"
)

// DpkgDatabase is where the package database lives in a commit: in /usr,
// replaced by upgrades together with the packages it describes.
const DpkgDatabase = "usr/share/dpkg/database"

// TmpfilesConf holds the tmpfiles.d lines that remake /var at boot.
const TmpfilesConf = "usr/lib/tmpfiles.d/debian-atomic.conf"

// Factory keeps regular files from /var; tmpfiles copies them back at boot.
const Factory = "usr/share/factory"

// toVar are top-level directories whose state belongs in /var.
var toVar = []struct{ dir, varDir, mode string }{
	{"home", "var/home", "0755"},
	{"root", "var/roothome", "0700"},
	{"opt", "var/opt", "0755"},
	{"srv", "var/srv", "0755"},
	{"mnt", "var/mnt", "0755"},
	{"usr/local", "var/usrlocal", "0755"},
}

// Apply rearranges a tree whose kernel is already in place (MoveKernel) and
// whose build leftovers are gone (CleanLeftovers) into OSTree's layout. The
// order matters: /var is recorded after the state folders moved into it,
// and /etc moves last, after the steps that write below it.
func Apply(root string) error {
	for _, f := range []func(string) error{installGrubScript, moveDpkgDatabase, moveStateToVar, varToTmpfiles, retargetTmpfiles, defaultLocale, moveEtc, topLevel} {
		if err := f(root); err != nil {
			return err
		}
	}
	return nil
}

// Kernel returns the one kernel version in usr/lib/modules, "" for a
// tree without a kernel, or an error for several.
func Kernel(root string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "usr/lib/modules"))
	if err != nil {
		return "", nil
	}
	var kvers []string
	for _, e := range entries {
		if e.IsDir() && (exists(filepath.Join(root, "boot", "vmlinuz-"+e.Name())) || exists(filepath.Join(root, "usr/lib/modules", e.Name(), "vmlinuz"))) {
			kvers = append(kvers, e.Name())
		}
	}
	switch len(kvers) {
	case 0:
		return "", nil
	case 1:
		return kvers[0], nil
	}
	return "", fmt.Errorf("postprocess: the tree has %d kernels (%s); an OSTree commit takes exactly one: list one kernel package", len(kvers), strings.Join(kvers, ", "))
}

// MoveKernel puts the kernel where ostree looks and empties /boot.
func MoveKernel(root, kver string) error {
	mod := filepath.Join(root, "usr/lib/modules", kver)
	boot := filepath.Join(root, "boot")
	for src, dst := range map[string]string{
		"vmlinuz-" + kver:    "vmlinuz",
		"config-" + kver:     "config",
		"System.map-" + kver: "System.map",
	} {
		if exists(filepath.Join(boot, src)) {
			if err := os.Rename(filepath.Join(boot, src), filepath.Join(mod, dst)); err != nil {
				return err
			}
		}
	}
	if !exists(filepath.Join(mod, "vmlinuz")) {
		return fmt.Errorf("postprocess: kernel %s has no vmlinuz", kver)
	}
	if err := EmptyDir(boot); err != nil {
		return err
	}
	for _, l := range []string{"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"} {
		os.Remove(filepath.Join(root, l))
	}
	return nil
}

// CleanLeftovers removes what the build leaves that a commit must not carry.
func CleanLeftovers(root string) error {
	for _, p := range []string{
		"var/cache/apt", "var/lib/apt/lists", "var/cache/debconf/templates.dat-old",
		"var/cache/debconf/config.dat-old", "usr/sbin/policy-rc.d",
		"var/log", "var/cache/ldconfig/aux-cache", "var/lib/dpkg/status-old",
		"var/lib/dpkg/available-old", "etc/hostname",
	} {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			return err
		}
	}
	matches, _ := filepath.Glob(filepath.Join(root, "etc", "*-"))
	for _, m := range matches {
		os.Remove(m)
	}
	// A plain resolv.conf is the build's; a link (systemd-resolved) stays.
	if fi, err := os.Lstat(filepath.Join(root, "etc/resolv.conf")); err == nil && fi.Mode().IsRegular() {
		os.Remove(filepath.Join(root, "etc/resolv.conf"))
	}
	// Empty, not absent: systemd fills it on first boot. Removed first, so a
	// link in the tree is never written through to a host path.
	os.Remove(filepath.Join(root, "etc/machine-id"))
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "var/tmp"} {
		if err := EmptyDir(filepath.Join(root, d)); err != nil {
			return err
		}
	}
	return nil
}

// moveDpkgDatabase keeps the package database in /usr, where upgrades
// replace it together with the packages it describes.
func moveDpkgDatabase(root string) error {
	src := filepath.Join(root, "var/lib/dpkg")
	dst := filepath.Join(root, DpkgDatabase)
	if !exists(src) {
		return errors.New("the tree has no dpkg database at /var/lib/dpkg")
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := MoveTree(src, dst); err != nil {
		return err
	}
	return os.Symlink("../../"+DpkgDatabase, src)
}

// moveStateToVar moves home, root, opt, srv, mnt and usr/local into /var and
// leaves links in their place.
func moveStateToVar(root string) error {
	for _, m := range toVar {
		src := filepath.Join(root, m.dir)
		dst := filepath.Join(root, m.varDir)
		if fi, err := os.Lstat(src); err == nil && fi.IsDir() {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			os.RemoveAll(dst)
			if err := MoveTree(src, dst); err != nil {
				return err
			}
		} else if err == nil {
			os.Remove(src)
		} else if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		target, _ := filepath.Rel(filepath.Dir(src), dst)
		if err := os.Symlink(target, src); err != nil {
			return err
		}
	}
	media := filepath.Join(root, "media")
	os.RemoveAll(media)
	return os.Symlink("run/media", media)
}

// moveEtc moves /etc to /usr/etc, where ostree keeps the default configuration
// for its three-way merge.
func moveEtc(root string) error {
	if exists(filepath.Join(root, "usr/etc")) {
		return errors.New("the tree has both /etc and /usr/etc")
	}
	return MoveTree(filepath.Join(root, "etc"), filepath.Join(root, "usr/etc"))
}

// topLevel makes the sysroot mount point and the ostree link.
func topLevel(root string) error {
	if err := os.MkdirAll(filepath.Join(root, "sysroot"), 0o755); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(root, "ostree"))
	if err := os.Symlink("sysroot/ostree", filepath.Join(root, "ostree")); err != nil {
		return err
	}
	for _, d := range []string{"boot", "dev", "proc", "sys", "run", "tmp", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	return os.Chmod(filepath.Join(root, "tmp"), 0o1777)
}

// EmptyDir removes what a directory holds and keeps the directory. It
// refuses to descend into mounts, so a leftover mount is never emptied.
func EmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if m := mountinfo.Under(dir); len(m) > 0 {
		return fmt.Errorf("refusing to empty %s: %s is still mounted", dir, m[0])
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
