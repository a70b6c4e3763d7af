package desktopcheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/image"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// Desktop is what proves a desktop variant's session runs: its shell's
// process (the name ps shows, at most 15 characters), and its network
// applet's where that is a program of its own.
type Desktop struct {
	Variant string
	Shell   string
	Applet  string // "": the shell has it built in (GNOME, Plasma, Cinnamon)
}

// Desktops are the variants check:desktops boots, in order.
var Desktops = []Desktop{
	{"gnome", "gnome-shell", ""},
	{"plasma", "plasmashell", ""},
	{"xfce", "xfce4-panel", "nm-applet"},
	{"cinnamon", "cinnamon", ""},
	{"mate", "mate-panel", "nm-applet"},
	{"lxqt", "lxqt-panel", "nm-tray"},
	{"sway", "sway", "nm-applet"},
	{"budgie", "budgie-panel", "nm-applet"},
}

// appletWait is how long after the session is on screen its network applet
// may take to start (autostart entries start after the panel).
const appletWait = 2 * time.Minute

// greeters are the display managers' greeter processes (ps names); GDM's
// greeter is a gnome-shell of its own user.
var greeters = map[string]bool{
	"gnome-shell": true, "sddm-greeter-qt": true, "sddm-greeter": true,
	"lightdm-gtk-gre": true, "slick-greeter": true, "lightdm-greeter": true,
	"gtkgreet": true, "tuigreet": true, "regreet": true, "agreety": true,
}

// The check's own account; the image is the check's, never shipped.
const (
	checkUser     = "checker"
	checkPassword = "checker"
	checkHash     = "$6$debianatomic$gDGdlguCJRNsb8nzirSuzQtrMY93tRJgWXrWOIneVr0N7wSPRBZnbW175VCxfLG7rlqdjOvuMhcugL66wtyox/"
)

// Options for one check.
type Options struct {
	Config    build.Config
	ImagesDir string // image settings (disk size, filesystem, kernel args) come from NAME.yaml here
	Name      string
	Shots     string        // folder for NAME-session.png and NAME-greeter.png
	Deadline  time.Duration // for each of: login prompt, session, greeter; default 15 minutes
	MemoryMiB int           // default 4096
	Echo      io.Writer     // the guest's console; nil: only into Shots/NAME.console.log
}

// Result is what one check found and measured. Times count from QEMU's start.
type Result struct {
	Name                         string
	Build, Image                 time.Duration
	Packages                     int
	ImageBytes                   int64 // allocated bytes of the raw image
	Login, Session               time.Duration
	Greeter                      time.Duration // after the session was ended
	SessionShot                  string
	GreeterShot                  string
	SessionLog                   string // what the session ran and logged: Shots/NAME.session.log
	SessionScreen, GreeterScreen Screen
	Failed                       []string // systemctl --failed
	Journal                      string   // the boot's error lines, counted
}

