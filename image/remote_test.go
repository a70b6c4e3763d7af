package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
)

// fakeBootable commits a tree ostree admin deploy accepts (a kernel and an
// initramfs, /usr/etc with the account files, systemd-networkd's units) to
// ref in a new repository.
func fakeBootable(t *testing.T, ref string) string {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "tree")
	files := map[string]string{
		"usr/lib/modules/6.1.0-test/vmlinuz":                          "kernel",
		"usr/lib/modules/6.1.0-test/initramfs.img":                    "initramfs",
		"usr/lib/os-release":                                          "NAME=Test\nID=debian\n",
		"usr/etc/passwd":                                              "root:x:0:0:root:/root:/bin/bash\n",
		"usr/etc/shadow":                                              "root:*:1::::::\n",
		"usr/etc/group":                                               "root:x:0:\nsudo:x:27:\n",
		"usr/etc/gshadow":                                             "root:*::\nsudo:*::\n",
		"usr/lib/systemd/system/systemd-networkd.service":             "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlso=systemd-networkd.socket\n",
		"usr/lib/systemd/system/systemd-networkd.socket":              "[Socket]\nListenNetlink=route 1361\n[Install]\nWantedBy=sockets.target\n",
		"usr/lib/systemd/system/systemd-networkd-wait-online.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=network-online.target\n",
		"usr/lib/systemd/system/timers.target":                        "[Unit]\nDescription=Timers\n",
	}
	for p, body := range files {
		os.MkdirAll(filepath.Join(tree, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(t.TempDir(), "repo")
	for _, c := range [][]string{
		{"ostree", "init", "--repo=" + repo, "--mode=bare"},
		{"ostree", "commit", "--repo=" + repo, "--branch=" + ref, "--tree=dir=" + tree, "--subject=test"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	return repo
}

// signingKey is a throwaway key in a temporary GnuPG home.
type signingKey struct {
	file, home, fpr string // exported public key (.gpg or .asc)
}

// testKey makes a throwaway signing key in a temporary GnuPG home (short
// path: gpg-agent's socket lives there) and exports its public part,
// binary (.gpg) or armored (.asc).
func testKey(t *testing.T, armor bool) signingKey {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "gnupg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) []byte {
		out, err := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--homedir", home}, args...)...).Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	gpg("--passphrase", "", "--quick-gen-key", "Image test <image-test@localhost>", "ed25519", "sign", "never")
	k := signingKey{home: home}
	for _, l := range strings.Split(string(gpg("--with-colons", "--list-secret-keys")), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && k.fpr == "" {
			k.fpr = f[9]
		}
	}
	args := []string{"--export"}
	name := "key.gpg"
	if armor {
		args, name = []string{"--armor", "--export"}, "key.asc"
	}
	k.file = filepath.Join(t.TempDir(), name)
	os.WriteFile(k.file, gpg(args...), 0o644)
	return k
}

// published is an archive repository holding ref from repo, signed by k,
// as `mage publish` leaves it.
func published(t *testing.T, repo, ref string, k signingKey) string {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "publish")
	commit, _ := exec.Command("ostree", "--repo="+repo, "rev-parse", ref).Output()
	for _, c := range [][]string{
		{"ostree", "init", "--repo=" + pub, "--mode=archive"},
		{"ostree", "pull-local", "--repo=" + pub, repo, ref},
		{"ostree", "gpg-sign", "--repo=" + pub, "--gpg-homedir=" + k.home, strings.TrimSpace(string(commit)), k.fpr},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	return pub
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("deploying into a sysroot needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A sysroot made for an image with a remote has that remote with GPG
// verification and the key imported, and a deployment whose origin is
// REMOTE:REF, so `ostree admin upgrade` pulls from it; auto-update adds an
// enabled timer; without a remote the origin is the bare ref, as before.
func TestImageSysrootRemoteOriginAndTimer(t *testing.T) {
	needTools(t, "ostree", "gpg", "systemctl")
	const ref = "test/13/x86_64/minimal"
	repo := fakeBootable(t, ref)
	k1, k2 := testKey(t, false), testKey(t, true)
	pub1, pub2 := published(t, repo, ref, k1), published(t, repo, ref, k2)
	for _, c := range []struct {
		name      string
		remote    *Remote
		auto      bool
		published string
		fails     string
	}{
		{"signed", &Remote{Name: "updates", URL: "http://10.0.2.100/", GPGKey: k1.file}, true, pub1, ""},
		{"armored-default-name", &Remote{URL: "https://updates.example.org/debian-atomic/", GPGKey: k2.file}, false, pub2, ""},
		{"unsigned", &Remote{URL: "http://10.0.2.100/", Unsigned: true}, false, "", ""},
		{"none", nil, false, "", ""},
		{"not-published", &Remote{URL: "http://10.0.2.100/", GPGKey: k1.file}, false, t.TempDir(), "publish it first"},
		{"other-key", &Remote{URL: "http://10.0.2.100/", GPGKey: k1.file}, false, pub2, "does not verify with the image's key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sysroot := filepath.Join(t.TempDir(), "sysroot")
			t.Cleanup(func() { unfreeze(filepath.Dir(sysroot)) })
			o := Options{Runner: run.Exec{}, Log: zerolog.Nop(), Repo: repo, Ref: ref, OSName: "debian", Published: c.published,
				Config: Config{DiskSize: "4G", Filesystem: "ext4", Remote: c.remote, AutoUpdate: c.auto}}
			commit, err := o.deploy(context.Background(), sysroot)
			if c.fails != "" {
				if err == nil || !strings.Contains(err.Error(), c.fails) {
					t.Fatalf("want an error saying %q, got %v", c.fails, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sysrepo := filepath.Join(sysroot, "ostree", "repo")
			ostree := func(args ...string) (string, error) {
				out, err := exec.Command("ostree", append([]string{"--repo=" + sysrepo}, args...)...).CombinedOutput()
				return strings.TrimSpace(string(out)), err
			}
			origin := readFile(t, filepath.Join(sysroot, "ostree", "deploy", "debian", "deploy", commit+".0.origin"))
			deploy := filepath.Join(sysroot, "ostree", "deploy", "debian", "deploy", commit+".0")
			timer := filepath.Join(deploy, "etc/systemd/system/timers.target.wants", UpgradeTimer)
			if c.remote == nil {
				if !strings.Contains(origin, "refspec="+ref+"\n") {
					t.Errorf("origin without a remote:\n%s", origin)
				}
				if out, _ := ostree("remote", "list"); out != "" {
					t.Errorf("remotes without a remote in the settings: %q", out)
				}
				return
			}
			name := c.remote.Name
			if name == "" {
				name = "debian" // the os-name
			}
			if !strings.Contains(origin, "refspec="+name+":"+ref+"\n") {
				t.Errorf("origin does not follow the remote:\n%s", origin)
			}
			if out, err := ostree("remote", "show-url", name); err != nil || out != c.remote.URL {
				t.Errorf("remote url: %q %v", out, err)
			}
			if got, _ := ostree("rev-parse", name+":"+ref); got != commit {
				t.Errorf("%s:%s is %q, deployed %s", name, ref, got, commit)
			}
			verify, _ := ostree("config", "get", `remote "`+name+`".gpg-verify`)
			summary, _ := ostree("config", "get", `remote "`+name+`".gpg-verify-summary`)
			keys, kerr := ostree("remote", "gpg-list-keys", name)
			if c.remote.Unsigned {
				if verify != "false" || summary != "false" {
					t.Errorf("unsigned remote: gpg-verify=%q gpg-verify-summary=%q", verify, summary)
				}
			} else {
				if verify != "true" || summary != "true" {
					t.Errorf("signed remote: gpg-verify=%q gpg-verify-summary=%q", verify, summary)
				}
				if kerr != nil || !strings.Contains(keys, "image-test@localhost") {
					t.Errorf("the key is not imported for %s: %v\n%s", name, kerr, keys)
				}
				// The booted commit verifies on the machine (ostree admin status checks it).
				if out, err := ostree("show", "--gpg-verify-remote="+name, commit); err != nil {
					t.Errorf("the deployed commit does not verify: %v\n%s", err, out)
				}
			}
			if _, err := os.Lstat(timer); (err == nil) != c.auto {
				t.Errorf("auto-update %v, timer enabled: %v", c.auto, err == nil)
			}
			if c.auto {
				svc := readFile(t, filepath.Join(deploy, "etc/systemd/system", UpgradeService))
				tm := readFile(t, filepath.Join(deploy, "etc/systemd/system", UpgradeTimer))
				for _, w := range []string{"ExecStart=/usr/bin/ostree admin upgrade --stage", "After=network-online.target", "ConditionPathExists=/run/ostree-booted"} {
					if !strings.Contains(svc, w) {
						t.Errorf("service lacks %q:\n%s", w, svc)
					}
				}
				for _, w := range []string{"OnCalendar=daily", "RandomizedDelaySec=", "Persistent=true", "WantedBy=timers.target"} {
					if !strings.Contains(tm, w) {
						t.Errorf("timer lacks %q:\n%s", w, tm)
					}
				}
			}
			// No network manager in the commit: DHCP through systemd-networkd, enabled.
			readFile(t, filepath.Join(deploy, "etc/systemd/network/80-debian-atomic-dhcp.network"))
			if _, err := os.Lstat(filepath.Join(deploy, "etc/systemd/system/multi-user.target.wants/systemd-networkd.service")); err != nil {
				t.Errorf("systemd-networkd is not enabled: %v", err)
			}
		})
	}
}
