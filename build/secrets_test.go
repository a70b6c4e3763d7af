package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/debian-atomic/builder/secretscan"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGuardFindsEachKindOfKeyAndNamesItsOwner(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"usr/etc/ssh/ssh_host_ed25519_key":          "not even PEM: the name gives it away\n",
		"usr/etc/ssh/ssh_host_ed25519_key.pub":      "ssh-ed25519 AAAA root@builder\n",
		"usr/etc/ssl/private/site.key":              "anything under /etc/ssl/private\n",
		"usr/share/doc/demo/examples/key.pem":       strings.Replace(testPEMKey, "BEGIN PRIVATE", "BEGIN RSA PRIVATE", 1),
		"usr/share/factory/var/lib/demo/id_ed25519": testOpenSSHKey,
		"usr/share/ca-certificates/ca.crt":          "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"usr/share/doc/demo/README":                 "-----BEGIN PRIVATE KEY----- is how a key starts, says this text\n",
		dpkgDatabase + "/info/demo.list":            "/.\n/usr/share/doc/demo/examples/key.pem\n/etc/ssl/private/site.key\n",
		dpkgDatabase + "/info/libdemo:amd64.list":   "/.\n/var/lib/demo/id_ed25519\n",
	})
	found, err := secretscan.Find(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []secretscan.Finding{
		{Path: "/etc/ssh/ssh_host_ed25519_key", Why: "an SSH host key"},
		{Path: "/etc/ssl/private/site.key", Why: "in /etc/ssl/private", Owner: "demo"},
		{Path: "/usr/share/doc/demo/examples/key.pem", Why: "begins like a private key", Owner: "demo"},
		{Path: "/var/lib/demo/id_ed25519", Why: "begins like a private key", Owner: "libdemo"},
	}
	if !slices.Equal(found, want) {
		t.Fatalf("found\n%+v\nwant\n%+v", found, want)
	}
	msg := (&SecretsError{File: "variants/demo.yaml", Findings: found}).Error()
	for _, s := range []string{"/etc/ssh/ssh_host_ed25519_key (an SSH host key; made while building by a maintainer script",
		"/usr/share/doc/demo/examples/key.pem (begins like a private key; from package demo)",
		"allowed-secrets: in variants/demo.yaml", "nothing was committed"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}

	// The allow-list lets exactly the listed paths pass.
	found, err = secretscan.Find(root, []string{"/usr/share/doc/demo/examples/key.pem", "/etc/ssl/private/site.key"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range found {
		paths = append(paths, f.Path)
	}
	if want := []string{"/etc/ssh/ssh_host_ed25519_key", "/var/lib/demo/id_ed25519"}; !slices.Equal(paths, want) {
		t.Fatalf("with an allow-list found %v, want %v", paths, want)
	}
}

func TestGuardPassesATreeWithoutKeys(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"usr/etc/ssh/sshd_config":              "PermitRootLogin no\n",
		"usr/etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA\n",
		"usr/etc/ssl/certs/ca.pem":             "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"usr/bin/tool":                         "\x7fELF binary",
		"usr/share/empty":                      "",
	})
	os.MkdirAll(filepath.Join(root, "usr/etc/ssl/private"), 0o710)
	if found, err := secretscan.Find(root, nil); err != nil || len(found) > 0 {
		t.Fatalf("found %v, %v in a tree without keys", found, err)
	}
}

func TestStripMachineSecretsAndWhatMakesThemAgain(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"openssh-server", "ssl-cert"} {
		if err := fakePackageFiles(root, p); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, root, map[string]string{
		"var/lib/systemd/random-seed":       "seed",
		"var/lib/systemd/credential.secret": "secret",
		"var/lib/dbus/machine-id":           "0123456789abcdef0123456789abcdef\n",
		"var/cache/debconf/passwords.dat":   "",
		"etc/.pwd.lock":                     "",
		"etc/ssh/sshd_config":               "# kept\n",
	})
	removed, err := stripMachineSecrets(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/etc/.pwd.lock", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub",
		"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key",
		"/etc/ssh/ssh_host_rsa_key.pub", "/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/private/ssl-cert-snakeoil.key",
		"/var/cache/debconf/passwords.dat", "/var/lib/dbus/machine-id", "/var/lib/systemd/credential.secret",
		"/var/lib/systemd/random-seed"}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed\n%v\nwant\n%v", removed, want)
	}
	if exists(filepath.Join(root, "etc/ssl/certs/4a5b6c7d.0")) {
		t.Error("the hash link to the snakeoil certificate was kept")
	}
	if !exists(filepath.Join(root, "etc/ssh/sshd_config")) {
		t.Error("sshd_config was removed")
	}
	dropIn, _ := os.ReadFile(filepath.Join(root, sshdKeygenDropDir, "debian-atomic.conf"))
	if !strings.Contains(string(dropIn), "ConditionFirstBoot=\n") {
		t.Errorf("sshd-keygen still waits for a first boot:\n%s", dropIn)
	}
	if unit, _ := os.ReadFile(filepath.Join(root, snakeoilUnitPath)); !strings.Contains(string(unit), "ExecStart=/usr/sbin/make-ssl-cert generate-default-snakeoil") {
		t.Errorf("no snakeoil unit:\n%s", unit)
	}
	if target, err := os.Readlink(filepath.Join(root, "usr/lib/systemd/system/multi-user.target.wants/debian-atomic-snakeoil.service")); err != nil || target != "../debian-atomic-snakeoil.service" {
		t.Errorf("the snakeoil unit is not enabled: %q %v", target, err)
	}
	if found, _ := secretscan.Find(root, nil); len(found) > 0 {
		t.Errorf("keys left after stripping: %+v", found)
	}
}

