package treelayout

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

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
			dst := filepath.Join(root, Factory, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Rename(path, dst); err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("C %s %s %s - /%s%s", tmpfilesPath(rel), mode, owner, Factory, tmpfilesPath(rel)))
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
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(TmpfilesConf)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, TmpfilesConf), []byte(conf), 0o644); err != nil {
		return err
	}
	return EmptyDir(varDir)
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
		if !e.Type().IsRegular() || filepath.Ext(name) != ".conf" || name == filepath.Base(TmpfilesConf) {
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
	own := filepath.Join(root, TmpfilesConf)
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
