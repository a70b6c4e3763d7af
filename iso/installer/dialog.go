package installer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Image describes what the ISO installs (install.json beside the image).
type Image struct {
	Variant string `json:"variant"`
	Commit  string `json:"commit"`
	Version string `json:"version,omitempty"`
	File    string `json:"file"`  // the raw disk image, relative to install.json
	Bytes   int64  `json:"bytes"` // its size: the smallest disk it fits
}

// ErrQuit is a person's "q", or the console closing.
var ErrQuit = errors.New("installation cancelled: nothing was written")

// Choose is the terminal dialog: it lists the disks with size and model,
// asks which one, and asks for a typed "yes" before anything is erased.
// A disk in use or too small is refused with its reason, and asked again.
func Choose(in *bufio.Reader, out io.Writer, img Image, disks []Disk) (Disk, error) {
	fmt.Fprintf(out, "\nDebian Atomic installer: %s %s (commit %.12s), a %s disk image\n", img.Variant, img.Version, img.Commit, Size(img.Bytes))
	for {
		if len(disks) == 0 {
			fmt.Fprintln(out, "\nThis machine has no disk to install to. Press Enter to look again, or q to quit.")
			l, ok := readLine(in)
			if !ok || l == "q" {
				return Disk{}, ErrQuit
			}
			return Disk{}, errRescan
		}
		fmt.Fprintln(out, "\nDisks:")
		for i, d := range disks {
			fmt.Fprintf(out, "  %d) %s\n", i+1, Describe(d))
		}
		fmt.Fprintf(out, "\nInstall to which disk? Type its number (1-%d), r to look again, q to quit: ", len(disks))
		l, ok := readLine(in)
		if !ok || l == "q" {
			return Disk{}, ErrQuit
		}
		if l == "r" {
			return Disk{}, errRescan
		}
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > len(disks) {
			fmt.Fprintf(out, "%q is not one of the numbers 1-%d.\n", l, len(disks))
			continue
		}
		d := disks[n-1]
		if err := Check(d, img.Bytes); err != nil {
			fmt.Fprintln(out, err)
			continue
		}
		fmt.Fprintf(out, "\nEverything on %s (%s, %s) will be erased.\nType yes to install, anything else to choose again: ", d.Path, Size(d.Bytes), d.Model)
		l, ok = readLine(in)
		if !ok {
			return Disk{}, ErrQuit
		}
		if l == "yes" {
			return d, nil
		}
		fmt.Fprintln(out, "Not confirmed: nothing was written.")
	}
}

// errRescan asks the caller to list the disks again (a stick plugged in).
var errRescan = errors.New("rescan")

// IsRescan says the dialog wants the disks listed again.
func IsRescan(err error) bool { return errors.Is(err, errRescan) }

// Describe is one line of the disk list.
func Describe(d Disk) string {
	s := fmt.Sprintf("%-14s %10s  %s", d.Path, Size(d.Bytes), d.Model)
	if d.Removable {
		s += "  (removable)"
	}
	if len(d.InUse) > 0 {
		s += "  (in use: " + strings.Join(d.InUse, "; ") + ")"
	}
	return s
}
