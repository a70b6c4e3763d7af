package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deployment makes a tree with the files a display manager's package ships
// that autologin reads or edits.
func deployment(t *testing.T, files map[string]string, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Each display manager gets autologin in the file and syntax it reads.
func TestAutologinPerDisplayManager(t *testing.T) {
	// Debian's gdm3 daemon.conf as shipped (abridged): commented examples.
	gdmConf := "# GDM configuration storage\n[daemon]\n# Uncomment the line below to force the login screen to use Xorg\n#WaylandEnable=false\n\n# Enabling automatic login\n#  AutomaticLoginEnable = true\n#  AutomaticLogin = user1\n\n[security]\n\n[debug]\n#Enable=true\n"
	greetdConf := "[terminal]\nvt = 7\n\n[default_session]\ncommand = \"/usr/sbin/agreety --cmd /bin/sh\"\nuser = \"_greetd\"\n"
	for _, c := range []struct {
		name    string
		files   map[string]string
		links   map[string]string
		session string
		dm      string
		path    string
		want    []string
		notWant []string
	}{
		{name: "gdm", dm: GDM, path: "etc/gdm3/daemon.conf",
			files: map[string]string{"usr/sbin/gdm3": "", "etc/gdm3/daemon.conf": gdmConf},
			links: map[string]string{"etc/systemd/system/display-manager.service": "/usr/lib/systemd/system/gdm.service"},
			want:  []string{"[daemon]\nAutomaticLoginEnable=true\nAutomaticLogin=demo\n", "#WaylandEnable=false", "[security]", "#Enable=true"}},
		{name: "sddm", dm: SDDM, path: "etc/sddm.conf.d/90-debian-atomic-autologin.conf",
			files: map[string]string{"usr/bin/sddm": "", "usr/share/wayland-sessions/plasma.desktop": "[Desktop Entry]\nExec=/usr/lib/x86_64-linux-gnu/libexec/plasma-dbus-run-session-if-needed /usr/bin/startplasma-wayland\n", "usr/share/xsessions/plasmax11.desktop": "[Desktop Entry]\nExec=startplasma-x11\n"},
			links: map[string]string{"etc/systemd/system/display-manager.service": "/lib/systemd/system/sddm.service"},
			want:  []string{"[Autologin]\nUser=demo\nSession=plasma.desktop\nRelogin=false\n"}},
		{name: "sddm-x11", dm: SDDM, session: "plasmax11", path: "etc/sddm.conf.d/90-debian-atomic-autologin.conf",
			files: map[string]string{"usr/bin/sddm": "", "usr/share/wayland-sessions/plasma.desktop": "[Desktop Entry]\nExec=startplasma-wayland\n", "usr/share/xsessions/plasmax11.desktop": "[Desktop Entry]\nExec=startplasma-x11\n"},
			want:  []string{"Session=plasmax11.desktop\n"}},
		{name: "lightdm", dm: LightDM, path: "etc/lightdm/lightdm.conf.d/90-debian-atomic-autologin.conf",
			files: map[string]string{"usr/sbin/lightdm": "", "usr/share/xsessions/xfce.desktop": "[Desktop Entry]\nExec=startxfce4\n"},
			want:  []string{"[Seat:*]\nautologin-user=demo\nautologin-user-timeout=0\nautologin-session=xfce\n"}},
		{name: "greetd", dm: Greetd, path: "etc/greetd/config.toml",
			files:   map[string]string{"usr/sbin/greetd": "", "etc/greetd/config.toml": greetdConf, "usr/share/wayland-sessions/sway.desktop": "[Desktop Entry]\nName=Sway\nExec=sway\n"},
			want:    []string{greetdConf + "\n[initial_session]\ncommand=\"sway\"\nuser=\"demo\"\n"},
			notWant: []string{"user=\"_greetd\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := deployment(t, c.files, c.links)
			dm, _, err := writeAutologin(root, Autologin{User: "demo", Session: c.session})
			if err != nil {
				t.Fatal(err)
			}
			if dm != c.dm {
				t.Errorf("display manager %q, want %q", dm, c.dm)
			}
			got := read(t, filepath.Join(root, c.path))
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s lacks %q:\n%s", c.path, w, got)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%s has %q:\n%s", c.path, w, got)
				}
			}
			// Idempotent: writing twice gives the same file (an image rebuilt).
			if _, _, err := writeAutologin(root, Autologin{User: "demo", Session: c.session}); err != nil {
				t.Fatal(err)
			}
			if again := read(t, filepath.Join(root, c.path)); again != got {
				t.Errorf("second write changed the file:\n%s\nthen:\n%s", got, again)
			}
		})
	}
}