// A build strips what maintainer scripts generate, and refuses a package
// that ships a private key unless the variant allows that path.
func TestBuildStripsGeneratedKeysAndRefusesShippedOnes(t *testing.T) {
	e := newTestEnv(t, "hello", "openssh-server", "ssl-cert")
	rep := e.mustBuild()
	out := e.cfg.outRepo()
	ls, err := out.Ls(context.Background(), rep.Commit, true, "/usr/etc")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ssh_host_", "ssl-cert-snakeoil", "/usr/etc/ssl/private/"} {
		if strings.Contains(string(ls), bad) {
			t.Errorf("the commit still holds %s:\n%s", bad, ls)
		}
	}

	e.setPackages("hello", "openssh-server", "ssl-cert", "leaky-key")
	_, err = e.build(context.Background())
	var se *SecretsError
	if !errors.As(err, &se) {
		t.Fatalf("a shipped private key was committed (err %v)", err)
	}
	if len(se.Findings) != 1 || se.Findings[0].Path != "/usr/share/leaky-key/server.key" || se.Findings[0].Owner != "leaky-key" {
		t.Fatalf("findings %+v", se.Findings)
	}
	if !strings.Contains(err.Error(), filepath.Join(e.cfg.VariantsDir, "t.yaml")) {
		t.Errorf("the message does not name the variant file: %v", err)
	}
	if cur, _ := out.RevParse(context.Background(), "test/t"); cur != rep.Commit {
		t.Fatalf("the refused build moved the ref to %s", cur)
	}

	// Listed with a reason, the same key passes.
	path := filepath.Join(e.cfg.VariantsDir, "t.yaml")
	body, _ := os.ReadFile(path)
	os.WriteFile(path, append(body, "allowed-secrets:\n  /usr/share/leaky-key/server.key: a public test key, the same everywhere on purpose\n"...), 0o644)
	if rep, err = e.build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ranNames(rep)[0] != StepPostprocess {
		t.Errorf("allowing a path ran %v; only postprocess and commit depend on it", ranNames(rep))
	}
}

// Every command that makes a tree gets SOURCE_DATE_EPOCH from the lock: the
// newest Release date when the lock was made.
func TestTreeCommandsGetTheLockedEpoch(t *testing.T) {
	e := newTestEnv(t, "hello", "linux-image-amd64", "dracut", "ostree-boot")
	e.mustBuild()
	want := "SOURCE_DATE_EPOCH=" + strconv.FormatInt(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).Unix(), 10)
	seen := map[string]bool{}
	for _, c := range e.runner.cmds {
		tool := c.Args[0]
		if tool == "strace" { // dracut runs traced: strace ... chroot ROOT dracut
			tool = c.Args[slices.Index(c.Args, "chroot")]
			c.Args = c.Args[slices.Index(c.Args, "chroot"):]
		}
		if tool == "chroot" {
			tool = c.Args[2]
		}
		if tool == "mmdebstrap" || tool == "dracut" || tool == "apt-get" && c.Args[0] == "chroot" {
			seen[tool] = true
			if !slices.Contains(c.Env, want) {
				t.Errorf("%s ran without %s: %v", c, want, c.Env)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("saw %v; want mmdebstrap, apt-get in the tree and dracut", seen)
	}
	dracut := ""
	for _, c := range e.runner.calls {
		if strings.Contains(c, " dracut ") {
			dracut = c
		}
	}
	if !strings.Contains(dracut, "--reproducible") {
		t.Errorf("dracut without --reproducible: %s", dracut)
	}
}
