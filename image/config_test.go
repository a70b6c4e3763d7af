package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/publish"
)

// Bad image settings give one message naming the file, the line and the
// field, and what is accepted.
func TestBadImageSettingsNameFileLineAndField(t *testing.T) {
	hash := `'$6$salt$abcdefghijklmnop'`
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"malformed", "disk-size: 6G\nusers: [\n", []string{"bad.yaml:2: not valid YAML"}},
		{"unknown", "disk-size: 6G\ndisksize: 8G\n", []string{"bad.yaml:2: unknown field \"disksize\"", "known: disk-size"}},
		{"wrongtype", "disk-size: 6G\nkernel-args: quiet\n", []string{"bad.yaml:2: wrong type"}},
		{"size", "filesystem: ext4\ndisk-size: 6T\n", []string{"bad.yaml:2: field \"disk-size\"", "like 6G"}},
		{"small", "disk-size: 1G\n", []string{"bad.yaml:1: field \"disk-size\"", "at least 2G"}},
		{"filesystem", "filesystem: xfs\n", []string{"bad.yaml:1: field \"filesystem\"", "ext4 or btrfs"}},
		{"karg", "kernel-args:\n  - quiet\n  - \"a b; reboot\"\n", []string{"bad.yaml:3: field \"kernel-args\""}},
		{"root", "users:\n  - name: root\n    password-hash: " + hash + "\n", []string{"bad.yaml:2: field \"users\"", "root cannot be added"}},
		{"passwordless", "users:\n  - name: ann\n    groups: [sudo]\n", []string{"bad.yaml:2: field \"users\"", "no password-less accounts"}},
		{"hash", "users:\n  - name: ann\n    password-hash: secret\n", []string{"bad.yaml:3: field \"users\"", "openssl passwd -6"}},
		{"sshkey", "users:\n  - name: ann\n    ssh-keys:\n      - \"ssh-rsa AAAA!!; reboot\"\n", []string{"bad.yaml:4: field \"users\"", "not an SSH public key"}},
		{"group", "users:\n  - name: ann\n    password-hash: " + hash + "\n    groups: [sudo, \"wheel;x\"]\n", []string{"bad.yaml:4: field \"users\"", "not a group name"}},
		{"remote-nourl", "disk-size: 6G\nremote:\n  name: debian\n", []string{"bad.yaml:2: field \"remote.url\"", "needs a url"}},
		{"remote-scheme", "remote:\n  url: ftp://example.org/repo\n", []string{"bad.yaml:2: field \"remote.url\"", "http, https or file"}},
		{"remote-url-shell", "remote:\n  url: \"http://example.org/;reboot\"\n", []string{"bad.yaml:2: field \"remote.url\"", "not a URL"}},
		{"remote-name", "remote:\n  url: http://example.org/\n  name: \"a:b\"\n", []string{"bad.yaml:3: field \"remote.name\"", "not a remote name"}},
		{"remote-nokey", "remote:\n  url: http://example.org/\n  gpg-key: keys/none.gpg\n", []string{"bad.yaml:3: field \"remote.gpg-key\"", "cannot read the public key", "mage.go keygen"}},
		{"remote-notakey", "remote:\n  url: http://example.org/\n  gpg-key: DIR/junk.gpg\n", []string{"bad.yaml:3: field \"remote.gpg-key\"", "not an OpenPGP public key"}},
		{"remote-contradiction", "remote:\n  url: http://example.org/\n  gpg-key: DIR/key.asc\n  unsigned: true\n", []string{"bad.yaml:4: field \"remote.unsigned\"", "contradict"}},
		{"remote-unknown", "remote:\n  url: http://example.org/\n  key: k.gpg\n", []string{"bad.yaml:3: unknown field \"key\"", "remote has name, url, gpg-key, unsigned"}},
		{"remote-string", "remote: http://example.org/\n", []string{"bad.yaml:1: wrong type"}},
		{"auto-update-noremote", "disk-size: 6G\nauto-update: true\n", []string{"bad.yaml:2: field \"auto-update\"", "needs a remote"}},
		{"auto-update-type", "auto-update: daily\n", []string{"bad.yaml:1: wrong type"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "junk.gpg"), []byte("not a key"), 0o644)
			os.WriteFile(filepath.Join(dir, "key.asc"), []byte(armoredStub), 0o644)
			os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(strings.ReplaceAll(c.body, "DIR", dir)), 0o644)
			_, err := Load(dir, "bad")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n"); n > 0 {
				t.Errorf("one mistake gave %d messages:\n%v", n+1, err)
			}
		})
	}
}

