package dracuttrace

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// dracut's inst_libdir_file globs library folders ("libkmod.so*" in each of
// /lib64 /usr/lib /lib/x86_64-linux-gnu ...). The glob runs inside bash, so
// a trace shows the folder's listing but not the pattern, and a manifest
// that kept whole listings would run dracut again for any package that adds
// a library (tmux, every desktop). So the traced dracut runs marked copies
// of its scripts: inst_libdir_file, the one glob of the main script and
// 99fs-lib's glob for fsck helpers first look up (and never find)
// /.debian-atomic-glob/PATTERN for each pattern and /.debian-atomic-glob-end
// after. A listing made by that process between the two is kept as the
// names matching those patterns ("glob:" keys), and only a new or removed
// name one of them matches runs dracut. A listing made anywhere else, or
// under a pattern Go's path.Match may read differently from bash (a bracket
// expression, extglob, an escape), keeps the whole listing.

// InitScript is the dracut library that defines inst_libdir_file.
const InitScript = "/usr/lib/dracut/dracut-init.sh"

// Dracut is dracut's main script, which globs the library folders once
// itself (for libpthread).
const Dracut = "/usr/bin/dracut"

const (
	globMarker = "/.debian-atomic-glob/"
	globEnd    = "/.debian-atomic-glob-end"
)

// initWrapper adds the marker functions and wraps inst_libdir_file
// without changing what it does: the lookups fail, the status is the
// original's, and it runs no program (a $(...) subshell forks, no more).
const initWrapper = `
# debian-atomic: name the patterns of dracut's library globs in its trace
__debian_atomic_glob() {
    local __debian_atomic_p
    for __debian_atomic_p in "$@"; do
        [[ -e "` + globMarker + `$__debian_atomic_p" ]] || :
    done
}
__debian_atomic_glob_end() {
    [[ -e ` + globEnd + ` ]] || :
}
if declare -F inst_libdir_file > /dev/null; then
    __debian_atomic_f=$(declare -f inst_libdir_file)
    eval "__debian_atomic_inst_libdir_file() ${__debian_atomic_f#*\)}"
    unset __debian_atomic_f
    inst_libdir_file() {
        local __debian_atomic_r
        __debian_atomic_glob "$@"
        __debian_atomic_inst_libdir_file "$@"
        __debian_atomic_r=$?
        __debian_atomic_glob_end
        return $__debian_atomic_r
    }
fi
`

// dracutEdits mark the one glob of dracut's main script (dracut 106): it
// lists each library folder for libpthread.so* until one has it. Each
// edit's text must be found once, else none is made and those listings
// stay whole. The markers are functions the marked dracut-init.sh defines,
// which dracut sources first.
var dracutEdits = [][2]string{
	{"    for _dir in $libdirs; do\n        for _f in \"$dracutsysrootdir$_dir/libpthread.so\"*; do\n",
		"    __debian_atomic_glob \"libpthread.so*\"\n    for _dir in $libdirs; do\n        for _f in \"$dracutsysrootdir$_dir/libpthread.so\"*; do\n"},
	{"\n    # FIPS workaround for Fedora/RHEL",
		"\n    __debian_atomic_glob_end\n    # FIPS workaround for Fedora/RHEL"},
}

// FsLib is the dracut module that globs the sbin folders for fsck helpers.
const FsLib = "/usr/lib/dracut/modules.d/99fs-lib/module-setup.sh"

// fsLibEdits mark that glob (dracut 106): /sbin/fsck* /usr/sbin/fsck*.
var fsLibEdits = [][2]string{
	{"    if [[ $fscks == \"${fscks#*[^ ]*}\" ]]; then\n        _helpers=(\n            /sbin/fsck* /usr/sbin/fsck*\n",
		"    __debian_atomic_glob \"fsck*\"\n    if [[ $fscks == \"${fscks#*[^ ]*}\" ]]; then\n        _helpers=(\n            /sbin/fsck* /usr/sbin/fsck*\n"},
	{"\n    _helpers+=(umount mount)\n",
		"\n    __debian_atomic_glob_end\n    _helpers+=(umount mount)\n"},
}

// Instrumented are the tree's files the traced dracut runs in a marked
// copy of (mounted over the tree's, for that run only), dracut-init.sh
// first: the others call the markers it defines.
var Instrumented = []string{InitScript, Dracut, FsLib}

// Instrument is the marked copy of one of Instrumented, or false when
// there is nothing to mark in it (another dracut version).
func Instrument(path string, orig []byte) ([]byte, bool) {
	switch path {
	case InitScript:
		return append(append([]byte{}, orig...), initWrapper...), true
	case Dracut:
		return edit(orig, dracutEdits)
	case FsLib:
		return edit(orig, fsLibEdits)
	}
	return nil, false
}

// edit makes every edit, each of whose text is found exactly once, or none.
func edit(orig []byte, edits [][2]string) ([]byte, bool) {
	s := string(orig)
	for _, e := range edits {
		if strings.Count(s, e[0]) != 1 {
			return nil, false
		}
		s = strings.Replace(s, e[0], e[1], 1)
	}
	return []byte(s), true
}

// globKey is the manifest key of a listing of dir made under patterns, or
// false when the whole listing must be kept: a pattern whose folders
// themselves glob, or that path.Match may not read as bash does.
func globKey(dir string, patterns map[string]bool) (string, bool) {
	var bases []string
	for p := range patterns {
		comps := strings.Split(p, "/")
		for _, c := range comps[:len(comps)-1] {
			if strings.ContainsAny(c, "*?[") {
				return "", false
			}
		}
		base := comps[len(comps)-1]
		if base == "" || strings.ContainsAny(base, "[]()\\") {
			return "", false
		}
		if _, err := path.Match(base, ""); err != nil {
			return "", false
		}
		bases = append(bases, base)
	}
	if len(bases) == 0 {
		return "", false
	}
	slices.Sort(bases)
	bases = slices.Compact(bases)
	return "glob:" + dir + "\n" + strings.Join(bases, "\n"), true
}

// globState is the names in the key's folder that one of its patterns
// matches: what bash's globs there expanded to.
func (s *stater) globState(key string) string {
	lines := strings.Split(strings.TrimPrefix(key, "glob:"), "\n")
	dir, patterns := lines[0], lines[1:]
	entries, err := os.ReadDir(filepath.Join(s.root, dir))
	if err != nil {
		return "unlisted"
	}
	var names []string
	for _, e := range entries {
		if filepath.Join(dir, e.Name()) == s.skip {
			continue
		}
		for _, p := range patterns {
			if ok, _ := path.Match(p, e.Name()); ok {
				names = append(names, e.Name())
				break
			}
		}
	}
	sort.Strings(names)
	return strings.Join(names, "/")
}

// keyPath is the tree path a manifest key is about.
func keyPath(key string) string {
	if p, ok := strings.CutPrefix(key, "ls:"); ok {
		return p
	}
	if p, ok := strings.CutPrefix(key, "glob:"); ok {
		dir, _, _ := strings.Cut(p, "\n")
		return dir
	}
	return key
}
