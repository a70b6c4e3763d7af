package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Postprocess makes an installed tree deployable and bootable by OSTree; see
// ../shared/notes/ostree-layout.md. Bump postprocessSchema whenever what it
// does changes, so cached results are not reused.
const postprocessSchema = 5 // 3: machine secrets stripped, the guard, SOURCE_DATE_EPOCH; 4: initramfs reused by manifest, folder moves as renames; 5: tmpfiles lines retargeted into /var, a default locale

const tmpfilesConf = "usr/lib/tmpfiles.d/debian-atomic.conf"

// factory keeps regular files from /var; tmpfiles copies them back at boot.
const factory = "usr/share/factory"

// toVar are top-level directories whose state belongs in /var.
var toVar = []struct{ dir, varDir, mode string }{
	{"home", "var/home", "0755"},
	{"root", "var/roothome", "0700"},
	{"opt", "var/opt", "0755"},
	{"srv", "var/srv", "0755"},
	{"mnt", "var/mnt", "0755"},
	{"usr/local", "var/usrlocal", "0755"},
}

// postprocess runs the layout changes and builds the initramfs.
func (b *variantBuild) postprocess(ctx context.Context, root string) error {
	kver, err := singleKernel(root)
	if err != nil {
		return err
	}
	start := time.Now()
	if kver != "" {
		if err := b.initramfs(ctx, root, kver); err != nil {
			return err
		}
		if err := moveKernel(root, kver); err != nil {
			return err
		}
	}
	initramfsDone := time.Now()
	defer func() {
		b.cfg.Log.Info().Str("variant", b.v.Name).Str("step", StepPostprocess).
			Dur("initramfs", initramfsDone.Sub(start)).Dur("layout", time.Since(initramfsDone)).
			Msg("postprocess: where the time went")
	}()
	if err := cleanBuildLeftovers(root); err != nil {
		return fmt.Errorf("postprocess: %w", err)
	}
	removed, err := stripMachineSecrets(root)
	if err != nil {
		return fmt.Errorf("postprocess: removing machine-unique files: %w", err)
	}
	if len(removed) > 0 {
		b.cfg.Log.Info().Str("variant", b.v.Name).Strs("removed", removed).
			Msg("postprocess: removed machine-unique keys and secrets; each machine makes its own at boot")
	}
	for _, f := range []func(string) error{installGrubScript, moveDpkgDatabase, moveStateToVar, varToTmpfiles, retargetTmpfiles, defaultLocale, moveEtc, topLevel} {
		if err := f(root); err != nil {
			return fmt.Errorf("postprocess: %w", err)
		}
	}
	// The guard: the stored tree is what every commit of it ships.
	return b.guardSecrets(root)
}

// singleKernel returns the one kernel version in usr/lib/modules, "" for a
// tree without a kernel, or an error for several.
func singleKernel(root string) (string, error) {
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

// moveKernel puts the kernel where ostree looks and empties /boot.
func moveKernel(root, kver string) error {
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
	if err := emptyDir(boot); err != nil {
		return err
	}
	for _, l := range []string{"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"} {
		os.Remove(filepath.Join(root, l))
	}
	return nil
}

// cleanBuildLeftovers removes what the build leaves that a commit must not carry.
func cleanBuildLeftovers(root string) error {
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
		if err := emptyDir(filepath.Join(root, d)); err != nil {
			return err
		}
	}
	return nil
}

// moveDpkgDatabase keeps the package database in /usr, where upgrades
// replace it together with the packages it describes.
func moveDpkgDatabase(root string) error {
	src := filepath.Join(root, "var/lib/dpkg")
	dst := filepath.Join(root, dpkgDatabase)
	if !exists(src) {
		return errors.New("the tree has no dpkg database at /var/lib/dpkg")
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := moveTree(src, dst); err != nil {
		return err
	}
	return os.Symlink("../../"+dpkgDatabase, src)
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
			if err := moveTree(src, dst); err != nil {
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

// varToTmpfiles records everything under /var as tmpfiles.d lines, keeps its
// files in /usr/share/factory, and leaves /var empty: ostree copies a
// commit's /var only into an empty stateroot, and never updates it.
func varToTmpfiles(root string) error {
	varDir := filepath.Join(root, "var")
	var lines []string
	err := filepath.WalkDir(varDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == varDir {
			return nil
		}
		rel := "/" + strings.TrimPrefix(path, root+"/")
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner := fmt.Sprintf("%d %d", st.Uid, st.Gid)
		mode := fmt.Sprintf("%04o", fi.Mode().Perm()|stickyBits(fi.Mode()))
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("L %s - - - - %s", tmpfilesPath(rel), target))
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("d %s %s %s - -", tmpfilesPath(rel), mode, owner))
		case fi.Mode().IsRegular():
			dst := filepath.Join(root, factory, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Rename(path, dst); err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("C %s %s %s - /%s%s", tmpfilesPath(rel), mode, owner, factory, tmpfilesPath(rel)))
		default:
			// Sockets, fifos and devices are runtime state; nothing to keep.
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(lines, func(i, j int) bool { return tmpfilesPathOf(lines[i]) < tmpfilesPathOf(lines[j]) })
	for _, m := range toVar {
		lines = append(lines, fmt.Sprintf("d /%s %s - - -", m.varDir, m.mode))
	}
	lines = append(lines, "d /run/media 0755 root root -")
	conf := "# Made by debian-atomic: recreates /var, committed empty, at boot.\n" + strings.Join(dedupe(lines), "\n") + "\n"
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(tmpfilesConf)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, tmpfilesConf), []byte(conf), 0o644); err != nil {
		return err
	}
	return emptyDir(varDir)
}

