// Package installer is the installer that runs on the ISO's live system:
// it lists the machine's disks, refuses those in use, asks (or reads the
// kernel command line) which one to erase, and writes the variant's disk
// image onto it. The image grows its root to the disk on first boot.
package installer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/debian-atomic/builder/mountinfo"
)

// Disk is a whole disk the image could be written to.
type Disk struct {
	Name      string // vda
	Path      string // /dev/vda
	Dev       string // major:minor
	Bytes     int64
	Model     string
	Removable bool
	// InUse says why the disk may not be erased: its mounted filesystems,
	// active swap and device-mapper holders. Empty when it is free.
	InUse []string
}

// notDisks are /sys/block entries that are never install targets: memory
// and loop devices, optical drives, device-mapper and RAID assemblies.
var notDisks = []string{"loop", "ram", "zram", "sr", "dm-", "md", "fd", "nbd", "mtdblock"}

// Mount is one line of /proc/self/mountinfo.
type Mount struct{ Dev, Source, Target string }

// ParseMountinfo reads the device numbers, sources and mount points of
// /proc/self/mountinfo.
func ParseMountinfo(text string) []Mount {
	var out []Mount
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		m := Mount{Dev: f[2], Target: mountinfo.Unescape(f[4])}
		for i, x := range f {
			if x == "-" && i+2 < len(f) {
				m.Source = mountinfo.Unescape(f[i+2])
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// ParseSwaps lists the device paths of /proc/swaps.
func ParseSwaps(text string) []string {
	var out []string
	for i, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) == 0 || !strings.HasPrefix(f[0], "/dev/") {
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// ListDisks reads the whole disks under sysBlock (/sys/block) and marks
// each one in use when a mount, a swap area or a device-mapper device sits
// on it or on one of its partitions.
func ListDisks(sysBlock string, mounts []Mount, swaps []string) ([]Disk, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("listing disks: %w", err)
	}
	var disks []Disk
	for _, e := range entries {
		name := e.Name()
		if skipDisk(name) {
			continue
		}
		dir := filepath.Join(sysBlock, name)
		d := Disk{Name: name, Path: "/dev/" + name, Dev: readTrim(dir, "dev"), Model: model(dir), Removable: readTrim(dir, "removable") == "1"}
		sectors, _ := strconv.ParseInt(readTrim(dir, "size"), 10, 64)
		d.Bytes = sectors * 512 // /sys/block sizes are in 512-byte units, whatever the sector size
		if d.Bytes == 0 {
			continue // an empty card reader, a drive without a medium
		}
		// The disk and its partitions, by device number and name.
		parts := map[string]string{d.Dev: name}
		holders := holderNames(dir)
		sub, _ := os.ReadDir(dir)
		for _, s := range sub {
			if _, err := os.Stat(filepath.Join(dir, s.Name(), "partition")); err == nil {
				parts[readTrim(dir, s.Name(), "dev")] = s.Name()
				holders = append(holders, holderNames(filepath.Join(dir, s.Name()))...)
			}
		}
		// One line per mounted partition: where it is mounted first, and
		// how many more mount points it has (bind mounts multiply them).
		first, more := map[string]string{}, map[string]int{}
		var order []string
		for _, m := range mounts {
			p, ok := parts[m.Dev]
			if !ok {
				continue
			}
			if _, seen := first[p]; seen {
				more[p]++
				continue
			}
			first[p] = m.Target
			order = append(order, p)
		}
		for _, p := range order {
			line := fmt.Sprintf("/dev/%s is mounted on %s", p, first[p])
			if more[p] > 0 {
				line += fmt.Sprintf(" (and %d more)", more[p])
			}
			d.InUse = append(d.InUse, line)
		}
		for _, s := range swaps {
			for _, p := range parts {
				if s == "/dev/"+p {
					d.InUse = append(d.InUse, s+" is active swap")
				}
			}
		}
		for _, h := range holders {
			d.InUse = append(d.InUse, "/dev/"+h+" (device mapper or RAID) is built on it")
		}
		sort.Strings(d.InUse)
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

func skipDisk(name string) bool {
	for _, p := range notDisks {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	// eMMC boot areas and replay-protected blocks are not where systems go.
	return strings.HasPrefix(name, "mmcblk") && (strings.Contains(name, "boot") || strings.Contains(name, "rpmb"))
}

func holderNames(dir string) []string {
	var out []string
	hs, _ := os.ReadDir(filepath.Join(dir, "holders"))
	for _, h := range hs {
		out = append(out, h.Name())
	}
	return out
}

// model names the disk as its vendor and model, else by its bus.
func model(dir string) string {
	vendor, mdl := readTrim(dir, "device", "vendor"), readTrim(dir, "device", "model")
	if strings.HasPrefix(vendor, "0x") { // a PCI vendor number (virtio's 0x1af4), not a name
		vendor = ""
	}
	m := strings.TrimSpace(vendor + " " + mdl)
	if m != "" {
		return strings.Join(strings.Fields(m), " ")
	}
	if strings.HasPrefix(filepath.Base(dir), "vd") {
		return "virtio disk"
	}
	return "unknown model"
}

func readTrim(parts ...string) string {
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Size is a byte count for people: 20.0 GiB.
func Size(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
}

// Check says whether the image (of imageBytes) may be written to d: not
// in use, and big enough. The error is the one message a person reads.
func Check(d Disk, imageBytes int64) error {
	if len(d.InUse) > 0 {
		return fmt.Errorf("%s holds mounted or active storage (%s): it is not erased; choose another disk, or unmount it first", d.Path, strings.Join(d.InUse, "; "))
	}
	if d.Bytes < imageBytes {
		return fmt.Errorf("%s has %s; the image needs %s: choose a bigger disk", d.Path, Size(d.Bytes), Size(imageBytes))
	}
	return nil
}

// Find returns the listed disk that path names (/dev/vda, or a link to it
// such as /dev/disk/by-id/...; resolve links before).
func Find(disks []Disk, path string) (Disk, error) {
	for _, d := range disks {
		if d.Path == path {
			return d, nil
		}
	}
	var names []string
	for _, d := range disks {
		names = append(names, d.Path)
	}
	if len(names) == 0 {
		return Disk{}, fmt.Errorf("%s is not a disk of this machine: it has no disk", path)
	}
	return Disk{}, fmt.Errorf("%s is not a whole disk of this machine; its disks: %s", path, strings.Join(names, ", "))
}

// readLines is a line reader that treats a closed input as "quit".
func readLine(r *bufio.Reader) (string, bool) {
	l, err := r.ReadString('\n')
	if err != nil && l == "" {
		return "", false
	}
	return strings.TrimSpace(strings.TrimRight(l, "\r\n")), true
}