// Run builds, boots and checks one desktop variant. The error says what
// failed; the result holds what was measured until then.
func Run(ctx context.Context, o Options) (res Result, err error) {
	res.Name = o.Name
	var d Desktop
	for _, x := range Desktops {
		if x.Variant == o.Name {
			d = x
		}
	}
	if d.Shell == "" {
		return res, fmt.Errorf("no desktop check for %q: add its session's shell process to desktopcheck.Desktops", o.Name)
	}
	if o.Deadline == 0 {
		o.Deadline = 15 * time.Minute
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 4096
	}
	cfg, log := o.Config, o.Config.Log
	if _, err := variants.LoadChain(cfg.VariantsDir, o.Name); err != nil {
		return res, err
	}
	ic, err := image.Load(o.ImagesDir, o.Name)
	if err != nil {
		return res, err
	}
	ic.Users = append(ic.Users, image.User{Name: checkUser, PasswordHash: checkHash, Groups: []string{"sudo"}})
	ic.Autologin = &image.Autologin{User: checkUser}
	if err := build.EnsureHost(ctx, cfg, image.VMRequirements); err != nil {
		return res, err
	}
	if err := os.MkdirAll(o.Shots, 0o755); err != nil {
		return res, err
	}

	start := time.Now()
	if _, err := build.Variants(ctx, cfg, []string{o.Name}); err != nil {
		return res, err
	}
	res.Build = time.Since(start)
	out := filepath.Join(cfg.CacheDir, "images", "check-"+o.Name)
	defer os.Remove(out + ".raw")
	defer os.Remove(out + ".qcow2")
	img, err := image.ForSettings(ctx, cfg, o.Name, ic, out)
	if err != nil {
		return res, err
	}
	res.Image, res.ImageBytes = img.Duration, img.RawBytes
	res.Packages = countPackages(ctx, cfg, img.Commit)
	os.Remove(out + ".raw") // the qcow2 boots; the raw is the same disk

	// Beside mage vm's folders, not in the work folder: a build that starts
	// while this check waits for the VM lane empties that (helper-15 lost
	// a check's monitor socket so).
	work := filepath.Join(cfg.CacheDir, "vm-check-"+o.Name)
	os.RemoveAll(work)
	defer os.RemoveAll(work)
	console, err := os.Create(filepath.Join(o.Shots, o.Name+".console.log"))
	if err != nil {
		return res, err
	}
	defer console.Close()
	echo := io.Writer(console)
	if o.Echo != nil {
		echo = io.MultiWriter(console, o.Echo)
	}
	monitor := filepath.Join(work, "monitor.sock")
	// The host's VM lane: a second TCG guest beside the boot tests' would
	// starve both (soft lockups) on a small host. The wait for it is not
	// boot time: the figures count from vm.Started.
	boot := func() (*image.VM, error) {
		vm, err := image.Boot(ctx, image.VMOptions{Disk: img.Qcow2, Work: work, MemoryMiB: o.MemoryMiB,
			VGA: "virtio", Monitor: monitor, Echo: echo, Lane: image.HostLane})
		if err == nil {
			log.Info().Str("variant", o.Name).Str("accel", vm.Accel).Msg("desktop check: booting")
		}
		return vm, err
	}
	// A boot the emulator failed, not the desktop (gnome's first check
	// panicked in the initramfs 18 s in: an int3 oops of TCG's code
	// patching), is booted once more.
	vm, sh, err := image.LoginRetrying(ctx, boot, checkUser, checkPassword, o.Deadline, func(err error, trouble string) {
		log.Warn().Str("variant", o.Name).Str("kernel", trouble).Err(err).Msg("desktop check: the boot reached no login and its kernel reported the emulator's trouble; booting again, once")
	})
	if vm != nil {
		defer vm.Kill()
	}
	if err != nil {
		if vm == nil {
			return res, err
		}
		return res, fmt.Errorf("%s: no login on the serial console: %w", o.Name, err)
	}
	started := vm.Started
	if started.IsZero() {
		started = time.Now()
	}
	since := func() time.Duration { return time.Since(started).Round(time.Second) }
	if err := sh.Sudo(checkPassword); err != nil {
		return res, err
	}
	res.Login = since()
	log.Info().Str("variant", o.Name).Dur("since_boot", res.Login).Msg("desktop check: logged in on the serial console")
	g := guest{ctx: ctx, sh: sh, monitor: monitor}
	defer func() {
		if err != nil {
			// What a user would see, for the message.
			j, _, _ := sh.Run("journalctl -b -p warning --no-pager -o short-monotonic | tail -n 40", time.Minute)
			err = fmt.Errorf("%w\n(console: %s)\nlast warnings of the boot:\n%s", err, console.Name(), j)
		}
	}()

	// (b) the session automatic login starts: its shell, alive for a while
	// (a shell that crashes soon after starting is caught), and on screen.
	res.SessionShot = filepath.Join(o.Shots, o.Name+"-session.png")
	var pid int
	deadline := time.Now().Add(o.Deadline)
	for {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%s: no %s of user %s running and drawn within %s (last screen: %s)", o.Name, d.Shell, checkUser, o.Deadline, g.lastWhy)
		}
		p := g.process(d.Shell, func(u string) bool { return u == checkUser })
		if p == 0 {
			pid = 0
			if err := pause(ctx, 5*time.Second); err != nil {
				return res, err
			}
			continue
		}
		if p != pid {
			log.Info().Str("variant", o.Name).Int("pid", p).Dur("since_boot", since()).Msgf("desktop check: %s started; waiting for it to settle", d.Shell)
			pid = p
			if err := pause(ctx, 20*time.Second); err != nil {
				return res, err
			}
			continue
		}
		if s, ok := g.settled(res.SessionShot, Screen.Undrawn); ok {
			res.Session, res.SessionScreen = since(), s
			break
		}
		if err := pause(ctx, 5*time.Second); err != nil {
			return res, err
		}
	}
	log.Info().Str("variant", o.Name).Dur("boot_to_session", res.Session).Str("screenshot", res.SessionShot).Msg("desktop check: session running and on screen")
	// A session whose applets crashed or that misses a service passes the
	// numbers; what it ran and logged is kept for a person to read. X11
	// sessions started through /etc/X11/Xsession log to ~/.xsession-errors,
	// not the journal.
	res.SessionLog = filepath.Join(o.Shots, o.Name+".session.log")
	diag, _, _ := sh.Run(`echo "== processes of `+checkUser+`"; ps -u `+checkUser+` -o etime=,args= | cut -c1-160; `+
		`echo "== journal, warnings and worse, counted (kernel: $(journalctl -b -k -p warning --no-pager -o cat | wc -l) lines, not shown)"; `+
		`journalctl -b -p warning --no-pager -o short-iso | grep -v ' kernel: ' | cut -d' ' -f3- | sed 's/\[[0-9]*\]:/:/' | cut -c1-200 | sort | uniq -c | sort -rn | head -n 80; `+
		`echo "== ~/.xsession-errors"; tail -n 80 ~`+checkUser+`/.xsession-errors 2>/dev/null | cut -c1-200; true`, 3*time.Minute)
	if err := os.WriteFile(res.SessionLog, []byte(diag+"\n"), 0o644); err != nil {
		return res, err
	}
	log.Info().Str("variant", o.Name).Str("session_log", res.SessionLog).Msg("desktop check: the session's processes and complaints kept")
	if d.Applet != "" {
		for wait := time.Now().Add(appletWait); g.process(d.Applet, func(u string) bool { return u == checkUser }) == 0; {
			if time.Now().After(wait) {
				return res, fmt.Errorf("%s: the session started no network applet (%s of user %s) within %s of being on screen; see %s", o.Name, d.Applet, checkUser, appletWait, res.SessionLog)
			}
			if err := pause(ctx, 5*time.Second); err != nil {
				return res, err
			}
		}
		log.Info().Str("variant", o.Name).Str("applet", d.Applet).Msg("desktop check: the network applet runs")
	}

	// (a) the display manager and its greeter, once the session has ended
	// as at a logout: the session's process (the leader's children: the
	// session manager under GDM's worker, LightDM's session child, SDDM's
	// helper) gets SIGTERM and exits, and the display manager sees it end.
	// Killing the whole session (loginctl terminate-session) kills SDDM's
	// helper too, which SDDM counts as an internal error and then starts no
	// greeter (lxqt: "sddm-helper ... crashed", a black screen); that is
	// the fallback after a minute. Only the graphical session: the serial
	// console's session is this shell.
	graphical := `for s in $(loginctl list-sessions --no-legend | awk '{print $1}'); do ` +
		`[ "$(loginctl show-session $s -p Name --value)" = ` + checkUser + ` ] && ` +
		`[ "$(loginctl show-session $s -p Type --value)" != tty ] && `
	if _, _, err := sh.Run(graphical+`pkill -TERM -P "$(loginctl show-session $s -p Leader --value)"; done; true`, time.Minute); err != nil {
		return res, err
	}
	ended := time.Now()
	terminated := false
	res.GreeterShot = filepath.Join(o.Shots, o.Name+"-greeter.png")
	deadline = time.Now().Add(o.Deadline)
	for {
		if !terminated && time.Since(ended) > time.Minute && g.process("", func(u string) bool { return u != checkUser && u != "root" }) == 0 {
			log.Warn().Str("variant", o.Name).Msg("desktop check: the session did not end at SIGTERM within a minute; terminating it")
			if _, _, err := sh.Run(graphical+`loginctl terminate-session $s; done; true`, time.Minute); err != nil {
				return res, err
			}
			terminated = true
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%s: the display manager's greeter was not running and drawn within %s of ending the session (last screen: %s)", o.Name, o.Deadline, g.lastWhy)
		}
		if err := pause(ctx, 5*time.Second); err != nil {
			return res, err
		}
		out, _, _ := sh.Run("systemctl is-active display-manager", time.Minute)
		if !strings.HasSuffix(out, "active") || strings.HasSuffix(out, "inactive") {
			g.lastWhy = "display-manager.service " + lastLine(out)
			continue
		}
		if g.process("", func(u string) bool { return u != checkUser && u != "root" }) == 0 {
			g.lastWhy = "no greeter process"
			continue
		}
		if s, ok := g.settled(res.GreeterShot, Screen.Blank); ok {
			res.Greeter, res.GreeterScreen = since(), s
			break
		}
	}
	log.Info().Str("variant", o.Name).Dur("since_boot", res.Greeter).Str("screenshot", res.GreeterShot).Msg("desktop check: greeter on screen")

	failed, _, _ := sh.Run("systemctl --failed --plain --no-legend | cut -d' ' -f1", time.Minute)
	for _, l := range strings.Split(failed, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			res.Failed = append(res.Failed, l)
		}
	}
	res.Journal, _, _ = sh.Run("journalctl -b -p err --no-pager -o cat | sort | uniq -c | sort -rn | head -n 40", time.Minute)
	sh.Run("systemctl poweroff", 10*time.Second)
	vm.Wait(2 * time.Minute)
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("%s: failed units: %s", o.Name, strings.Join(res.Failed, ", "))
	}
	return res, nil
}

