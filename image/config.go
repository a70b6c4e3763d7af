// Package image turns a variant's OSTree commit into a UEFI-bootable disk
// image, without loop devices, and boots images in QEMU.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
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
	// Remote is where the machine's `ostree admin upgrade` pulls from; nil
	// leaves the image without a remote (origin: the bare ref).
	Remote *Remote `yaml:"remote"`
	// AutoUpdate installs a daily timer that stages upgrades for the next boot.
	AutoUpdate bool `yaml:"auto-update"`
	// Autologin logs one of Users in at boot (kiosks, demos, tests),
	// written the way the variant's display manager reads it (autologin.go).
	Autologin *Autologin `yaml:"autologin"`

	file       string // the settings file, for messages made after Load
	remoteLine int    // line of the remote field
}

// Remote is the OSTree remote an image's sysroot gets: the published
// repository (mage publish) as the machine reaches it.
type Remote struct {
	Name string `yaml:"name"` // default: the variant's os-name
	URL  string `yaml:"url"`
	// GPGKey is the publishing key's public part (.gpg or .asc), relative
	// to the folder holding the images folder; default: the key `mage
	// keygen` exported beside the publish repository.
	GPGKey string `yaml:"gpg-key"`
	// Unsigned says the repository is published unsigned (signing: none):
	// the remote then has gpg-verify=false. Never implied.
	Unsigned bool `yaml:"unsigned"`
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
	// Remote names as ostree accepts them in a refspec (no ':' or '/').
	remoteRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
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
	c.file, c.remoteLine = path, lineOf(&doc, "remote")
	if c.Remote != nil && c.Remote.GPGKey != "" && !filepath.IsAbs(c.Remote.GPGKey) {
		// Relative to the project, as the publish settings' paths are.
		c.Remote.GPGKey = filepath.Join(filepath.Dir(filepath.Clean(dir)), c.Remote.GPGKey)
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
			errs = append(errs, fmt.Errorf("%s:%s: unknown field %q (known: disk-size, filesystem, kernel-args, users, remote, auto-update, autologin; users have name, password-hash, ssh-keys, groups; remote has name, url, gpg-key, unsigned; autologin has user, session)", path, m[1], m[2]))
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
		field := at[0]
		if (field == "remote" || field == "autologin") && len(at) > 1 {
			field += "." + at[1]
		}
		errs = append(errs, fmt.Errorf("%s:%d: field %q: %s", path, lineOf(doc, at...), field, fmt.Sprintf(format, args...)))
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
	if r := c.Remote; r != nil {
		at := []string{"remote"}
		if r.Name != "" && !remoteRE.MatchString(r.Name) {
			bad(append(at, "name"), "%q is not a remote name: letters, digits, '.', '_', '-' (default: the variant's os-name)", r.Name)
		}
		if msg := checkURL(r.URL); msg != "" {
			bad(append(at, "url"), "%s", msg)
		}
		switch {
		case r.Unsigned && r.GPGKey != "":
			bad(append(at, "unsigned"), "unsigned: true and a gpg-key contradict each other: remove one of them")
		case r.GPGKey != "":
			if msg := checkKeyFile(r.GPGKey); msg != "" {
				bad(append(at, "gpg-key"), "%s", msg)
			}
		}
	}
	if c.AutoUpdate && c.Remote == nil {
		bad([]string{"auto-update"}, "auto-update needs a remote to update from: add remote (url, gpg-key)")
	}
	if a := c.Autologin; a != nil {
		for _, e := range a.check(c.Users) {
			bad(append([]string{"autologin"}, e.field), "%s", e.msg)
		}
	}
	return errors.Join(errs...)
}

// checkURL says what is wrong with a remote's URL, or "".
func checkURL(s string) string {
	if s == "" {
		return "the remote needs a url, e.g. http://updates.example.org/debian-atomic/ (where `mage publish`'s repository is served)"
	}
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, " \t\r\n\"'`;") {
		return fmt.Sprintf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Sprintf("%q names no host", s)
		}
	case "file":
		if u.Path == "" {
			return fmt.Sprintf("%q names no folder", s)
		}
	default:
		return fmt.Sprintf("%q: the url must be http, https or file", s)
	}
	return ""
}

// checkKeyFile says what is wrong with a public key file, or "": it must
// exist and hold an OpenPGP public key, armored (.asc) or binary (.gpg).
func checkKeyFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("cannot read the public key %s (%v): `go run mage.go keygen` exports one beside the publish repository", path, errors.Unwrap(err))
	}
	if !isPublicKey(data) {
		return fmt.Sprintf("%s is not an OpenPGP public key (export one with `gpg --export KEYID > FILE.gpg`)", path)
	}
	return ""
}

// isPublicKey recognises an armored public key block or a binary packet
// stream that starts with a public-key packet (tag 6).
func isPublicKey(data []byte) bool {
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return true
	}
	if len(data) < 3 || data[0]&0x80 == 0 {
		return false
	}
	if data[0]&0x40 != 0 { // new packet format
		return data[0]&0x3f == 6
	}
	return (data[0]>>2)&0x0f == 6
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
