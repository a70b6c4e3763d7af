package image

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Autologin logs one user in at boot, without a password: for kiosks,
// demos and tests. Opt-in in images/NAME.yaml:
//
//	autologin:
//	  user: demo          # one of users
//	  session: plasma     # optional: a session file's name (wayland-sessions or xsessions)
type Autologin struct {
	User    string `yaml:"user"`
	Session string `yaml:"session"`
}

var sessionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

type fieldError struct{ field, msg string }

// check says what is wrong with the setting; the user must be one the
// image makes, so no account exists without a password or a key.
func (a Autologin) check(users []User) []fieldError {
	var errs []fieldError
	known := false
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		known = known || u.Name == a.User
	}
	switch {
	case a.User == "":
		errs = append(errs, fieldError{"user", "autologin needs a user: one of the image's users"})
	case !known:
		errs = append(errs, fieldError{"user", fmt.Sprintf("%q is not one of the image's users (%s): add it under users", a.User, strings.Join(names, ", "))})
	}
	if a.Session != "" && !sessionRE.MatchString(strings.TrimSuffix(a.Session, ".desktop")) {
		errs = append(errs, fieldError{"session", fmt.Sprintf("%q is not a session name like plasma or sway (a file in /usr/share/wayland-sessions or xsessions)", a.Session)})
	}
	return errs
}

// Display managers the image knows how to configure, by their systemd unit.
const (
	GDM     = "gdm"
	SDDM    = "sddm"
	LightDM = "lightdm"
	Greetd  = "greetd"
)

// dmBinaries find a display manager in a deployment when no
// display-manager.service alias names it.
var dmBinaries = []struct{ dm, path string }{
	{GDM, "usr/sbin/gdm3"}, {SDDM, "usr/bin/sddm"}, {LightDM, "usr/sbin/lightdm"}, {Greetd, "usr/sbin/greetd"},
}

// DisplayManager is the display manager a deployment (or any root tree)
// starts: the display-manager.service alias first (what systemd starts),
// else the first one installed; "" when there is none.
func DisplayManager(root string) string {
	for _, etc := range []string{"etc", "usr/etc"} {
		if target, err := os.Readlink(filepath.Join(root, etc, "systemd/system/display-manager.service")); err == nil {
			name := strings.TrimSuffix(filepath.Base(target), ".service")
			switch name {
			case "gdm", "gdm3":
				return GDM
			case SDDM, LightDM, Greetd:
				return name
			}
		}
	}
	for _, b := range dmBinaries {
		if _, err := os.Stat(filepath.Join(root, b.path)); err == nil {
			return b.dm
		}
	}
	return ""
}

// writeAutologin configures the deployment's display manager to log a.User
// in at boot; it returns the display manager and the session chosen.
func writeAutologin(deploy string, a Autologin) (dm, session string, err error) {
	dm = DisplayManager(deploy)
	etc := filepath.Join(deploy, "etc")
	switch dm {
	case "":
		return "", "", fmt.Errorf("autologin: the commit has no display manager (gdm3, sddm, lightdm or greetd): remove autologin from the image settings")
	case GDM:
		// Debian's gdm3 reads /etc/gdm3/daemon.conf (custom.conf elsewhere);
		// GDM picks the user's default session itself.
		return dm, "", editINI(filepath.Join(etc, "gdm3/daemon.conf"), "daemon",
			[][2]string{{"AutomaticLoginEnable", "true"}, {"AutomaticLogin", a.User}})
	}
	s, err := findSession(deploy, a.Session)
	if err != nil {
		return dm, "", err
	}
	switch dm {
	case SDDM:
		// sddm.conf.d is read in name order; later files win.
		return dm, s.name, writeConf(filepath.Join(etc, "sddm.conf.d/90-debian-atomic-autologin.conf"),
			"[Autologin]\nUser="+a.User+"\nSession="+s.name+".desktop\nRelogin=false\n")
	case LightDM:
		return dm, s.name, writeConf(filepath.Join(etc, "lightdm/lightdm.conf.d/90-debian-atomic-autologin.conf"),
			"[Seat:*]\nautologin-user="+a.User+"\nautologin-user-timeout=0\nautologin-session="+s.name+"\n")
	default: // greetd: an initial session runs once at boot, then default_session (the greeter)
		return dm, s.name, editINI(filepath.Join(etc, "greetd/config.toml"), "initial_session",
			[][2]string{{"command", tomlString(s.exec)}, {"user", tomlString(a.User)}})
	}
}