func TestImageSettingsDefaultsAndTestFile(t *testing.T) {
	c, err := Load(t.TempDir(), "none")
	if err != nil || c.DiskSize != "6G" || c.Filesystem != "ext4" {
		t.Errorf("defaults: %+v %v", c, err)
	}
	c, err = Load(filepath.Join("..", "testdata", "images"), "minimal")
	if err != nil || len(c.Users) != 1 || c.SizeMiB() != 4096 {
		t.Errorf("testdata/images/minimal.yaml: %+v %v", c, err)
	}
	if c, err := Load(filepath.Join("..", "images"), "minimal"); err != nil || c.Remote != nil {
		t.Errorf("images/minimal.yaml: %+v %v", c, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty.yaml"), nil, 0o644)
	if _, err := Load(dir, "empty"); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}

// armoredStub passes the key file check (which reads the armor header);
// ostree itself checks the key when the image is made.
const armoredStub = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"

// A remote's gpg-key is relative to the folder holding the images folder
// (the project), as the publish settings' paths are; binary keys pass.
func TestImageRemoteSettings(t *testing.T) {
	base := t.TempDir()
	images := filepath.Join(base, "images")
	os.MkdirAll(filepath.Join(base, "keys"), 0o755)
	os.MkdirAll(images, 0o755)
	os.WriteFile(filepath.Join(base, "keys", "updates.gpg"), []byte{0x99, 0x01, 0x8d, 0x04}, 0o644)
	os.WriteFile(filepath.Join(images, "m.yaml"), []byte("remote:\n  name: updates\n  url: https://updates.example.org/debian-atomic/\n  gpg-key: keys/updates.gpg\nauto-update: true\n"), 0o644)
	c, err := Load(images, "m")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Remote; r == nil || r.Name != "updates" || r.GPGKey != filepath.Join(base, "keys", "updates.gpg") || r.Unsigned || !c.AutoUpdate {
		t.Errorf("remote settings: %+v %+v", c, c.Remote)
	}
	os.WriteFile(filepath.Join(images, "u.yaml"), []byte("remote:\n  url: file:///srv/publish\n  unsigned: true\n"), 0o644)
	if c, err := Load(images, "u"); err != nil || !c.Remote.Unsigned || c.AutoUpdate {
		t.Errorf("unsigned remote: %+v %v", c, err)
	}
	for _, b := range [][]byte{{0xc6, 0x33, 0x04}, {0x98, 0x33, 0x04}, []byte(armoredStub)} {
		if !isPublicKey(b) {
			t.Errorf("%x is a public key", b[:3])
		}
	}
	for _, b := range [][]byte{{0x88, 0x01}, {0xc2, 0x01}, []byte("-----BEGIN PGP SIGNATURE-----"), nil} {
		if isPublicKey(b) {
			t.Errorf("%q is not a public key", b)
		}
	}
}

// A signed remote that names no key gets the one `mage keygen` exported
// beside the publish repository; a missing one is a file:line message
// before anything is built.
func TestImageRemoteDefaultKey(t *testing.T) {
	base := t.TempDir()
	cfg := build.Config{VariantsDir: filepath.Join(base, "variants"), CacheDir: filepath.Join(base, "cache")}
	os.MkdirAll(cfg.VariantsDir, 0o755)
	images := filepath.Join(base, "images")
	os.MkdirAll(images, 0o755)
	os.WriteFile(filepath.Join(images, "m.yaml"), []byte("disk-size: 4G\nremote:\n  url: http://10.0.2.100/\n"), 0o644)
	c, err := Load(images, "m")
	if err != nil {
		t.Fatal(err)
	}
	_, err = defaultKey(cfg, &c)
	if err == nil || !strings.Contains(err.Error(), "m.yaml:2: field \"remote\"") || !strings.Contains(err.Error(), "keygen") {
		t.Errorf("no key exported yet: %v", err)
	}
	key := filepath.Join(cfg.CacheDir, "publish", publish.KeyFileName)
	os.MkdirAll(filepath.Dir(key), 0o755)
	os.WriteFile(key, []byte{0x99, 0x01, 0x8d, 0x04}, 0o644)
	if pub, err := defaultKey(cfg, &c); err != nil || c.Remote.GPGKey != key || pub != filepath.Dir(key) {
		t.Errorf("the exported key: %q %q %v", c.Remote.GPGKey, pub, err)
	}
	// Publishing unsigned: the message says how the image says so.
	os.Remove(key)
	c.Remote.GPGKey = ""
	os.WriteFile(filepath.Join(cfg.VariantsDir, publish.SettingsFile), []byte("signing: none\n"), 0o644)
	if _, err := defaultKey(cfg, &c); err == nil || !strings.Contains(err.Error(), "unsigned: true") {
		t.Errorf("unsigned publishing: %v", err)
	}
}
