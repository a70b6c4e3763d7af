package variants

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUpdatesDefaultAndSuites(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	t.Setenv(SecurityMirrorEnv, "")
	v, err := Load(write(t, "x", good+"mirror: http://deb.debian.org/debian\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"trixie", "trixie-updates", "trixie-security"}; !slices.Equal(v.Suites(), want) {
		t.Errorf("default suites %v, want %v", v.Suites(), want)
	}
	if v.SecurityMirror != "http://deb.debian.org/debian-security" || v.SystemSecurityMirror != v.SecurityMirror {
		t.Errorf("security mirror %q (system %q)", v.SecurityMirror, v.SystemSecurityMirror)
	}
	if id := v.BootstrapID(); id != "trixie,trixie-updates,trixie-security amd64 main" {
		t.Errorf("bootstrap id %q", id)
	}
	for body, want := range map[string][]string{
		"updates: []\n":                  {"trixie"},
		"updates: [security]\n":          {"trixie", "trixie-security"},
		"updates: [updates]\n":           {"trixie", "trixie-updates"},
		"updates: [security, updates]\n": {"trixie", "trixie-updates", "trixie-security"},
	} {
		v, err := Load(write(t, "x", good+body), "x")
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !slices.Equal(v.Suites(), want) {
			t.Errorf("%s: suites %v, want %v", body, v.Suites(), want)
		}
	}
	// sid has no pockets: none by default, and asking for them is an error.
	sid := strings.Replace(good, "suite: trixie", "suite: sid", 1)
	if v, err := Load(write(t, "x", sid), "x"); err != nil || !slices.Equal(v.Suites(), []string{"sid"}) {
		t.Errorf("sid: %v %v", v, err)
	}
	if _, err := Load(write(t, "x", sid+"updates: [security]\n"), "x"); err == nil || !strings.Contains(err.Error(), "x.yaml:7: field \"updates\"") {
		t.Errorf("sid with security: %v", err)
	}
}

func TestUpdatesErrorsNameFileLineAndField(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	for body, want := range map[string]string{
		"updates: [securty]\n":                           `x.yaml:7: field "updates": "securty" is not known`,
		"updates: [security, security]\n":                `x.yaml:7: field "updates": "security" is listed twice`,
		"updates: security\n":                            `x.yaml:7: field "updates": expected a list`,
		"mirror: http://m.example/repo\n":                `x.yaml:7: field "mirror": the security archive of mirror http://m.example/repo cannot be derived`,
		"security-mirror: 'http://x/$(id)'\n":            `x.yaml:7: field "security-mirror"`,
		"security-mirror: ftp://security.debian.org/x\n": `x.yaml:7: field "security-mirror"`,
	} {
		_, err := Load(write(t, "x", good+body), "x")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", strings.TrimSpace(body), err, want)
		}
	}
	// A mirror without a counterpart is fine with an explicit security
	// mirror, or without security.
	for _, body := range []string{
		"mirror: http://m.example/repo\nsecurity-mirror: http://s.example/sec\n",
		"mirror: http://m.example/repo\nupdates: [updates]\n",
	} {
		if _, err := Load(write(t, "x", good+body), "x"); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestChildInheritsUpdates(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	t.Setenv(SecurityMirrorEnv, "")
	dir := write(t, "x", good+"updates: [security]\nsecurity-mirror: http://security.example/debian-security\n")
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("name: c\ninherits: x\nref: test/c\npackages: [tree]\n"), 0o644)
	c, err := LoadChain(dir, "c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Suites(), []string{"trixie", "trixie-security"}) || c.SecurityMirror != "http://security.example/debian-security" ||
		c.SystemSources() != c.Parent.SystemSources() || c.BootstrapID() != c.Parent.BootstrapID() {
		t.Errorf("child did not inherit: suites %v, security %q", c.Suites(), c.SecurityMirror)
	}
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("name: c\ninherits: x\nref: test/c\nupdates: []\npackages: [tree]\n"), 0o644)
	if _, err := LoadChain(dir, "c"); err == nil || !strings.Contains(err.Error(), `c.yaml:4: field "updates": a variant that inherits sets no updates`) {
		t.Errorf("child setting updates: %v", err)
	}
}

func TestSystemAndBuildSources(t *testing.T) {
	t.Setenv(SecurityMirrorEnv, "")
	t.Setenv(MirrorEnv, "http://127.0.0.1:3142/debian")
	v, err := Load(write(t, "x", good), "x")
	if err != nil {
		t.Fatal(err)
	}
	// The committed file names Debian's own mirrors, never the build's proxy.
	want := `Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`
	if got := v.SystemSources(); got != want {
		t.Errorf("system sources:\n%s\nwant:\n%s", got, want)
	}
	if got := v.BuildSources(); !strings.Contains(got, "URIs: http://127.0.0.1:3142/debian\n") || !strings.Contains(got, "URIs: http://127.0.0.1:3142/debian-security\n") {
		t.Errorf("build sources do not use the environment's mirror:\n%s", got)
	}
	t.Setenv(SecurityMirrorEnv, "http://127.0.0.1:3142/security/")
	v, _ = Load(write(t, "x", good), "x")
	if v.SecurityMirror != "http://127.0.0.1:3142/security" || !strings.Contains(v.SecurityMirrorSource, SecurityMirrorEnv) {
		t.Errorf("environment security mirror: %q from %s", v.SecurityMirror, v.SecurityMirrorSource)
	}
	// The file's mirrors reach the committed system; no security, no stanza.
	t.Setenv(MirrorEnv, "")
	t.Setenv(SecurityMirrorEnv, "")
	v, err = Load(write(t, "x", good+"mirror: https://mirror.example/debian\ncomponents: [main, non-free-firmware]\nupdates: [updates]\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.SystemSources(); got != "Types: deb\nURIs: https://mirror.example/debian\nSuites: trixie trixie-updates\nComponents: main non-free-firmware\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" {
		t.Errorf("file mirror, updates only:\n%s", got)
	}
	// A bad file mirror is an error even while the environment overrides it.
	t.Setenv(MirrorEnv, "http://127.0.0.1:9/debian")
	if _, err := Load(write(t, "x", good+"mirror: 'http://x/$(id)'\n"), "x"); err == nil || !strings.Contains(err.Error(), `x.yaml:7: field "mirror"`) {
		t.Errorf("bad file mirror under an environment mirror: %v", err)
	}
	// An environment mirror without a counterpart needs the security one.
	t.Setenv(MirrorEnv, "http://127.0.0.1:9/mirror")
	v, _ = Load(write(t, "x", good), "x")
	if err := v.CheckMirror(); err == nil || !strings.Contains(err.Error(), SecurityMirrorEnv) {
		t.Errorf("underivable security mirror accepted: %v", err)
	}
}

func TestHostSecurityMirror(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(
		"Types: deb\nURIs: http://ftp.de.debian.org/debian/\nSuites: bookworm\n\n"+
			"Types: deb\nURIs: http://security.debian.org/debian-security/\nSuites: bookworm-security\n"), 0o644)
	if got := HostSecurityMirror(dir); got != "http://security.debian.org/debian-security" {
		t.Errorf("got %q", got)
	}
	if got := HostMirror(dir); got != "http://ftp.de.debian.org/debian" {
		t.Errorf("host mirror now %q", got)
	}
}

// The shipped variants follow the security archive and -updates.
func TestShippedVariantsFollowSecurityAndUpdates(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	t.Setenv(SecurityMirrorEnv, "")
	for _, name := range []string{"minimal", "gnome", "plasma"} {
		v, err := LoadChain(".", name)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"trixie", "trixie-updates", "trixie-security"}; !slices.Equal(v.Suites(), want) {
			t.Errorf("%s follows %v, want %v", name, v.Suites(), want)
		}
		if err := v.CheckMirror(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