func TestAutologinRefusals(t *testing.T) {
	if _, _, err := writeAutologin(t.TempDir(), Autologin{User: "demo"}); err == nil || !strings.Contains(err.Error(), "no display manager") {
		t.Errorf("no display manager: %v", err)
	}
	root := deployment(t, map[string]string{"usr/bin/sddm": "", "usr/share/wayland-sessions/plasma.desktop": "Exec=startplasma-wayland\n"}, nil)
	if _, _, err := writeAutologin(root, Autologin{User: "demo", Session: "gnome"}); err == nil || !strings.Contains(err.Error(), `no session "gnome" in the commit (it has: plasma)`) {
		t.Errorf("unknown session: %v", err)
	}
	root = deployment(t, map[string]string{"usr/sbin/greetd": "", "usr/share/wayland-sessions/evil.desktop": "Exec=sh -c \"reboot\"\n"}, nil)
	if _, _, err := writeAutologin(root, Autologin{User: "demo"}); err == nil || !strings.Contains(err.Error(), "not a plain command line") {
		t.Errorf("odd Exec: %v", err)
	}
}

// The setting names the file, line and field when it is wrong.
func TestAutologinSettingsValidated(t *testing.T) {
	hash := `'$6$salt$abcdefghijklmnop'`
	for _, c := range []struct{ name, body, want string }{
		{"nouser", "users:\n  - name: ann\n    password-hash: " + hash + "\nautologin:\n  session: plasma\n", `bad.yaml:4: field "autologin.user": autologin needs a user`},
		{"unknownuser", "users:\n  - name: ann\n    password-hash: " + hash + "\nautologin:\n  user: bob\n", `bad.yaml:5: field "autologin.user": "bob" is not one of the image's users (ann)`},
		{"session", "users:\n  - name: ann\n    password-hash: " + hash + "\nautologin:\n  user: ann\n  session: \"x;reboot\"\n", `bad.yaml:6: field "autologin.session"`},
		{"unknownfield", "autologin:\n  usr: ann\n", `bad.yaml:2: unknown field "usr"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(c.body), 0o644)
			_, err := Load(dir, "bad")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte("users:\n  - name: ann\n    password-hash: "+hash+"\nautologin:\n  user: ann\n"), 0o644)
	c, err := Load(dir, "ok")
	if err != nil || c.Autologin == nil || c.Autologin.User != "ann" {
		t.Errorf("valid setting: %+v, %v", c.Autologin, err)
	}
}

// GNOME Shell's units get a start timeout long enough for software
// rendering; other desktops get nothing.
func TestGnomeShellStartTimeout(t *testing.T) {
	root := deployment(t, map[string]string{"usr/lib/systemd/user/org.gnome.Shell@wayland.service": "[Service]\nType=notify\n", "usr/lib/systemd/user/org.gnome.Shell@x11.service": "[Service]\n"}, nil)
	if wrote, err := writeDesktopSettings(root); err != nil || !wrote {
		t.Fatalf("%v %v", wrote, err)
	}
	for _, u := range []string{"wayland", "x11"} {
		if got := read(t, filepath.Join(root, "etc/systemd/user/org.gnome.Shell@"+u+".service.d/50-debian-atomic-start-timeout.conf")); !strings.Contains(got, "[Service]\nTimeoutStartSec=10min\n") {
			t.Errorf("%s drop-in:\n%s", u, got)
		}
	}
	if wrote, err := writeDesktopSettings(t.TempDir()); err != nil || wrote {
		t.Errorf("no GNOME Shell: %v %v", wrote, err)
	}
}
