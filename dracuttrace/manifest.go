// Package dracuttrace turns a trace of dracut's file lookups (strace's
// output) into a manifest: every path dracut's processes looked up, opened,
// executed or listed in the tree, with the state each had (absent, a file's
// bytes and mode, a link's target, a folder's names). An initramfs made from
// a tree can be reused for another tree exactly when every path of its
// manifest has the same state there: that covers the kernel modules dracut
// read, its modules and configuration, every file it copied and every file
// it looked for and did not find, which a listing of the image cannot show.
package dracuttrace

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Paths dracut uses as scratch or that are not the tree's content.
// ldconfig's aux-cache only saves ldconfig stat calls (any package with a
// library rewrites it); the libraries themselves are traced.
var untracedPrefixes = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/log", "/var/cache/ldconfig"}

// Calls are the calls that look a path up or list a folder (and
// chroot, where the trace starts); dracut's writes into its scratch folder
// (mkdir, chmod, rename, ...) are left untraced.
const Calls = "chroot,open,openat,openat2,creat,execve,execveat,stat,lstat,newfstatat,statx," +
	"access,faccessat,faccessat2,readlink,readlinkat,getdents64"

// Manifest is what an image was made from.
type Manifest struct {
	Kernel string            `json:"kernel"`
	Mode   os.FileMode       `json:"mode"`  // the image file's permissions
	Paths  map[string]string `json:"paths"` // tree path (ls: prefix for a listing) -> state
}

// FromTrace reads strace's output: every path looked up after the
// chroot, made a tree path, with its state in root now.
func FromTrace(trace, root, kver string) (*Manifest, error) {
	f, err := os.Open(trace)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hostRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	paths, listed := map[string]bool{}, map[string]bool{}
	globbed := map[string]map[string]bool{} // folder -> the patterns it was listed under
	window := map[string]map[string]bool{}  // pid -> the patterns of the marked glob it is in
	inChroot := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		name, args, ok := traceCall(line)
		if !ok {
			continue
		}
		if !inChroot {
			// Before chroot(2) the chroot command loads its own host
			// libraries. The call may be split ("<unfinished ...>", then
			// "<... chroot resumed>"); a failed one runs no dracut at all.
			inChroot = name == "chroot"
			continue
		}
		pid, _, _ := strings.Cut(line, " ")
		if name == "getdents64" {
			p, ok := treePath(fdPath(args), hostRoot)
			switch {
			case !ok:
			case window[pid] != nil:
				if globbed[p] == nil {
					globbed[p] = map[string]bool{}
				}
				for pat := range window[pid] {
					globbed[p][pat] = true
				}
			default:
				listed[p] = true
			}
			continue
		}
		raw, ok := quotedArg(args)
		if !ok {
			continue
		}
		if pat, ok := strings.CutPrefix(raw, globMarker); ok {
			if window[pid] == nil {
				window[pid] = map[string]bool{}
			}
			window[pid][pat] = true
			continue
		}
		if raw == globEnd {
			delete(window, pid)
			continue
		}
		if p, ok := lookedUp(raw, args, hostRoot); ok {
			paths[p] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !inChroot {
		return nil, errors.New("the trace shows no chroot: dracut did not run under strace")
	}
	// A trace that missed dracut's reading of its modules or the kernel's is
	// not a manifest: better no reuse than a wrong one.
	var modules, dracut bool
	for p := range paths {
		modules = modules || p == "/usr/lib/modules/"+kver || strings.HasPrefix(p, "/usr/lib/modules/"+kver+"/")
		dracut = dracut || strings.HasPrefix(p, "/usr/lib/dracut/")
	}
	if !modules || !dracut {
		return nil, fmt.Errorf("the trace of dracut holds no lookup under /usr/lib/modules/%s or /usr/lib/dracut (%d paths)", kver, len(paths))
	}
	out := ImagePath(kver)
	m := &Manifest{Kernel: kver, Paths: map[string]string{}}
	for p := range paths {
		if p != out && traced(p) {
			m.Paths[p] = ""
		}
	}
	for p, patterns := range globbed {
		if listed[p] || !traced(p) {
			continue // listed outside a glob too: the whole listing
		}
		if key, ok := globKey(p, patterns); ok {
			m.Paths[key] = ""
		} else {
			listed[p] = true
		}
	}
	for p := range listed {
		if traced(p) {
			m.Paths["ls:"+p] = ""
		}
	}
	keys := make([]string, 0, len(m.Paths))
	for k := range m.Paths {
		keys = append(keys, k)
	}
	for i, st := range states(root, kver, m.Paths, keys) {
		m.Paths[keys[i]] = st
	}
	return m, nil
}

// traced: paths outside scratch folders are the tree's content.
func traced(p string) bool {
	for _, pre := range untracedPrefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return false
		}
	}
	return true
}

// traceCall splits "PID name(args" from a strace line. strace pads the PID
// to five columns ("6868  execve(" but "12345 execve("), so a short PID
// (a freshly booted machine) is followed by more than one space.
func traceCall(line string) (string, string, bool) {
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return "", "", false
	}
	rest := strings.TrimLeft(line[sp+1:], " ")
	open := strings.IndexByte(rest, '(')
	if open <= 0 || strings.HasPrefix(rest, "<...") || strings.HasPrefix(rest, "+++") || strings.HasPrefix(rest, "---") {
		return "", "", false
	}
	return rest[:open], rest[open+1:], true
}

// fdPath is the path strace -y prints for a call's first argument: 3</a/b>.
func fdPath(args string) string {
	i := strings.IndexByte(args, '<')
	if i < 0 || i > 16 {
		return ""
	}
	j := strings.Index(args[i:], ">")
	if j < 0 {
		return ""
	}
	return args[i+1 : i+j]
}