// guest asks the booted machine what runs and what is on its screen.
type guest struct {
	ctx     context.Context
	sh      *image.Shell
	monitor string
	lastWhy string
}

var psLine = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(.+)$`)

// process is the pid of a running process named name (any greeter when
// name is "") whose user passes user, or 0.
func (g *guest) process(name string, user func(string) bool) int {
	out, _, err := g.sh.Run("ps -eo user:32=,pid=,comm=", time.Minute)
	if err != nil {
		g.lastWhy = err.Error()
		return 0
	}
	for _, l := range strings.Split(out, "\n") {
		m := psLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil || !user(m[1]) {
			continue
		}
		if (name != "" && m[3] == name) || (name == "" && greeters[m[3]]) {
			pid, _ := strconv.Atoi(m[2])
			return pid
		}
	}
	if name != "" {
		g.lastWhy = "no " + name + " process"
	}
	return 0
}

// Under TCG a desktop draws for a minute or more after its processes
// start (the wallpaper, the dock, applets): a screenshot counts once the
// screen has stopped changing, beyond a clock's digits or a blinking cursor.
const (
	settleGap = 15 * time.Second
	maxChange = 0.005
)

// settled takes two screenshots settleGap apart and says whether the
// second passes judge (Screen.Blank, Screen.Undrawn) and the screen changed
// little in between.
func (g *guest) settled(path string, judge func(Screen) string) (Screen, bool) {
	before := strings.TrimSuffix(path, ".png") + ".before.png"
	defer os.Remove(before)
	if _, ok := g.shot(before, judge); !ok {
		os.Rename(before, path) // the last screen, for a person to look at
		return Screen{}, false
	}
	if pause(g.ctx, settleGap) != nil {
		return Screen{}, false
	}
	s, ok := g.shot(path, judge)
	if !ok {
		return s, false
	}
	d, err := Difference(before, path)
	if err != nil {
		g.lastWhy = err.Error()
		return s, false
	}
	if d > maxChange {
		g.lastWhy = fmt.Sprintf("the screen was still drawing: %.1f%% of its pixels changed in %s", 100*d, settleGap)
		return s, false
	}
	return s, true
}

// shot takes a screenshot and says whether it passes judge.
func (g *guest) shot(path string, judge func(Screen) string) (Screen, bool) {
	if err := image.Screendump(g.monitor, path); err != nil {
		g.lastWhy = err.Error()
		return Screen{}, false
	}
	s, err := ReadScreen(path)
	if err != nil {
		g.lastWhy = err.Error()
		return s, false
	}
	if why := judge(s); why != "" {
		g.lastWhy = why
		return s, false
	}
	return s, true
}

// pause waits d, or less when ctx ends: an interrupted check returns at
// once, so its deferred clean-up (the VM, the work folder, the check's
// image) runs before mage's 5 s grace ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// countPackages reads the commit's package list (debian-atomic.packages).
func countPackages(ctx context.Context, cfg build.Config, commit string) int {
	v, err := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}.Metadata(ctx, commit, "debian-atomic.packages")
	if err != nil {
		return 0
	}
	return len(ostreeops.GVariantStrings(v)) / 3 // a(sss): name, version, architecture
}
