package build

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/debian-atomic/builder/secretscan"
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

// SecretsError is the guard's refusal (secretscan.Error).
type SecretsError = secretscan.Error

// guardSecrets refuses a tree that holds private key material.
func (b *variantBuild) guardSecrets(root string) error {
	found, err := secretscan.Find(root, b.v.AllowedSecretPaths())
	if err != nil {
		return fmt.Errorf("scanning the tree for private keys: %w", err)
	}
	if len(found) > 0 {
		return &SecretsError{File: b.v.File, Findings: found}
	}
	return nil
}
