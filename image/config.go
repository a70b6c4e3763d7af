// Package image turns a variant's OSTree commit into a UEFI-bootable disk
// image, without loop devices, and boots images in QEMU.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, yamlError(path, err)
	}
	var doc yaml.Node
	yaml.Unmarshal(data, &doc)
	if c.DiskSize == "" {
		c.DiskSize = "6G"
	}
	if c.Filesystem == "" {
		c.Filesystem = "ext4"
	}
	return c, c.validate(path, &doc)
}

var (
	unknownRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)
	lineRE    = regexp.MustCompile(`line (\d+): (.*)`)
)

// yamlError turns the YAML library's errors into file:line messages in the
// file's own words.
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s:%s: not valid YAML: %s", path, m[1], m[2])
		}
		return fmt.Errorf("%s: not valid YAML: %s", path, msg)
	}
	var errs []error
	for _, e := range te.Errors {
		if m := unknownRE.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s:%s: unknown field %q (known: disk-size, filesystem, kernel-args, users; users have name, password-hash, ssh-keys, groups)", path, m[1], m[2]))
		} else if m := lineRE.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s:%s: wrong type: %s", path, m[1], m[2]))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", path, e))
		}
	}
	return errors.Join(errs...)
}

// lineOf is the line of the value at keys (map keys, or "0", "1"... for
// list items) in doc, or of the closest parent that exists.
func lineOf(doc *yaml.Node, keys ...string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range keys {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case yaml.SequenceNode:
			var i int
			if _, err := fmt.Sscanf(k, "%d", &i); err == nil && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

func (c Config) validate(path string, doc *yaml.Node) error {
	var errs []error
	bad := func(at []string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: field %q: %s", path, lineOf(doc, at...), at[0], fmt.Sprintf(format, args...)))
	}
	if !sizeRE.MatchString(c.DiskSize) {
		bad([]string{"disk-size"}, "%q is not a size like 6G or 4096M", c.DiskSize)
	} else if c.SizeMiB() < 2048 {
		bad([]string{"disk-size"}, "%q is too small: at least 2G", c.DiskSize)
	}
	if c.Filesystem != "ext4" && c.Filesystem != "btrfs" {
		bad([]string{"filesystem"}, "%q is not supported: ext4 or btrfs", c.Filesystem)
	}
	for i, k := range c.KernelArgs {
		if !kargsRE.MatchString(k) {
			bad([]string{"kernel-args", fmt.Sprint(i)}, "%q is not accepted: one argument per item", k)
		}
	}
	for i, u := range c.Users {
		at := []string{"users", fmt.Sprint(i)}
		switch {
		case !userRE.MatchString(u.Name) || u.Name == "root":
			bad(append(at, "name"), "%q is not a valid user name (and root cannot be added)", u.Name)
		case u.PasswordHash == "" && len(u.SSHKeys) == 0:
			bad(at, "user %q has neither a password-hash nor an ssh-key: no password-less accounts", u.Name)
		case u.PasswordHash != "" && !hashRE.MatchString(u.PasswordHash):
			bad(append(at, "password-hash"), "user %q: password-hash is not a crypt(3) hash (make one with `openssl passwd -6`)", u.Name)
		}
		for j, k := range u.SSHKeys {
			if !sshRE.MatchString(k) {
				bad(append(at, "ssh-keys", fmt.Sprint(j)), "user %q: %q is not an SSH public key", u.Name, k)
			}
		}
		for j, g := range u.Groups {
			if !userRE.MatchString(g) {
				bad(append(at, "groups", fmt.Sprint(j)), "user %q: %q is not a group name", u.Name, g)
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
