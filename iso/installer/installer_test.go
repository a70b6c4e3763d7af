package installer

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSys writes a /sys/block with: vda (a blank virtio disk), sda (a USB
// stick whose first partition is mounted: the live medium), nvme0n1 (a
// partition under LVM), sdb (swap), sr0 and loop0 (never listed), sdc (a
// card reader without a card).
func fakeSys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	put := func(p, v string) {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("vda/dev", "252:0")
	put("vda/size", "41943040") // 20 GiB
	put("vda/removable", "0")
	put("vda/device/vendor", "0x1af4")
	put("sda/dev", "8:0")
	put("sda/size", "31260672")
	put("sda/removable", "1")
	put("sda/device/vendor", "SanDisk ")
	put("sda/device/model", "Ultra   Fit")
	put("sda/sda1/partition", "1")
	put("sda/sda1/dev", "8:1")
	put("nvme0n1/dev", "259:0")
	put("nvme0n1/size", "1000215216")
	put("nvme0n1/device/model", "Samsung SSD 970")
	put("nvme0n1/nvme0n1p1/partition", "1")
	put("nvme0n1/nvme0n1p1/dev", "259:1")
	os.MkdirAll(filepath.Join(dir, "nvme0n1/nvme0n1p1/holders/dm-0"), 0o755)
	put("sdb/dev", "8:16")
	put("sdb/size", "8388608")
	put("sdb/sdb2/partition", "2")
	put("sdb/sdb2/dev", "8:18")
	put("sdc/dev", "8:32")
	put("sdc/size", "0")
	put("sr0/dev", "11:0")
	put("sr0/size", "2000000")
	put("loop0/dev", "7:0")
	put("loop0/size", "2000000")
	return dir
}

const mountinfoText = `22 1 0:21 / / rw,relatime shared:1 - overlay LiveOS_rootfs rw,lowerdir=/run/rootfsbase
29 22 8:1 / /run/initramfs/live ro,relatime shared:2 - iso9660 /dev/sda1 ro
31 22 0:5 / /dev rw,nosuid shared:3 - devtmpfs devtmpfs rw
32 22 8:1 / /mnt/my\040stick ro,relatime shared:2 - iso9660 /dev/sda1 ro
`

const swaps = `Filename				Type		Size		Used		Priority
/dev/sdb2                               partition	4194300		0		-2
`

func TestListDisks(t *testing.T) {
	disks, err := ListDisks(fakeSys(t), ParseMountinfo(mountinfoText), ParseSwaps(swaps))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range disks {
		names = append(names, d.Name)
	}
	if strings.Join(names, " ") != "nvme0n1 sda sdb vda" {
		t.Fatalf("disks %v, want nvme0n1 sda sdb vda (no sr0, loop0, empty sdc)", names)
	}
	byName := map[string]Disk{}
	for _, d := range disks {
		byName[d.Name] = d
	}
	vda := byName["vda"]
	if vda.Bytes != 20<<30 || vda.Model != "virtio disk" || len(vda.InUse) != 0 || vda.Path != "/dev/vda" {
		t.Errorf("vda: %+v", vda)
	}
	sda := byName["sda"]
	if sda.Model != "SanDisk Ultra Fit" || !sda.Removable {
		t.Errorf("sda: %+v", sda)
	}
	if got := strings.Join(sda.InUse, "|"); got != "/dev/sda1 is mounted on /run/initramfs/live (and 1 more)" {
		t.Errorf("sda in use: %q", got)
	}
	if got := strings.Join(byName["nvme0n1"].InUse, "|"); !strings.Contains(got, "/dev/dm-0") {
		t.Errorf("nvme0n1 with an LVM holder not in use: %q", got)
	}
	if got := strings.Join(byName["sdb"].InUse, "|"); got != "/dev/sdb2 is active swap" {
		t.Errorf("sdb in use: %q", got)
	}
}

func TestCheckRefuses(t *testing.T) {
	disks, _ := ListDisks(fakeSys(t), ParseMountinfo(mountinfoText), ParseSwaps(swaps))
	sda, _ := Find(disks, "/dev/sda")
	err := Check(sda, 4<<30)
	if err == nil || !strings.HasPrefix(err.Error(), "/dev/sda holds mounted or active storage (/dev/sda1 is mounted on") || !strings.Contains(err.Error(), "choose another disk") {
		t.Errorf("mounted disk: %v", err)
	}
	sdb, _ := Find(disks, "/dev/sdb")
	if err := Check(sdb, 1<<30); err == nil || !strings.Contains(err.Error(), "active swap") {
		t.Errorf("swap disk: %v", err)
	}
	vda, _ := Find(disks, "/dev/vda")
	if err := Check(vda, 4<<30); err != nil {
		t.Errorf("free disk refused: %v", err)
	}
	if err := Check(vda, 30<<30); err == nil || err.Error() != "/dev/vda has 20.0 GiB; the image needs 30.0 GiB: choose a bigger disk" {
		t.Errorf("small disk: %v", err)
	}
	if _, err := Find(disks, "/dev/vda1"); err == nil || !strings.Contains(err.Error(), "is not a whole disk of this machine; its disks: /dev/nvme0n1, /dev/sda, /dev/sdb, /dev/vda") {
		t.Errorf("partition as a disk: %v", err)
	}
}

func TestChooseDialog(t *testing.T) {
	disks, _ := ListDisks(fakeSys(t), ParseMountinfo(mountinfoText), ParseSwaps(swaps))
	img := Image{Variant: "minimal", Commit: "0123456789abcdef", Bytes: 4 << 30}
	// 9: out of range; 2: sda, mounted; 4: vda, not confirmed; 4 again, yes.
	in := bufio.NewReader(strings.NewReader("9\n2\n4\nno\n4\nyes\n"))
	var out bytes.Buffer
	d, err := Choose(in, &out, img, disks)
	if err != nil || d.Path != "/dev/vda" {
		t.Fatalf("chose %v, %v\n%s", d.Path, err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"  4) /dev/vda         20.0 GiB  virtio disk\n",
		"  2) /dev/sda         14.9 GiB  SanDisk Ultra Fit  (removable)  (in use: /dev/sda1 is mounted on /run/initramfs/live (and 1 more))\n",
		`"9" is not one of the numbers 1-4.`,
		"/dev/sda holds mounted or active storage",
		"Everything on /dev/vda (20.0 GiB, virtio disk) will be erased.",
		"Not confirmed: nothing was written.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dialog lacks %q:\n%s", want, text)
		}
	}
	if _, err := Choose(bufio.NewReader(strings.NewReader("q\n")), &out, img, disks); err != ErrQuit {
		t.Errorf("q: %v", err)
	}
	if _, err := Choose(bufio.NewReader(strings.NewReader("")), &out, img, disks); err != ErrQuit {
		t.Errorf("closed console: %v", err)
	}
	if _, err := Choose(bufio.NewReader(strings.NewReader("r\n")), &out, img, disks); !IsRescan(err) {
		t.Errorf("r: %v", err)
	}
}

