package lockresolve

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/debian-atomic/builder/variants"
)

// lists is the package lists of one apt root, read once per run: a dpkg
// status for a layer's base and the releases offering a version both come
// from it, instead of one pass over 56 MB of text per layer.
type lists struct {
	files    [][]byte            // Packages files
	releases []string            // per file: its release as apt describes it, "Label:Version/Suite"
	at       map[string][]stanza // "name version" -> where its stanzas are
}

type stanza struct {
	file       int
	start, end int
}

// readLists indexes the *_Packages files of an apt lists folder by name and
// version, and finds each one's Release file (the one whose name, less
// "InRelease" or "Release", begins it). With pocketsOnly, only the lists of
// the security archive and -updates suites are read: a few MB, against the
// suite's 56.
func readLists(dir string, pocketsOnly bool) (*lists, error) {
	return readListsOf(dir, pocketsOnly, nil)
}

// readListsOf is readLists indexing only the packages named in want (every
// one when want is nil): a layer's base status needs a few hundred of the
// archive's 60,000 names, and indexing them all is most of a second.
func readListsOf(dir string, pocketsOnly bool, want map[string]bool) (*lists, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_Packages"))
	rels, _ := filepath.Glob(filepath.Join(dir, "*Release"))
	sort.Strings(files)
	l := &lists{at: map[string][]stanza{}}
	for _, f := range files {
		rel := releaseOf(filepath.Base(f), rels)
		if p, _ := pocketOf(rel); pocketsOnly && p == "" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		i := len(l.files)
		l.files = append(l.files, data)
		l.releases = append(l.releases, rel)
		index(data, want, func(key string, start, end int) {
			l.at[key] = append(l.at[key], stanza{file: i, start: start, end: end})
		})
	}
	return l, nil
}

// index calls fn with "name version" and the bounds of every stanza (of
// the names in want, when want is not nil). It looks for stanza starts
// ("\n\nPackage: ") rather than for every blank line: a long pattern is
// searched with vector instructions, a short one stops at every newline of
// 56 MB.
func index(data []byte, want map[string]bool, fn func(key string, start, end int)) {
	var starts []int
	if bytes.HasPrefix(data, []byte("Package: ")) {
		starts = append(starts, 0)
	}
	sep := []byte("\n\nPackage: ")
	for pos := 0; ; {
		i := bytes.Index(data[pos:], sep)
		if i < 0 {
			break
		}
		pos += i + 2
		starts = append(starts, pos)
	}
	for k, start := range starts {
		end := len(data)
		if k+1 < len(starts) {
			end = starts[k+1] - 2
		}
		st := data[start:end]
		name := fieldBytes(st, "Package")
		if want != nil && !want[string(name)] { // no allocation: a lookup by bytes
			continue
		}
		if ver := fieldBytes(st, "Version"); len(name) > 0 && len(ver) > 0 {
			fn(string(name)+" "+string(ver), start, end)
		}
	}
}

// fieldBytes is a stanza's single-line field.
func fieldBytes(st []byte, key string) []byte {
	var i int
	if len(st) > len(key)+1 && string(st[:len(key)]) == key && st[len(key)] == ':' && st[len(key)+1] == ' ' {
		i = len(key) + 2
	} else if j := bytes.Index(st, []byte("\n"+key+": ")); j >= 0 {
		i = j + len(key) + 3
	} else {
		return nil
	}
	v := st[i:]
	if n := bytes.IndexByte(v, '\n'); n >= 0 {
		v = v[:n]
	}
	return v
}

func releaseOf(packages string, rels []string) string {
	best := ""
	for _, r := range rels {
		base := filepath.Base(r)
		prefix := strings.TrimSuffix(strings.TrimSuffix(base, "InRelease"), "Release")
		if strings.HasPrefix(packages, prefix) && len(prefix) > len(best) {
			best = r
		}
	}
	if best == "" {
		return ""
	}
	data, err := os.ReadFile(best)
	if err != nil {
		return ""
	}
	label, version, suite := releaseField(data, "Label"), releaseField(data, "Version"), releaseField(data, "Suite")
	if version != "" {
		return label + ":" + version + "/" + suite
	}
	return label + ":" + suite
}

// releasesOf lists the releases offering "name version".
func (l *lists) releasesOf(key string) []string {
	var out []string
	for _, s := range l.at[key] {
		if r := l.releases[s.file]; r != "" && !contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// status makes a dpkg status file that says the given packages ("name
// version arch") are installed, from their full stanzas in the package
// lists, so apt sees their dependencies and Provides.
func (l *lists) status(installed []string) ([]byte, error) {
	var out bytes.Buffer
	var missing []string
	seen := map[string]bool{}
	for _, e := range installed {
		f := strings.Fields(e)
		if len(f) != 3 || seen[f[0]+" "+f[1]] {
			continue
		}
		k := f[0] + " " + f[1]
		seen[k] = true
		at := l.at[k]
		if len(at) == 0 {
			missing = append(missing, k)
			continue
		}
		s := at[0]
		out.Write(bytes.TrimSpace(l.files[s.file][s.start:s.end]))
		out.WriteString("\nStatus: install ok installed\n\n")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &DriftError{Missing: missing}
	}
	return out.Bytes(), nil
}

// DriftError says the archive no longer has versions the lock names.
type DriftError struct {
	Missing []string // "name version"
}

func (e *DriftError) Error() string {
	return "the mirror no longer has versions locked in " + variants.LockFile + ": " + strings.Join(e.Missing, ", ") +
		"; run `mage update` to lock the archive as it is now"
}
