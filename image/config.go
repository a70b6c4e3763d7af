// Package image turns a variant's OSTree commit into a UEFI-bootable disk
// image, without loop devices, and boots images in QEMU.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is an image's settings, in the spirit of bootc-image-builder's
// config: images/NAME.yaml beside the variants. Every field is optional.
type Config struct {
	DiskSize   string   `yaml:"disk-size"`   // e.g. 6G; default 6G
	Filesystem string   `yaml:"filesystem"`  // ext4 (default) or btrfs
	KernelArgs []string `yaml:"kernel-args"` // added to the variant's
	Users      []User   `yaml:"users"`
}

// User is an account made in the image. No password-less account exists:
// a user has a password hash, an SSH key, or both.
type User struct {
	Name         string   `yaml:"name"`
	PasswordHash string   `yaml:"password-hash"` // crypt(3) hash, e.g. from `openssl passwd -6`
	SSHKeys      []string `yaml:"ssh-keys"`
	Groups       []string `yaml:"groups"` // default: sudo
}

var (
	sizeRE  = regexp.MustCompile(`^[1-9][0-9]{0,5}[MG]$`)
	userRE  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	hashRE  = regexp.MustCompile(`^\$(1|5|6|y|gy|2[aby])\$[./A-Za-z0-9$=,]+$`)
	sshRE   = regexp.MustCompile(`^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n\r:]*)?$`)
	kargsRE = regexp.MustCompile(`^[A-Za-z0-9_.,:/=+@%-]{1,255}$`)
)

// Load reads images/NAME.yaml in dir; a missing file gives the defaults.
func Load(dir, name string) (Config, error) {
	c := Config{DiskSize: "6G", Filesystem: "ext4"}
	path := filepath.Join(dir, name+".yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if c.DiskSize == "" {
		c.DiskSize = "6G"
	}
	if c.Filesystem == "" {
		c.Filesystem = "ext4"
	}
	return c, c.validate(path)
}

func (c Config) validate(path string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: field %q: %s", path, field, fmt.Sprintf(format, args...)))
	}
	if !sizeRE.MatchString(c.DiskSize) {
		bad("disk-size", "%q is not a size like 6G or 4096M", c.DiskSize)
	} else if c.SizeMiB() < 2048 {
		bad("disk-size", "%q is too small: at least 2G", c.DiskSize)
	}
	if c.Filesystem != "ext4" && c.Filesystem != "btrfs" {
		bad("filesystem", "%q is not supported: ext4 or btrfs", c.Filesystem)
	}
	for _, k := range c.KernelArgs {
		if !kargsRE.MatchString(k) {
			bad("kernel-args", "%q is not accepted: one argument per item", k)
		}
	}
	for _, u := range c.Users {
		switch {
		case !userRE.MatchString(u.Name) || u.Name == "root":
			bad("users", "%q is not a valid user name (and root cannot be added)", u.Name)
		case u.PasswordHash == "" && len(u.SSHKeys) == 0:
			bad("users", "user %q has neither a password-hash nor an ssh-key: no password-less accounts", u.Name)
		case u.PasswordHash != "" && !hashRE.MatchString(u.PasswordHash):
			bad("users", "user %q: password-hash is not a crypt(3) hash (make one with `openssl passwd -6`)", u.Name)
		}
		for _, k := range u.SSHKeys {
			if !sshRE.MatchString(k) {
				bad("users", "user %q: %q is not an SSH public key", u.Name, k)
			}
		}
		for _, g := range u.Groups {
			if !userRE.MatchString(g) {
				bad("users", "user %q: %q is not a group name", u.Name, g)
			}
		}
	}
	return errors.Join(errs...)
}

// SizeMiB is the disk size in MiB.
func (c Config) SizeMiB() int {
	var n int
	fmt.Sscanf(c.DiskSize, "%d", &n)
	if strings.HasSuffix(c.DiskSize, "G") {
		n *= 1024
	}
	return n
}
