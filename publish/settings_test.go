package publish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

func TestSettingsShippedFileAndDefaults(t *testing.T) {
	s, err := LoadSettings(filepath.Join("..", "variants"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Unsigned || s.KeyID != "" || s.Keep != DefaultKeep || s.Repo != "" || s.GnuPGHome != "" {
		t.Fatalf("variants/publish.yaml: %+v", s)
	}
	// The settings file is not a variant.
	names, err := variants.List(filepath.Join("..", "variants"))
	if err != nil {
		t.Fatal(err)
	}
	if contains(names, "publish") {
		t.Fatalf("variants.List lists the settings file: %v", names)
	}
	missing, err := LoadSettings(t.TempDir())
	if err != nil || missing.File != "" || missing.Keep != DefaultKeep || missing.Unsigned {
		t.Fatalf("missing file: %+v, %v", missing, err)
	}
	cfg := build.Config{CacheDir: "/c"}
	t.Setenv(Env, "")
	if got := missing.RepoDir(cfg); got != "/c/publish" {
		t.Errorf("default repo %s", got)
	}
	if got := missing.Home(cfg); got != "/c/gnupg" {
		t.Errorf("default GnuPG home %s", got)
	}
	if _, err := missing.Key(cfg); err == nil || !strings.Contains(err.Error(), "mage.go keygen") {
		t.Errorf("no key: %v", err)
	}
	t.Setenv(Env, "/elsewhere/pub")
	if got := missing.RepoDir(cfg); got != "/elsewhere/pub" {
		t.Errorf("%s does not move the repository: %s", Env, got)
	}
}

func TestSettingsValues(t *testing.T) {
	s, err := ParseSettings("/p/variants/publish.yaml", "/p", []byte(
		"key-id: 0xace3a86772a910037eb4021929aec5f9398a1ce0\ngnupg-home: keys/gnupg\nkeep: 3\nrepo: /srv/www/repo\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != "ACE3A86772A910037EB4021929AEC5F9398A1CE0" || s.GnuPGHome != "/p/keys/gnupg" || s.Keep != 3 || s.Repo != "/srv/www/repo" || s.Unsigned {
		t.Fatalf("%+v", s)
	}
	if k, _ := s.Key(build.Config{}); k != s.KeyID {
		t.Errorf("key %s", k)
	}
	u, err := ParseSettings("/p/variants/publish.yaml", "/p", []byte("signing: none\n"))
	if err != nil || !u.Unsigned {
		t.Fatalf("signing: none: %+v %v", u, err)
	}
	// The key keygen recorded is the key when the file names none.
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, KeyIDFileName), []byte("ACE3A86772A910037EB4021929AEC5F9398A1CE0\n"), 0o644)
	r := &Settings{GnuPGHome: home, Keep: 1}
	if k, err := r.Key(build.Config{}); err != nil || k != "ACE3A86772A910037EB4021929AEC5F9398A1CE0" {
		t.Errorf("recorded key: %q %v", k, err)
	}
}

// Every mistake is one line naming file:line and the field, with what to write.
func TestSettingsErrorsNameFileLineAndField(t *testing.T) {
	const path = "/p/variants/publish.yaml"
	cases := []struct{ body, want string }{
		{"kep: 3\n", path + `:1: field "kep": unknown field; did you mean "keep"?`},
		{"keep: three\n", path + `:1: field "keep": expected a whole number`},
		{"keep: 0\n", path + `:1: field "keep": 0 is out of range`},
		{"keep: 2\nkeep: 3\n", path + `:2: field "keep": given twice (first on line 1)`},
		{"\nsigning: false\n", path + `:2: field "signing": expected a string, got the boolean false (quote it if you mean the text): write "signing: gpg", or "signing: none"`},
		{"signing: off\n", path + `:1: field "signing": "off" is not a signing mode`},
		{"signing: unsigned\n", path + `:1: field "signing": "unsigned" is not a signing mode`},
		{"key-id: alice@example.org\n", path + `:1: field "key-id": "alice@example.org" is not a GPG key id`},
		{"key-id: [a]\n", path + `:1: field "key-id": expected a string, got a list`},
		{"repo: ''\n", path + `:1: field "repo": give a folder path`},
		{"gnupg-home: 3\n", path + `:1: field "gnupg-home": expected a string, got the number 3`},
		{"key-id: ACE3A86772A910037EB4021929AEC5F9398A1CE0\nsigning: none\n", path + `:2: field "signing": "none" and a key-id (line 1) contradict each other`},
		{"- keep\n", path + `:1: the top level must be a mapping`},
		{"keep: [\n", path + `: not valid YAML`},
	}
	for _, c := range cases {
		_, err := ParseSettings(path, "/p", []byte(c.body))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got: %v\nwant: %s...", c.body, err, c.want)
		}
	}
	_, err := ParseSettings(path, "/p", []byte("keep: -1\nsigning: maybe\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "2 problems in "+path+"; nothing was published:\n  "+path+":1:") {
		t.Errorf("two mistakes: %v", err)
	}
	// An empty file is every default.
	if s, err := ParseSettings(path, "/p", []byte("# nothing set\n")); err != nil || s.Keep != DefaultKeep {
		t.Errorf("empty file: %+v %v", s, err)
	}
}
