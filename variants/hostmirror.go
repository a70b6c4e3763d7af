package variants

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// HostMirror returns the Debian archive URL the host's apt sources name (both
// one-line .list and deb822 .sources), or "" when there is none, as on Ubuntu.
// Security and non-Debian repositories are skipped.
func HostMirror(aptDir string) string {
	return hostURI(aptDir, "/debian")
}

// HostSecurityMirror returns the Debian security archive URL the host's apt
// sources name (a URL ending in /debian-security), or "".
func HostSecurityMirror(aptDir string) string {
	return hostURI(aptDir, "/debian-security")
}

// hostURI is the first http(s) URI in the host's apt sources ending in suffix.
func hostURI(aptDir, suffix string) string {
	files := []string{filepath.Join(aptDir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	sort.Strings(more)
	files = append(files, more...)
	for _, f := range files {
		var uris []string
		switch {
		case strings.HasSuffix(f, ".sources"):
			uris = deb822URIs(f)
		case strings.HasSuffix(f, ".list"):
			uris = oneLineURIs(f)
		}
		for _, u := range uris {
			if isDebianArchive(u, suffix) {
				return strings.TrimRight(u, "/")
			}
		}
	}
	return ""
}

func isDebianArchive(u, suffix string) bool {
	u = strings.TrimRight(u, "/")
	return (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) &&
		strings.HasSuffix(u, suffix) && checkMirror(u) == ""
}

func oneLineURIs(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		w := strings.Fields(s.Text())
		if len(w) < 3 || w[0] != "deb" {
			continue
		}
		w = w[1:]
		if strings.HasPrefix(w[0], "[") { // options such as [signed-by=...]
			for len(w) > 0 && !strings.HasSuffix(w[0], "]") {
				w = w[1:]
			}
			if len(w) > 0 {
				w = w[1:]
			}
		}
		if len(w) > 0 {
			out = append(out, w[0])
		}
	}
	return out
}

func deb822URIs(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, stanza := range strings.Split(string(data), "\n\n") {
		enabled, isDeb := true, false
		var uris []string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "types":
				isDeb = slices.Contains(strings.Fields(v), "deb")
			case "uris":
				uris = strings.Fields(v)
			case "enabled":
				enabled = strings.TrimSpace(v) != "no"
			}
		}
		if enabled && isDeb {
			out = append(out, uris...)
		}
	}
	return out
}