// lookedUp resolves a call's path argument p: an absolute one is already a
// tree path (after chroot); a relative one is joined to its directory fd or
// working folder, which strace -y prints as a host path.
func lookedUp(p, args, hostRoot string) (string, bool) {
	q := strings.IndexByte(args, '"')
	if strings.HasPrefix(p, "/") {
		return filepath.Clean(p), true
	}
	base, ok := treePath(fdPath(args[:q]), hostRoot)
	if !ok {
		return "", false
	}
	return filepath.Join(base, p), true
}

// quotedArg is a call's first string argument, unquoted.
func quotedArg(args string) (string, bool) {
	q := strings.IndexByte(args, '"')
	if q < 0 {
		return "", false
	}
	end := q + 1
	for end < len(args) && args[end] != '"' {
		if args[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(args) {
		return "", false
	}
	p, err := strconv.Unquote(args[q : end+1])
	if err != nil {
		p = args[q+1 : end]
	}
	return p, true
}

// treePath turns a host path under the tree into a tree path.
func treePath(host, hostRoot string) (string, bool) {
	if host == hostRoot {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(host, hostRoot+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// stater takes paths' states in a tree, resolving links inside it.
type stater struct {
	root   string
	hashes map[string]string
	lstats map[string]lstat // tree path -> its Lstat, each taken once
	skip   string           // the image dracut writes: not an input, absent before it runs
	names  map[string]bool  // basenames of the manifest's paths: the library names for ld.so.cache
}

func newStater(root, kver string, keys map[string]string) *stater {
	s := &stater{root: root, hashes: map[string]string{}, lstats: map[string]lstat{}, skip: ImagePath(kver), names: map[string]bool{}}
	for k := range keys {
		s.names[filepath.Base(keyPath(k))] = true
	}
	return s
}

// stateOf is a manifest key's state: a listing (ls:), a glob's matches
// (glob:) or a path's state.
func (s *stater) stateOf(key string) string {
	if p, ok := strings.CutPrefix(key, "ls:"); ok {
		return s.listing(p)
	}
	if strings.HasPrefix(key, "glob:") {
		return s.globState(key)
	}
	return s.state(key)
}

// state is a path's state: the links met on the way (within the tree, as
// the chroot saw them) and what the path finally is.
func (s *stater) state(p string) string {
	var hops []string
	cur := "/"
	rest := strings.Split(strings.Trim(p, "/"), "/")
	for n := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := s.lstat(next)
		if err != nil {
			return strings.Join(append(hops, "absent:"+next), " ")
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			if len(rest) > 0 && !fi.IsDir() {
				return strings.Join(append(hops, "notdir:"+next), " ")
			}
			continue
		}
		if n++; n > 40 {
			return strings.Join(append(hops, "loop"), " ")
		}
		target, err := os.Readlink(filepath.Join(s.root, next))
		if err != nil {
			return strings.Join(append(hops, "unreadable:"+next), " ")
		}
		hops = append(hops, "link:"+next+"->"+target)
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return strings.Join(append(hops, s.final(cur)), " ")
}

type lstat struct {
	fi  os.FileInfo
	err error
}

// lstat is os.Lstat of a tree path, remembered: the manifest's 7,000 paths
// share their folders, and each path is walked a component at a time.
func (s *stater) lstat(p string) (os.FileInfo, error) {
	if l, ok := s.lstats[p]; ok {
		return l.fi, l.err
	}
	fi, err := os.Lstat(filepath.Join(s.root, p))
	s.lstats[p] = lstat{fi, err}
	return fi, err
}

func (s *stater) final(p string) string {
	full := filepath.Join(s.root, p)
	fi, err := s.lstat(p)
	switch {
	case err != nil:
		return "absent:" + p
	case fi.IsDir():
		return "dir"
	case fi.Mode().IsRegular():
		if h, ok := s.hashes[p]; ok {
			return h
		}
		if p == "/etc/ld.so.cache" {
			if data, err := os.ReadFile(full); err == nil {
				if st, ok := ldCacheState(data, s.names); ok {
					s.hashes[p] = st
					return st
				}
			}
		}
		h := "file:" + fmt.Sprintf("%o:", fi.Mode().Perm()) + hashFile(full)
		s.hashes[p] = h
		return h
	}
	return "other:" + fi.Mode().String()
}

// listing is a folder's names, after resolving links to it.
func (s *stater) listing(p string) string {
	entries, err := os.ReadDir(filepath.Join(s.root, p))
	if err != nil {
		return "unlisted"
	}
	var names []string
	for _, e := range entries {
		if filepath.Join(p, e.Name()) != s.skip {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return strings.Join(names, "/")
}

func hashFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// differs names the first path whose state in root is not the manifest's,
// or "" when the tree matches it everywhere.
func (m *Manifest) Differs(root string) string {
	keys := make([]string, 0, len(m.Paths))
	for k := range m.Paths {
		if traced(keyPath(k)) { // else recorded before the path was left out
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, now := range states(root, m.Kernel, m.Paths, keys) {
		if k := keys[i]; now != m.Paths[k] {
			return fmt.Sprintf("%s was %q, is %q", k, clip(m.Paths[k]), clip(now))
		}
	}
	return ""
}

// states are the keys' states in root, taken by a few workers (hashing
// files is most of it), each with its own stater.
func states(root, kver string, all map[string]string, keys []string) []string {
	out := make([]string, len(keys))
	workers := min(runtime.NumCPU(), 4)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newStater(root, kver, all)
			for i := w; i < len(keys); i += workers {
				out[i] = st.stateOf(keys[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// ImagePath is where dracut writes the image in the tree: its output, left
// out of the manifest of its inputs.
func ImagePath(kver string) string { return "/usr/lib/modules/" + kver + "/initramfs.img" }
