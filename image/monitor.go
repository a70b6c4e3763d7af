package image

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

var (
	displayRE = regexp.MustCompile(`^(|none|gtk|sdl|vnc=127\.0\.0\.1:[0-9]{1,2})$`)
	// Paths that reach QEMU's option parser or its monitor: no commas,
	// spaces or quotes, which either would read differently.
	monitorPathRE = regexp.MustCompile(`^/[A-Za-z0-9/._-]+$`)
)

// checkScreen validates the display options: only values this package
// makes reach QEMU.
func (o VMOptions) checkScreen() error {
	if !displayRE.MatchString(o.Display) {
		return fmt.Errorf("display %q: want none, gtk, sdl or vnc=127.0.0.1:N", o.Display)
	}
	if o.VGA != "" && o.VGA != "virtio" && o.VGA != "std" {
		return fmt.Errorf("vga %q: want virtio or std", o.VGA)
	}
	if o.Monitor != "" && !monitorPathRE.MatchString(o.Monitor) {
		return fmt.Errorf("monitor socket %q: want an absolute path of letters, digits, '/', '.', '_', '-'", o.Monitor)
	}
	return nil
}

// Monitor runs a command on QEMU's human monitor (VMOptions.Monitor) and
// returns what it printed.
func Monitor(socket, command string, timeout time.Duration) (string, error) {
	if strings.ContainsAny(command, "\r\n") {
		return "", fmt.Errorf("monitor command %q: one line only", command)
	}
	c, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return "", fmt.Errorf("QEMU monitor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	if _, err := readPrompt(r); err != nil {
		return "", fmt.Errorf("QEMU monitor: no prompt: %w", err)
	}
	if _, err := fmt.Fprintf(c, "%s\n", command); err != nil {
		return "", err
	}
	out, err := readPrompt(r)
	if err != nil {
		return out, fmt.Errorf("QEMU monitor: %s: %w", command, err)
	}
	// The monitor echoes the command with terminal escapes; keep the answer.
	out = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`).ReplaceAllString(out, "")
	if i := strings.Index(out, "\n"); i >= 0 {
		out = out[i+1:]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(out), "(qemu)")), nil
}

func readPrompt(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		b.WriteByte(c)
		if strings.HasSuffix(b.String(), "(qemu) ") {
			return b.String(), nil
		}
	}
}

// Screendump writes the guest's screen to file as PNG (QEMU 7.2 and later).
func Screendump(socket, file string) error {
	if !monitorPathRE.MatchString(file) {
		return fmt.Errorf("screenshot path %q: want an absolute path of letters, digits, '/', '.', '_', '-'", file)
	}
	out, err := Monitor(socket, "screendump "+file+" -f png", time.Minute)
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("QEMU screendump: %s", out)
	}
	return nil
}
