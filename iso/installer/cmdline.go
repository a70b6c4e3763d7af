package installer

import (
	"fmt"
	"regexp"
	"strings"
)

// Kernel arguments the installer reads (the ISO's GRUB menu may carry
// them, or a person adds them at GRUB's prompt, or PXE/automation does).
const (
	// ArgDisk makes the installation unattended: the disk to erase.
	ArgDisk = "debian-atomic.install.disk"
	// ArgThen is what follows an unattended installation: poweroff
	// (default: a machine that reboots into the ISO again would install
	// again), reboot, or stay.
	ArgThen = "debian-atomic.install.then"
)

// Settings are what the kernel command line asks of the installer.
type Settings struct {
	Disk string // "" is the interactive dialog
	Then string // poweroff, reboot, stay
}

var diskArgRE = regexp.MustCompile(`^/dev/[A-Za-z0-9/._:+-]+$`)

// ParseCmdline reads the installer's arguments from /proc/cmdline's text.
func ParseCmdline(cmdline string) (Settings, error) {
	s := Settings{Then: "poweroff"}
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case ArgDisk:
			if !diskArgRE.MatchString(v) || strings.Contains(v, "..") {
				return s, fmt.Errorf("kernel argument %s=%q: want a device path such as /dev/vda or /dev/disk/by-id/...; nothing was written", ArgDisk, v)
			}
			s.Disk = v
		case ArgThen:
			switch v {
			case "poweroff", "reboot", "stay":
				s.Then = v
			default:
				return s, fmt.Errorf("kernel argument %s=%q: want poweroff, reboot or stay; nothing was written", ArgThen, v)
			}
		}
	}
	return s, nil
}
