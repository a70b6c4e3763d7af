package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(c.body), 0o644)
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
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty.yaml"), nil, 0o644)
	if _, err := Load(dir, "empty"); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}
