package variants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMinimal(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	v, err := Load(".", "minimal")
	if err != nil {
		t.Fatal(err)
	}
	if v.Suite != "trixie" || v.Ref != "debian/13/x86_64/minimal" || v.Bootstrap != Mmdebstrap || v.Recommends {
		t.Errorf("unexpected variant: %+v", v)
	}
	for _, p := range []string{"linux-image-amd64", "dracut", "ostree-boot", "systemd-sysv", "openssh-server"} {
		if !containsString(v.Packages, p) {
			t.Errorf("minimal lacks %s", p)
		}
	}
	if v.Mirror == "" || v.MirrorSource == "" {
		t.Errorf("no mirror resolved: %+v", v)
	}
}

func TestErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"unknown", []string{"unknown.yaml:4", `field "pakages"`, "unknown field", `did you mean "packages"`}},
		{"wrongtype", []string{"wrongtype.yaml:4", `field "recommends"`, "expected true or false", "wrongtype.yaml:5", `field "packages"`, "expected a list"}},
		{"missing", []string{"missing.yaml", `field "suite"`, `field "ref"`, "missing required field"}},
		{"malformed", []string{"malformed.yaml", "not valid YAML", "line"}},
		{"inject", []string{`"foo; rm -rf /"`, `"$(reboot)"`, `"it's"`, `field "ref"`, `field "kernel-args"`, "not a valid Debian package name"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := Load("../testdata/variants-bad", c.file)
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func write(t *testing.T, name, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const good = `name: x
suite: trixie
architecture: amd64
packages: [zsh, bash]
os-name: debian
ref: test/x
`

func TestDefaultsAndMirrorPrecedence(t *testing.T) {
	t.Setenv(MirrorEnv, "")
	dir := write(t, "x", good)
	v, err := Load(dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	if v.Bootstrap != Mmdebstrap || len(v.Components) != 1 || v.Components[0] != "main" {
		t.Errorf("defaults not applied: %+v", v)
	}
	if v.Packages[0] != "bash" {
		t.Errorf("packages not sorted: %v", v.Packages)
	}
	dir = write(t, "x", good+"mirror: http://mirror.example/debian/\n")
	v, _ = Load(dir, "x")
	if v.Mirror != "http://mirror.example/debian" || v.MirrorSource != "file" {
		t.Errorf("file mirror: %q from %s", v.Mirror, v.MirrorSource)
	}
	t.Setenv(MirrorEnv, "http://127.0.0.1:9/debian")
	v, _ = Load(dir, "x")
	if v.Mirror != "http://127.0.0.1:9/debian" || !strings.Contains(v.MirrorSource, MirrorEnv) {
		t.Errorf("environment mirror: %q from %s", v.Mirror, v.MirrorSource)
	}
	t.Setenv(MirrorEnv, "ftp://x y")
	v, _ = Load(dir, "x")
	if err := v.CheckMirror(); err == nil || !strings.Contains(err.Error(), MirrorEnv) {
		t.Errorf("bad environment mirror accepted: %v", err)
	}
}

func TestNameMustMatchFile(t *testing.T) {
	dir := write(t, "y", good)
	_, err := Load(dir, "y")
	if err == nil || !strings.Contains(err.Error(), `does not match the file name "y.yaml"`) {
		t.Errorf("got %v", err)
	}
	if _, err := Load(dir, "../y"); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("path in variant name accepted: %v", err)
	}
	if _, err := Load(dir, "nosuch"); err == nil || !strings.Contains(err.Error(), "variants here: y") {
		t.Errorf("missing variant: %v", err)
	}
}

func TestRejectsBadValues(t *testing.T) {
	for field, line := range map[string]string{
		"ref":          "ref: a/../b",
		"os-name":      "os-name: 'de bian'",
		"bootstrap":    "bootstrap: cdebootstrap",
		"mirror":       "mirror: 'http://x/$(id)'",
		"metadata":     "metadata: {version: '1'}",
		"components":   "components: ['main;']",
		"suite":        "suite: 13",
		"architecture": "architecture: AMD64",
	} {
		body := good
		key := strings.SplitN(line, ":", 2)[0]
		var kept []string
		for _, l := range strings.Split(body, "\n") {
			if !strings.HasPrefix(l, key+":") {
				kept = append(kept, l)
			}
		}
		dir := write(t, "x", strings.Join(kept, "\n")+line+"\n")
		_, err := Load(dir, "x")
		if err == nil || !strings.Contains(err.Error(), `field "`+field+`"`) {
			t.Errorf("%s: got %v", line, err)
		}
	}
}

func TestHostMirror(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(
		"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"+
			"Types: deb\nURIs: http://ftp.de.debian.org/debian/\nSuites: bookworm\n"), 0o644)
	if got := HostMirror(dir); got != "http://ftp.de.debian.org/debian" {
		t.Errorf("deb822: got %q", got)
	}
	os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb [signed-by=/x.gpg] http://mirror.one/debian bookworm main\n"), 0o644)
	if got := HostMirror(dir); got != "http://mirror.one/debian" {
		t.Errorf("one-line: got %q", got)
	}
	os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb http://archive.ubuntu.com/ubuntu noble main\n"), 0o644)
	os.RemoveAll(filepath.Join(dir, "sources.list.d"))
	if got := HostMirror(dir); got != "" {
		t.Errorf("ubuntu host: got %q, want none", got)
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestFilesArePathsUnderEtcOrUsr(t *testing.T) {
	dir := write(t, "x", good+"files:\n  /etc/sway/config.d/50-applets.conf: |\n    exec nm-applet --indicator\n  /usr/share/x/y: ''\n")
	v, err := Load(dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	if v.Files["/etc/sway/config.d/50-applets.conf"] != "exec nm-applet --indicator\n" || len(v.Files) != 2 {
		t.Errorf("files: %q", v.Files)
	}
	for path, want := range map[string]string{
		"/var/lib/x":       "not a file under /etc or /usr",
		"/home/u/.bashrc":  "not a file under /etc or /usr",
		"/etc":             "not a file under /etc or /usr",
		"etc/x":            "absolute, clean",
		"/etc/../boot/x":   "absolute, clean",
		"/etc//x":          "absolute, clean",
		"/etc/x/":          "absolute, clean",
		"/etc/$(reboot)":   "absolute, clean",
		"/usr/etc/x":       "write it as /etc/x",
		"/usr/local/bin/x": "/var/usrlocal",
	} {
		dir := write(t, "x", good+"files:\n  '"+path+"': x\n")
		_, err := Load(dir, "x")
		if err == nil || !strings.Contains(err.Error(), `field "files"`) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.yaml:7") {
			t.Errorf("%s: got %v", path, err)
		}
	}
	dir = write(t, "x", good+"files:\n  /etc/x: '"+strings.Repeat("a", MaxFileBytes+1)+"'\n")
	if _, err := Load(dir, "x"); err == nil || !strings.Contains(err.Error(), "ship it in a package") {
		t.Errorf("a large file: got %v", err)
	}
	dir = write(t, "x", good+"files:\n  /etc/x: [a]\n")
	if _, err := Load(dir, "x"); err == nil || !strings.Contains(err.Error(), `field "files"`) {
		t.Errorf("a list as content: got %v", err)
	}
}