func stickyBits(m fs.FileMode) fs.FileMode {
	var out fs.FileMode
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	return out
}

// tmpfilesPath escapes what tmpfiles.d would split on.
func tmpfilesPath(p string) string {
	return strings.NewReplacer(" ", `\x20`, "\t", `\x09`).Replace(p)
}

func tmpfilesPathOf(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[1]
}

// dedupe keeps the first line for each path (the walk's own, with its owner).
func dedupe(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		p := tmpfilesPathOf(l)
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, l)
	}
	return out
}

// moveEtc moves /etc to /usr/etc, where ostree keeps the default configuration
// for its three-way merge.
func moveEtc(root string) error {
	if exists(filepath.Join(root, "usr/etc")) {
		return errors.New("the tree has both /etc and /usr/etc")
	}
	return moveTree(filepath.Join(root, "etc"), filepath.Join(root, "usr/etc"))
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

// emptyDir removes what a directory holds and keeps the directory. It
// refuses to descend into mounts, so a leftover mount is never emptied.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if m := MountsUnder(dir); len(m) > 0 {
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

// retargetTmpfiles points the packages' tmpfiles.d lines for /home, /root,
// /srv and the other folders moveStateToVar made links at the folders in
// /var, in same-named files in /etc/tmpfiles.d that override the packages'
// own (which stay as shipped): tmpfiles makes no folder where a link is
// ("/home already exists and is not a directory", at every boot) and would
// skip what a line beneath it provides (root's authorized_keys from a
// credential). The tree's own overrides win. Then varToTmpfiles' folder
// and link lines give way to a package's line for the same path: tmpfiles
// takes one line per path and logs each duplicate at every boot, and the
// package's line is the one its maintainers meant (ages, subvolumes).
func retargetTmpfiles(root string) error {
	dir := filepath.Join(root, "usr/lib/tmpfiles.d")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	packaged := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || filepath.Ext(name) != ".conf" || name == filepath.Base(tmpfilesConf) {
			continue
		}
		override := filepath.Join(root, "etc/tmpfiles.d", name)
		if data, err := os.ReadFile(override); err == nil {
			folderLines(string(data), packaged)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		lines, changed := strings.Split(string(data), "\n"), false
		for i, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if to, ok := inVar(f[1]); ok {
				lines[i] = strings.Replace(l, f[1], to, 1)
				changed = true
			}
		}
		text := strings.Join(lines, "\n")
		folderLines(text, packaged)
		if !changed {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(override), 0o755); err != nil {
			return err
		}
		head := "# Made by debian-atomic from /usr/lib/tmpfiles.d/" + name + ": /home, /root, /srv, /opt, /mnt\n# and /usr/local are links into /var here, so their lines name the folders in /var.\n"
		if err := os.WriteFile(override, []byte(head+text), 0o644); err != nil {
			return err
		}
	}
	own := filepath.Join(root, tmpfilesConf)
	data, err := os.ReadFile(own)
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if t := strings.Fields(l); len(t) >= 2 && (t[0] == "d" || t[0] == "L") && packaged[t[1]] {
			continue
		}
		keep = append(keep, l)
	}
	return os.WriteFile(own, []byte(strings.Join(keep, "\n")), 0o644)
}

// folderLines adds the paths of text's folder and link lines to set.
func folderLines(text string, set map[string]bool) {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] != "" && strings.ContainsRune("dDvqQL", rune(f[0][0])) {
			set[f[1]] = true
		}
	}
}

// inVar is where a path under one of the links into /var really is.
func inVar(p string) (string, bool) {
	for _, m := range toVar {
		d := "/" + m.dir
		if p == d || strings.HasPrefix(p, d+"/") {
			return "/" + m.varDir + p[len(d):], true
		}
	}
	return "", false
}

// defaultLocale sets C.UTF-8, which glibc has built in, in a tree that sets
// no locale: otherwise LANG is unset in every session (pam_env reads
// /etc/default/locale, which trixie ships as a link to ../locale.conf, a
// file nothing makes), programs fall back to ASCII (Qt ones say so), and
// locale-gen cannot add a locale on a read-only /usr. A tree with its own
// locale (locales' /etc/default/locale, or /etc/locale.conf) keeps it.
func defaultLocale(root string) error {
	conf, def := filepath.Join(root, "etc/locale.conf"), filepath.Join(root, "etc/default/locale")
	if fi, err := os.Lstat(def); err == nil && fi.Mode().IsRegular() {
		return nil
	}
	if _, err := os.Lstat(conf); err == nil {
		return nil
	}
	if err := os.WriteFile(conf, []byte("# Made by debian-atomic: C.UTF-8 is built into glibc; another locale needs\n# locales-all in the variant (locale-gen cannot write to a read-only /usr).\nLANG=C.UTF-8\n"), 0o644); err != nil {
		return err
	}
	if _, err := os.Lstat(def); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(def), 0o755); err != nil {
			return err
		}
		return os.Symlink("../locale.conf", def)
	}
	return nil
}
