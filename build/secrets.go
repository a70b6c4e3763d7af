package build

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

// machineSecrets are files maintainer scripts generate while the tree is
// built that must be unique to each machine: shipped in a commit, every
// machine deployed from it would share them. Globs, relative to the root,
// before /etc moves to /usr/etc. Each is made again on the machine: SSH host
// keys by sshd-keygen.service, the snakeoil pair by firstBootSnakeoil, the
// machine id and random seed by systemd, debconf's password store is not
// needed at all.
var machineSecrets = []string{
	"etc/ssh/ssh_host_*_key",
	"etc/ssh/ssh_host_*_key.pub",
	"etc/ssl/private/ssl-cert-snakeoil.key",
	"etc/ssl/certs/ssl-cert-snakeoil.pem",
	"var/lib/systemd/random-seed",
	"var/lib/systemd/credential.secret",
	"var/lib/dbus/machine-id",
	"var/cache/debconf/passwords.dat",
	"etc/.pwd.lock",
}

// sshdKeygenDropIn lets Debian's sshd-keygen.service make missing host keys
// on every boot, not only on systemd's "first boot": a commit's machine-id
// is empty, which systemd does not count as a first boot. ssh-keygen -A only
// makes the keys that are missing, so later boots cost nothing. An empty
// Condition resets all of the unit's conditions; the others are restated.
const sshdKeygenDropIn = `# Made by debian-atomic: commits carry no SSH host keys, so make the
# missing ones at boot, first boot or not.
[Unit]
ConditionFirstBoot=
ConditionPathIsReadWrite=/etc/ssh
ConditionPathIsSymbolicLink=!/etc/ssh
`

// snakeoilUnit makes ssl-cert's snakeoil key and certificate for this
// machine, with ssl-cert's own tool, when they are missing.
const snakeoilUnit = `# Made by debian-atomic: commits carry no snakeoil key; each machine makes
# its own, once, and keeps it in its /etc.
[Unit]
Description=Generate this machine's snakeoil TLS key and certificate
ConditionPathExists=!/etc/ssl/private/ssl-cert-snakeoil.key
ConditionFileIsExecutable=/usr/sbin/make-ssl-cert
After=local-fs.target systemd-hostnamed.service
Before=multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/make-ssl-cert generate-default-snakeoil

[Install]
WantedBy=multi-user.target
`

const (
	snakeoilUnitPath  = "usr/lib/systemd/system/debian-atomic-snakeoil.service"
	sshdKeygenDropDir = "usr/lib/systemd/system/sshd-keygen.service.d"
)

// stripMachineSecrets removes machineSecrets (and hash links to the
// snakeoil certificate) and installs what makes them again at boot. It
// returns the paths it removed, as deployed.
func stripMachineSecrets(root string) ([]string, error) {
	var removed []string
	for _, g := range machineSecrets {
		matches, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return nil, err
			}
			removed = append(removed, "/"+strings.TrimPrefix(m, root+"/"))
		}
	}
	// make-ssl-cert links the certificate under its OpenSSL hash name.
	certs := filepath.Join(root, "etc/ssl/certs")
	entries, _ := os.ReadDir(certs)
	for _, e := range entries {
		p := filepath.Join(certs, e.Name())
		if t, err := os.Readlink(p); err == nil && filepath.Base(t) == "ssl-cert-snakeoil.pem" {
			os.Remove(p)
		}
	}
	if exists(filepath.Join(root, "usr/lib/systemd/system/sshd-keygen.service")) {
		if err := writeUnitFile(root, filepath.Join(sshdKeygenDropDir, "debian-atomic.conf"), sshdKeygenDropIn); err != nil {
			return nil, err
		}
	}
	if exists(filepath.Join(root, "usr/sbin/make-ssl-cert")) {
		if err := writeUnitFile(root, snakeoilUnitPath, snakeoilUnit); err != nil {
			return nil, err
		}
		wants := filepath.Join(root, "usr/lib/systemd/system/multi-user.target.wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			return nil, err
		}
		link := filepath.Join(wants, filepath.Base(snakeoilUnitPath))
		os.Remove(link)
		if err := os.Symlink("../"+filepath.Base(snakeoilUnitPath), link); err != nil {
			return nil, err
		}
	}
	slices.Sort(removed)
	return removed, nil
}

func writeUnitFile(root, rel, text string) error {
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	os.Remove(p) // never write through a link in the tree
	return os.WriteFile(p, []byte(text), 0o644)
}

// SecretFinding is one file the commit guard refuses.
type SecretFinding struct {
	Path  string // as deployed: /etc/..., /var/...
	Why   string // what gave it away
	Owner string // the package that ships it, "" when a script made it
}

// SecretsError is the guard's refusal: every finding, and what to do.
type SecretsError struct {
	File     string // the variant file
	Findings []SecretFinding
}

func (e *SecretsError) Error() string {
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

// findSecrets scans a postprocessed tree for private key material: files
// named like SSH host keys, anything under /etc/ssl/private, and files that
// begin like a PEM or OpenSSH private key. allowed paths (as deployed) pass.
func findSecrets(root string, allowed []string) ([]SecretFinding, error) {
	type candidate struct{ rel, path string }
	var (
		found []SecretFinding
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
			found = append(found, SecretFinding{Path: dep, Why: "an SSH host key"})
		case strings.HasPrefix(dep, "/etc/ssl/private/"):
			found = append(found, SecretFinding{Path: dep, Why: "in /etc/ssl/private"})
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
					found = append(found, SecretFinding{Path: deployedPath(c.rel), Why: "begins like a private key"})
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
	slices.SortFunc(found, func(a, b SecretFinding) int { return strings.Compare(a.Path, b.Path) })
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

// guardSecrets refuses a tree that holds private key material.
func (b *variantBuild) guardSecrets(root string) error {
	found, err := findSecrets(root, b.v.AllowedSecretPaths())
	if err != nil {
		return fmt.Errorf("scanning the tree for private keys: %w", err)
	}
	if len(found) > 0 {
		return &SecretsError{File: b.v.File, Findings: found}
	}
	return nil
}
