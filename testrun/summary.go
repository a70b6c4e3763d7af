// Package testrun runs the project's tests for `mage test`: it reads
// `go test -json`, prints what a person needs (package results, the
// output of failed tests, everything with -v) and ends with one line per
// skipped test and why, so a run that silently left out the boot or lock
// tests says so.
package testrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/debian-atomic/builder/build"
)

// Requirements are the host tools the tests use, installed the way builds
// install theirs (apt-get --no-install-recommends, logged); .ci/run lists
// the same packages.
var Requirements = []build.Requirement{
	{Name: "mmdebstrap", Package: "mmdebstrap"},
	{Name: "debootstrap", Package: "debootstrap"},
	{Name: "ostree", Package: "ostree"},
	{Name: "/usr/share/keyrings/debian-archive-keyring.gpg", Package: "debian-archive-keyring"},
	{Name: "apt-ftparchive", Package: "apt-utils"},
	{Name: "mkfs.ext4", Package: "e2fsprogs"},
	{Name: "gpg", Package: "gnupg"},
	{Name: "nc.openbsd", Package: "netcat-openbsd"},
	{Name: "qemu-system-x86_64", Package: "qemu-system-x86"},
	{Name: "qemu-img", Package: "qemu-utils"},
	{Name: "/usr/share/OVMF/OVMF_CODE_4M.fd", Package: "ovmf"},
	{Name: "mcopy", Package: "mtools"},
	{Name: "mkfs.vfat", Package: "dosfstools"},
	{Name: "sfdisk", Package: "fdisk"},
	{Name: "grub-mkimage", Package: "grub-common"},
	{Name: "/usr/lib/grub/x86_64-efi/linux.mod", Package: "grub-efi-amd64-bin"},
	{Name: "xorriso", Package: "xorriso"},           // the installer ISO (iso/)
	{Name: "mksquashfs", Package: "squashfs-tools"}, // the ISO's live system
}

// Skip is one skipped test and the message it gave.
type Skip struct {
	Package, Test, Reason string
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// logLine is a t.Log/t.Skip line as go test prints it: "    file.go:12: text".
var logLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

// Follow reads `go test -json` from r, writes the human output to w, and
// returns the skipped tests and whether anything failed.
func Follow(r io.Reader, w io.Writer, verbose bool) (skips []Skip, failed bool, err error) {
	outputs := map[string][]string{} // package/test -> its output lines
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // build errors come as plain text
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "output":
			if verbose || e.Test == "" {
				io.WriteString(w, e.Output)
			} else {
				outputs[key] = append(outputs[key], e.Output)
			}
			if e.Test != "" && verbose {
				outputs[key] = append(outputs[key], e.Output)
			}
		case "skip":
			if e.Test != "" {
				skips = append(skips, Skip{Package: e.Package, Test: e.Test, Reason: reason(outputs[key])})
			}
			delete(outputs, key)
		case "fail":
			failed = true
			if !verbose && e.Test != "" {
				io.WriteString(w, strings.Join(outputs[key], ""))
			}
			delete(outputs, key)
		case "pass":
			delete(outputs, key)
		}
	}
	sort.SliceStable(skips, func(i, j int) bool { return skips[i].Package < skips[j].Package })
	return skips, failed, sc.Err()
}

// reason is the last logged line of a skipped test: t.Skip's message.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if m := logLine.FindStringSubmatch(strings.TrimRight(lines[i], "\n")); m != nil {
			return m[1]
		}
	}
	return "(no reason given)"
}

// WriteSkips prints one line per skipped test, or nothing.
func WriteSkips(w io.Writer, skips []Skip) {
	if len(skips) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d test(s) skipped:\n", len(skips))
	for _, s := range skips {
		fmt.Fprintf(w, "SKIP %s %s: %s\n", strings.TrimPrefix(s.Package, "github.com/debian-atomic/builder/"), s.Test, s.Reason)
	}
}
