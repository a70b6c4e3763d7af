// Package secretscan finds private key material in a finished tree before
// it is committed: a key shipped in a commit is shared by every machine
// deployed from it. It names each file as deployed and the package that
// ships it (or says a maintainer script made it).
package secretscan

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Where the deployable layout build's postprocess makes keeps /var's files
// and the dpkg database.
const (
	factory      = "usr/share/factory"
	dpkgDatabase = "usr/share/dpkg/database"
)

// Finding is one file the commit guard refuses.
type Finding struct {
	Path  string // as deployed: /etc/..., /var/...
	Why   string // what gave it away
	Owner string // the package that ships it, "" when a script made it
}

// Error is the guard's refusal: every finding, and what to do.
type Error struct {
	File     string // the variant file
	Findings []Finding
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the tree holds private key material that every machine deployed from it would share; nothing was committed:")
	for _, f := range e.Findings {
		owner := "made while building by a maintainer script, not a file of any package"
		if f.Owner != "" {
			owner = "from package " + f.Owner
		}
		fmt.Fprintf(&b, "\n  %s (%s; %s)", f.Path, f.Why, owner)
	}
	fmt.Fprintf(&b, "\nDrop the package that ships it, or have the key made on each machine at boot; "+
		"if every machine must really share it, list the path under allowed-secrets: in %s with the reason", e.File)
	return b.String()
}

// deployedPath maps a path in a postprocessed tree to where a deployment
// shows it: /usr/etc is /etc, the factory copy of /var is /var.
func deployedPath(rel string) string {
	switch {
	case rel == "usr/etc" || strings.HasPrefix(rel, "usr/etc/"):
		return "/" + strings.TrimPrefix(rel, "usr/")
	case strings.HasPrefix(rel, factory+"/var/"):
		return "/" + strings.TrimPrefix(rel, factory+"/")
	}
	return "/" + rel
}

// privateKeyHeads are how PEM and OpenSSH private keys begin.
var privateKeyHeads = [][]byte{[]byte("-----BEGIN OPENSSH PRIVATE KEY-----"), []byte("PRIVATE KEY-----")}

// looksLikePrivateKey reads the start of a file: a PEM block of a private
// key (RSA, EC, DSA, PKCS#8, encrypted) or an OpenSSH private key.
func looksLikePrivateKey(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReaderSize(f, 128).ReadSlice('\n')
	line = bytes.TrimSpace(line)
	if !bytes.HasPrefix(line, []byte("-----BEGIN ")) {
		return false
	}
	for _, h := range privateKeyHeads {
		if bytes.HasSuffix(line, h) {
			return true
		}
	}
	return false
}

// maxKeySize bounds the files whose content the guard reads: key files are
// small, and reading the start of every large file would cost time for nothing.
const maxKeySize = 1 << 20

// Find scans a postprocessed tree for private key material: files
// named like SSH host keys, anything under /etc/ssl/private, and files that
// begin like a PEM or OpenSSH private key. allowed paths (as deployed) pass.
func Find(root string, allowed []string) ([]Finding, error) {
	type candidate struct{ rel, path string }
	var (
		found []Finding
		sniff []candidate
	)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel := strings.TrimPrefix(path, root+"/")
		dep := deployedPath(rel)
		if slices.Contains(allowed, dep) {
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, "ssh_host_") && strings.HasSuffix(name, "_key"):
			found = append(found, Finding{Path: dep, Why: "an SSH host key"})
		case strings.HasPrefix(dep, "/etc/ssl/private/"):
			found = append(found, Finding{Path: dep, Why: "in /etc/ssl/private"})
		default:
			if fi, err := d.Info(); err == nil && fi.Size() >= 32 && fi.Size() <= maxKeySize {
				sniff = append(sniff, candidate{rel, path})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Opening every small file is most of the cost: spread it.
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan candidate)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if looksLikePrivateKey(c.path) {
					mu.Lock()
					found = append(found, Finding{Path: deployedPath(c.rel), Why: "begins like a private key"})
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range sniff {
		next <- c
	}
	close(next)
	wg.Wait()
	slices.SortFunc(found, func(a, b Finding) int { return strings.Compare(a.Path, b.Path) })
	if len(found) > 0 {
		owners := packageOwners(root)
		for i := range found {
			found[i].Owner = owners[found[i].Path]
		}
	}
	return found, nil
}

// packageOwners maps each path the tree's packages ship to its package, as
// `dpkg -S` does, from the file lists of the database (moved to /usr by
// postprocess, or still in /var/lib/dpkg).
func packageOwners(root string) map[string]string {
	lists, _ := filepath.Glob(filepath.Join(root, dpkgDatabase, "info", "*.list"))
	if len(lists) == 0 {
		lists, _ = filepath.Glob(filepath.Join(root, "var/lib/dpkg/info", "*.list"))
	}
	out := map[string]string{}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		pkg := strings.SplitN(strings.TrimSuffix(filepath.Base(l), ".list"), ":", 2)[0]
		for _, p := range strings.Split(string(data), "\n") {
			if p != "" && p != "/." {
				out[p] = pkg
			}
		}
	}
	return out
}
