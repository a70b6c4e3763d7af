package image

import (
	"os"
	"path/filepath"
)

// gnomeShellStart gives GNOME Shell's user unit more time to start than
// the user manager's default 90 s. Measured under QEMU/TCG with software
// rendering (llvmpipe), the session's gnome-shell was not ready in 90 s:
// systemd killed it ("start operation timed out"), the session failed and
// GDM started it again, in a loop. Machines without a GPU driver are slow
// the same way; a shell that is merely slow must not be killed.
const gnomeShellStart = `# Made by debian-atomic: gnome-shell with software rendering can take
# minutes to start; the default 90 s kills it and the session fails.
[Service]
TimeoutStartSec=10min
`

// writeDesktopSettings adds what desktops need on slow displays to the
// deployment's /etc; it does nothing for a commit without GNOME Shell.
func writeDesktopSettings(deploy string) (bool, error) {
	wrote := false
	for _, unit := range []string{"org.gnome.Shell@wayland.service", "org.gnome.Shell@x11.service"} {
		if _, err := os.Stat(filepath.Join(deploy, "usr/lib/systemd/user", unit)); err != nil {
			continue
		}
		dir := filepath.Join(deploy, "etc/systemd/user", unit+".d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return wrote, err
		}
		if err := os.WriteFile(filepath.Join(dir, "50-debian-atomic-start-timeout.conf"), []byte(gnomeShellStart), 0o644); err != nil {
			return wrote, err
		}
		wrote = true
	}
	return wrote, nil
}
