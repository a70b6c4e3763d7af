// Command debian-atomic-install runs on the installer ISO's live system, one
// instance per console (tty1 and ttyS0): the dialog on each, and whichever
// is answered first installs. With debian-atomic.install.disk=DEV on the
// kernel command line it installs onto DEV without asking. It is a static
// Go program (CGO_ENABLED=0) rather than a script: the disk rules are unit
// tested, and no shell ever sees what a person typed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/iso/installer"
)

// lockFile makes sure one instance writes: the first to get it.
const lockFile = "/run/debian-atomic-install.lock"

func main() {
	dir := flag.String("image-dir", "/usr/share/debian-atomic-installer", "folder holding install.json and the image")
	flag.Parse()
	in := bufio.NewReader(os.Stdin)
	out := io.Writer(os.Stdout)
	if err := installFlow(in, out, *dir); err != nil {
		say(out, "%v", err)
		os.Exit(1)
	}
}

func installFlow(in *bufio.Reader, out io.Writer, dir string) error {
	var img installer.Image
	data, err := os.ReadFile(filepath.Join(dir, "install.json"))
	if err == nil {
		err = json.Unmarshal(data, &img)
	}
	if err != nil {
		return fmt.Errorf("this live system holds no image to install (%s): %w", dir, err)
	}
	src := filepath.Join(dir, img.File)
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	s, err := installer.ParseCmdline(string(cmdline))
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := run.Exec{}
	if s.Disk != "" {
		if !tryLock() {
			fmt.Fprintln(out, "The unattended installation runs on another console.")
			return nil
		}
		path, err := filepath.EvalSymlinks(s.Disk)
		if err != nil {
			return fmt.Errorf("kernel argument %s=%s: %v; nothing was written", installer.ArgDisk, s.Disk, err)
		}
		say(out, "unattended installation of %s onto %s", img.Variant, path)
		r.Run(ctx, run.Cmd{Args: []string{"udevadm", "settle", "--timeout=30"}, Quiet: true})
		disks, err := list()
		if err != nil {
			return err
		}
		d, err := installer.Find(disks, path)
		if err != nil {
			return fmt.Errorf("kernel argument %s: %v; nothing was written", installer.ArgDisk, err)
		}
		if err := installer.Check(d, img.Bytes); err != nil {
			return err
		}
		if err := install(out, img, src, d); err != nil {
			return err
		}
		return then(ctx, r, out, s.Then)
	}
	for {
		disks, err := list()
		if err != nil {
			return err
		}
		d, err := installer.Choose(in, out, img, disks)
		if installer.IsRescan(err) {
			continue
		}
		if err != nil {
			fmt.Fprintln(out, err)
			fmt.Fprintln(out, "Press Enter to start again.")
			if _, rerr := in.ReadString('\n'); rerr != nil {
				return nil
			}
			continue
		}
		if !tryLock() {
			fmt.Fprintln(out, "An installation has started on another console: nothing was written here.")
			return nil
		}
		// The disks may have changed while the question was open.
		disks, err = list()
		if err != nil {
			return err
		}
		if d, err = installer.Find(disks, d.Path); err == nil {
			err = installer.Check(d, img.Bytes)
		}
		if err != nil {
			return err
		}
		if err := install(out, img, src, d); err != nil {
			return err
		}
		fmt.Fprint(out, "\nRemove the installation medium, then press Enter to restart (or type poweroff): ")
		l, _ := in.ReadString('\n')
		if len(l) >= 8 && l[:8] == "poweroff" {
			return then(ctx, r, out, "poweroff")
		}
		return then(ctx, r, out, "reboot")
	}
}

func list() ([]installer.Disk, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	sw, _ := os.ReadFile("/proc/swaps")
	return installer.ListDisks("/sys/block", installer.ParseMountinfo(string(mi)), installer.ParseSwaps(string(sw)))
}

func install(out io.Writer, img installer.Image, src string, d installer.Disk) error {
	start := time.Now()
	say(out, "writing %s (%s) onto %s (%s, %s)", img.Variant, installer.Size(img.Bytes), d.Path, installer.Size(d.Bytes), d.Model)
	err := installer.Write(src, d.Path, func(done, total int64) {
		fmt.Fprintf(out, "  %s of %s written\n", installer.Size(done), installer.Size(total))
	})
	if err != nil {
		return fmt.Errorf("writing %s failed: %w", d.Path, err)
	}
	say(out, "installed %s commit %.12s onto %s in %s; its root grows to the whole disk on first boot", img.Variant, img.Commit, d.Path, time.Since(start).Round(time.Second))
	return nil
}

func then(ctx context.Context, r run.Runner, out io.Writer, what string) error {
	switch what {
	case "stay":
		say(out, "done; the machine stays on")
		return nil
	case "reboot":
		say(out, "rebooting")
	default:
		say(out, "powering off")
	}
	_, err := r.Run(ctx, run.Cmd{Args: []string{"systemctl", what}})
	return err
}

// say prints to this console and to the kernel log, which reaches every
// console of the kernel command line (a serial console watching too).
func say(out io.Writer, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(out, msg)
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		fmt.Fprintf(f, "<5>debian-atomic-install: %s\n", msg)
		f.Close()
	}
}

var lock *os.File

func tryLock() bool {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return false
	}
	lock = f
	return true
}