func TestParseCmdline(t *testing.T) {
	s, err := ParseCmdline("BOOT_IMAGE=/live/vmlinuz root=live:CDLABEL=X debian-atomic.install.disk=/dev/vda quiet\n")
	if err != nil || s.Disk != "/dev/vda" || s.Then != "poweroff" {
		t.Errorf("%+v %v", s, err)
	}
	s, err = ParseCmdline("debian-atomic.install.disk=/dev/disk/by-id/nvme-Samsung_SSD_970-part0 debian-atomic.install.then=reboot")
	if err != nil || s.Disk != "/dev/disk/by-id/nvme-Samsung_SSD_970-part0" || s.Then != "reboot" {
		t.Errorf("%+v %v", s, err)
	}
	if s, err := ParseCmdline("root=live:CDLABEL=X"); err != nil || s.Disk != "" {
		t.Errorf("interactive: %+v %v", s, err)
	}
	for _, bad := range []string{"debian-atomic.install.disk=vda", "debian-atomic.install.disk=/dev/../etc/passwd", "debian-atomic.install.disk=/dev/vda;reboot", "debian-atomic.install.then=halt"} {
		if _, err := ParseCmdline(bad); err == nil || !strings.Contains(err.Error(), "nothing was written") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "image.raw"), filepath.Join(dir, "disk")
	// An image of 10 MiB: data, 5 MiB of zeros, data at the end.
	img := make([]byte, 10<<20)
	copy(img, "GPT header")
	copy(img[9<<20:], "filesystem")
	os.WriteFile(src, img, 0o644)
	// The disk: 16 MiB of old data, an old backup GPT at its end.
	old := bytes.Repeat([]byte{0xAA}, 16<<20)
	os.WriteFile(dst, old, 0o644)
	var last int64
	if err := Write(src, dst, func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got[:10<<20], img) {
		t.Error("the disk does not start with the image (old data shows through its zeros?)")
	}
	if !bytes.Equal(got[10<<20:15<<20], old[:5<<20]) {
		t.Error("the disk beyond the image changed before its last MiB")
	}
	if !allZero(got[15<<20:]) {
		t.Error("the disk's last MiB (an old backup GPT) is not cleared")
	}
	if last != 10<<20 {
		t.Errorf("progress ended at %d", last)
	}
	small := filepath.Join(dir, "small")
	os.WriteFile(small, make([]byte, 1<<20), 0o644)
	if err := Write(src, small, nil); err == nil || err.Error() != small+" has 1 MiB; the image needs 10 MiB: nothing was written" {
		t.Errorf("small disk: %v", err)
	}
}

func TestSize(t *testing.T) {
	if Size(20<<30) != "20.0 GiB" || Size(512<<20) != "512 MiB" || Size(2<<40) != "2.0 TiB" {
		t.Error(Size(20<<30), Size(512<<20), Size(2<<40))
	}
}
