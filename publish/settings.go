package publish

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

// SettingsFile is the publish settings' name in the variants folder.
const SettingsFile = "publish.yaml"

// DefaultKeep is how many commits of each ref stay published by default.
const DefaultKeep = 10

// Env moves the publish repository (default CACHE/publish); it wins over
// the settings' repo field.
const Env = "DEBIAN_ATOMIC_PUBLISH"

// KeyFileName is the public key exported into the publish repository's
// folder (a binary keyring for `ostree remote add --gpg-import`), so it is
// served with it.
const KeyFileName = "debian-atomic.gpg"

// KeyIDFileName, in the GnuPG home, records the key `mage keygen` made; it
// is the key when the settings name none.
const KeyIDFileName = "debian-atomic.keyid"

// Settings are variants/publish.yaml, validated, with defaults applied.
type Settings struct {
	File      string // the settings file ("" when it does not exist)
	KeyID     string // GPG key id or fingerprint from the file; "" means the one keygen recorded
	GnuPGHome string // absolute; "" means CACHE/gnupg
	Unsigned  bool   // `signing: none` in the file, in those words
	Keep      int    // commits kept per ref, the newest included
	Repo      string // absolute; "" means DEBIAN_ATOMIC_PUBLISH or CACHE/publish
}

// RepoDir is where s publishes for cfg: DEBIAN_ATOMIC_PUBLISH, else the
// settings' repo, else CACHE/publish.
func (s *Settings) RepoDir(cfg build.Config) string {
	if v := os.Getenv(Env); v != "" {
		if abs, err := filepath.Abs(v); err == nil {
			return abs
		}
		return v
	}
	if s.Repo != "" {
		return s.Repo
	}
	return filepath.Join(cfg.CacheDir, "publish")
}

// Home is the GnuPG home that holds the signing key (through a short link
// when its path is too long for gpg-agent's sockets: see shortHome).
func (s *Settings) Home(cfg build.Config) string {
	home := s.GnuPGHome
	if home == "" {
		home = filepath.Join(cfg.CacheDir, "gnupg")
	}
	if short, err := shortHome(home); err == nil {
		return short
	}
	return home // gpg then says what failed
}

// ownHome reports whether the GnuPG home is the builder's own (under the
// cache), whose agent the builder may stop.
func (s *Settings) ownHome() bool { return s.GnuPGHome == "" }

// Key is the signing key: the settings' key-id, else the one `mage keygen`
// recorded in the GnuPG home. An error says what to do.
func (s *Settings) Key(cfg build.Config) (string, error) {
	if s.KeyID != "" {
		return s.KeyID, nil
	}
	path := filepath.Join(s.Home(cfg), KeyIDFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		where := "no " + SettingsFile
		if s.File != "" {
			where = s.File + " names no key-id"
		}
		return "", fmt.Errorf("no signing key: %s, and no key made by `mage keygen` (%s is missing). Run `go run mage.go keygen`, or set key-id (and gnupg-home) in %s, or publish unsigned with `signing: none`", where, path, SettingsFile)
	}
	id := strings.TrimSpace(string(data))
	if !keyIDRE.MatchString(id) {
		return "", fmt.Errorf("%s holds %q, not a key fingerprint: run `go run mage.go keygen` again", path, id)
	}
	return id, nil
}

// SettingsErrors is every problem found in the settings file, one message.
type SettingsErrors []*variants.Error

func (es SettingsErrors) Error() string {
	var b strings.Builder
	if len(es) > 1 {
		fmt.Fprintf(&b, "%d problems in %s; nothing was published:\n", len(es), es[0].File)
	}
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		if len(es) > 1 {
			b.WriteString("  ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// A key id is a fingerprint (40 hex digits), a long (16) or short (8) id.
var keyIDRE = regexp.MustCompile(`^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$`)

var settingsFields = []string{"key-id", "gnupg-home", "signing", "keep", "repo"}

// LoadSettings reads variantsDir/publish.yaml. A missing file gives the
// defaults: sign with the key `mage keygen` makes, keep DefaultKeep commits
// per ref, publish into CACHE/publish. Relative paths in the file are
// relative to the folder that holds the variants folder (the project).
func LoadSettings(variantsDir string) (*Settings, error) {
	path := filepath.Join(variantsDir, SettingsFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &Settings{Keep: DefaultKeep}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSettings(path, filepath.Dir(filepath.Clean(variantsDir)), data)
}

// ParseSettings validates a settings file's contents; base resolves
// relative paths.
func ParseSettings(path, base string, data []byte) (*Settings, error) {
	s := &Settings{File: path, Keep: DefaultKeep}
	var errs SettingsErrors
	fail := func(line int, field, format string, args ...any) {
		errs = append(errs, &variants.Error{File: path, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		fail(0, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, errs
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return s, nil // an empty file: every default
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		fail(root.Line, "", "the top level must be a mapping of field: value (fields: %s)", strings.Join(settingsFields, ", "))
		return nil, errs
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		name := k.Value
		known := false
		for _, f := range settingsFields {
			known = known || f == name
		}
		if !known || k.Kind != yaml.ScalarNode {
			fail(k.Line, name, "unknown field%s (known fields: %s)", variants.Closest(name, settingsFields), strings.Join(settingsFields, ", "))
			continue
		}
		if first, dup := lines[name]; dup {
			fail(k.Line, name, "given twice (first on line %d)", first)
			continue
		}
		lines[name] = k.Line
		if name == "keep" {
			n, err := strconv.Atoi(val.Value)
			switch {
			case val.Kind != yaml.ScalarNode || val.ShortTag() != "!!int" || err != nil:
				fail(val.Line, name, "expected a whole number of commits to keep per ref (for example 10), got %s", variants.Describe(val))
			case n < 1 || n > 1000:
				fail(val.Line, name, "%d is out of range: keep at least 1 commit (the newest) and at most 1000", n)
			default:
				s.Keep = n
			}
			continue
		}
		str, msg := variants.ScalarString(val)
		if msg != "" {
			if name == "signing" && val.ShortTag() == "!!bool" {
				msg += `: write "signing: gpg", or "signing: none" to publish without signatures`
			}
			fail(val.Line, name, "%s", msg)
			continue
		}
		switch name {
		case "key-id":
			id := strings.TrimPrefix(strings.ReplaceAll(str, " ", ""), "0x")
			if !keyIDRE.MatchString(id) {
				fail(val.Line, name, "%q is not a GPG key id: give the key's fingerprint (40 hex digits, `gpg --list-secret-keys --with-colons` prints it on its fpr line)", str)
				continue
			}
			s.KeyID = strings.ToUpper(id)
		case "gnupg-home", "repo":
			if strings.TrimSpace(str) == "" || strings.ContainsRune(str, 0) {
				fail(val.Line, name, "give a folder path (absolute, or relative to %s)", base)
				continue
			}
			if !filepath.IsAbs(str) {
				str = filepath.Join(base, str)
			}
			if name == "repo" {
				s.Repo = filepath.Clean(str)
			} else {
				s.GnuPGHome = filepath.Clean(str)
			}
		case "signing":
			switch str {
			case "gpg":
			case "none":
				s.Unsigned = true
			default:
				fail(val.Line, name, `%q is not a signing mode: write "gpg" (the default) or "none" to publish without signatures, which clients then cannot verify`, str)
			}
		}
	}
	if s.Unsigned && s.KeyID != "" {
		fail(lines["signing"], "signing", `"none" and a key-id (line %d) contradict each other: remove one of them`, lines["key-id"])
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}