type session struct{ name, exec string }

// sessionExecRE is what a greetd initial session may run: a command and
// plain arguments, nothing a shell or TOML would read differently.
var sessionExecRE = regexp.MustCompile(`^[A-Za-z0-9/._+-]+( [A-Za-z0-9/._+=-]+)*$`)

// findSession picks the named session, or by default the first Wayland
// session, else the first X11 one, from the deployment's session files.
// Two kinds are defaults only when nothing else is there: a Wayland session
// NAME-wayland beside an X11 session NAME, which is how desktops whose own
// session is X11 name their experimental Wayland one (Xfce 4.20's
// xfce-wayland needs a compositor Debian's xfce4 does not bring; Cinnamon's
// cinnamon-wayland), while Plasma and GNOME name their X11 session apart
// (plasmax11, gnome-xorg); and LightDM's lightdm-xsession, which starts
// whatever x-session-manager points at rather than a named desktop.
func findSession(deploy, want string) (session, error) {
	want = strings.TrimSuffix(want, ".desktop")
	type found struct {
		name, path string
		rank       int // 0 a desktop's own session, 1 lightdm-xsession, 2 an experimental NAME-wayland
	}
	var all []found
	x11 := map[string]bool{}
	for _, dir := range []string{"usr/share/wayland-sessions", "usr/share/xsessions"} {
		files, _ := filepath.Glob(filepath.Join(deploy, dir, "*.desktop"))
		sort.Strings(files)
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".desktop")
			all = append(all, found{name: name, path: f})
			if dir == "usr/share/xsessions" {
				x11[name] = true
			}
		}
	}
	var names []string
	pick := -1
	for i := range all {
		f := &all[i]
		names = append(names, f.name)
		if base, ok := strings.CutSuffix(f.name, "-wayland"); ok && x11[base] && strings.Contains(f.path, "wayland-sessions") {
			f.rank = 2
		} else if f.name == "lightdm-xsession" {
			f.rank = 1
		}
		switch {
		case want != "":
			if f.name == want && pick < 0 {
				pick = i
			}
		case pick < 0 || f.rank < all[pick].rank:
			pick = i
		}
	}
	if pick < 0 {
		if want != "" {
			return session{}, fmt.Errorf("autologin: no session %q in the commit (it has: %s)", want, strings.Join(names, ", "))
		}
		return session{}, fmt.Errorf("autologin: the commit has no session file in /usr/share/wayland-sessions or xsessions")
	}
	exec, err := desktopExec(all[pick].path)
	if err != nil {
		return session{}, err
	}
	return session{all[pick].name, exec}, nil
}

func desktopExec(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Exec="); ok {
			if !sessionExecRE.MatchString(v) {
				return "", fmt.Errorf("autologin: %s runs %q, which is not a plain command line", path, v)
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("autologin: %s has no Exec line", path)
}

func tomlString(s string) string { return `"` + s + `"` }

func writeConf(path, body string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte("# Made by debian-atomic (images/NAME.yaml: autologin)\n"+body), 0o644)
}

// editINI sets keys in [section] of an INI or TOML file, keeping every
// other line (comments included); the section is added when missing.
func editINI(path, section string, kv [][2]string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	st, _ := os.Stat(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	header := "[" + section + "]"
	var out []string
	in, found := false, false
	set := func() {
		for _, p := range kv {
			out = append(out, p[0]+"="+p[1])
		}
	}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			in = t == header
			if in {
				found = true
				out = append(out, l)
				set()
				continue
			}
		}
		if in && isKey(t, kv) {
			continue // replaced above
		}
		out = append(out, l)
	}
	if !found {
		if len(out) > 0 {
			out = append(out, "")
		}
		out = append(out, header)
		set()
	}
	mode := os.FileMode(0o644)
	if st != nil {
		mode = st.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), mode)
}

func isKey(line string, kv [][2]string) bool {
	k, _, ok := strings.Cut(line, "=")
	if !ok {
		return false
	}
	k = strings.TrimSpace(k)
	for _, p := range kv {
		if k == p[0] {
			return true
		}
	}
	return false
}
