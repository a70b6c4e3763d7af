// Package iso writes an installer ISO for a variant: a hybrid image (an
// optical disc and a USB disk at once) that boots with UEFI, Secure Boot
// included, through Debian's signed shim and signed CD GRUB (gcdx64.efi),
// into a live system built by this builder from the installer variant,
// which writes the variant's disk image onto a disk (package
// iso/installer). This file is the plan: names, texts and argument
// vectors, without running anything.
package iso

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/debian-atomic/builder/build"
)

// Paths on the ISO and in the live tree.
const (
	// infoFile is what Debian's gcdx64.efi searches for to find the ISO's
	// filesystem (its built-in configuration: search --file /.disk/info),
	// then it reads /boot/grub/grub.cfg there.
	infoFile    = ".disk/info"
	grubCfg     = "boot/grub/grub.cfg"
	kernelFile  = "live/vmlinuz"
	initrdFile  = "live/initrd.img"
	squashFile  = "LiveOS/squashfs.img" // where dracut's dmsquash-live looks (rd.live.dir, rd.live.squashimg)
	ImageDir    = "usr/share/debian-atomic-installer"
	installUnit = "debian-atomic-installer@.service"
	// InstallerBin is the installer program in the live tree.
	InstallerBin = "usr/bin/debian-atomic-install"
)

// Debian's signed boot chain in the live tree (shim-signed,
// grub-efi-amd64-signed): shim loads grubx64.efi from its own folder, and
// for removable media that is Debian's CD/USB GRUB.
const (
	shimSigned = "usr/lib/shim/shimx64.efi.signed"
	mokSigned  = "usr/lib/shim/mmx64.efi.signed"
	gcdSigned  = "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"
)

// ESPFile is one file of the El Torito EFI image.
type ESPFile struct{ Src, Dst string }

// ESPFiles are the boot files the ISO's EFI image takes from the live tree.
var ESPFiles = []ESPFile{
	{shimSigned, "EFI/BOOT/BOOTX64.EFI"},
	{gcdSigned, "EFI/BOOT/grubx64.efi"},
	{mokSigned, "EFI/BOOT/mmx64.efi"},
}

// Label is the ISO's volume label for a variant; the live initramfs finds
// the medium by it (root=live:CDLABEL=...). ISO 9660 allows 32 characters
// of A-Z, 0-9 and _.
func Label(variant string) string {
	l := "DEBIAN_ATOMIC_" + strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(variant, "_"))
	if len(l) > 32 {
		l = l[:32]
	}
	return l
}

// KernelArgs boot the live system: the squashfs root from the medium with
// a writable overlay in memory, messages on the screen and the first
// serial port (the installer runs on both).
func KernelArgs(label string, extra []string) []string {
	args := []string{"root=live:CDLABEL=" + label, "rd.live.image", "rd.live.overlay.overlayfs=1",
		"console=tty0", "console=ttyS0,115200n8", "systemd.show_status=auto"}
	return append(args, extra...)
}

// kernelArgRE is what a kernel argument may hold on GRUB's command line:
// no quotes, spaces, semicolons or dollars, which GRUB's parser would read.
var kernelArgRE = regexp.MustCompile(`^[A-Za-z0-9._,:=/+@-]+$`)

// CheckKernelArgs refuses arguments that would not reach the kernel as written.
func CheckKernelArgs(args []string) error {
	for _, a := range args {
		if !kernelArgRE.MatchString(a) {
			return fmt.Errorf("kernel argument %q: only letters, digits and . _ , : = / + @ - may appear", a)
		}
	}
	return nil
}

// GrubConfig is the ISO's /boot/grub/grub.cfg: one entry that starts the
// installer, on the screen and the serial console.
func GrubConfig(title string, args []string) string {
	return fmt.Sprintf(`# Made by debian-atomic: the installer ISO's menu.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=5
set default=0
menuentry '%s' {
  linux /%s %s
  initrd /%s
}
`, strings.ReplaceAll(title, "'", ""), kernelFile, strings.Join(args, " "), initrdFile)
}

// DracutArgs make the live initramfs inside the live tree (chroot):
// dmsquash-live (trixie's dracut-live) mounts the squashfs under an
// overlay; ostree's module is left out, the live root is no deployment.
func DracutArgs(kver, out string) []string {
	return []string{"dracut", "--force", "--no-hostonly", "--reproducible", "--compress", build.DracutCompress, "--add", "dmsquash-live",
		"--omit", "ostree", "--kver", kver, out}
}

// SquashfsArgs compress the live tree, the disk image inside it. zstd at
// level 15 (mksquashfs's default for zstd): the kernel reads it fast, and
// the disk image's empty blocks cost nothing.
func SquashfsArgs(tree, out string) []string {
	return []string{"mksquashfs", tree, out, "-noappend", "-comp", "zstd", "-Xcompression-level", "15", "-no-progress", "-quiet"}
}

// XorrisoArgs write a hybrid ISO: ISO 9660 for optical media, and a GPT
// (with -partition_offset, a partition holding the ISO filesystem) whose
// second partition is the EFI system partition, which is also El Torito's
// EFI boot image, for USB sticks.
func XorrisoArgs(out, label, efiImg, stage string) []string {
	return []string{"xorriso", "-as", "mkisofs", "-o", out, "-V", label,
		"-r", "-J", "-joliet-long", "-iso-level", "3", "-partition_offset", "16",
		"-append_partition", "2", "0xef", efiImg, "-appended_part_as_gpt",
		"-e", "--interval:appended_partition_2:all::", "-no-emul-boot", stage}
}

// ESPKiB is the EFI image's size for files of total bytes: FAT with room
// for its tables.
func ESPKiB(total int64) int64 {
	kib := total/1024 + 1024
	return (kib + 1023) / 1024 * 1024
}

// unitText is the installer's service, one instance per console.
const unitText = `# Made by debian-atomic: the installer on console %I.
[Unit]
Description=Debian Atomic installer on %I
After=systemd-user-sessions.service systemd-udev-settle.service
Conflicts=getty@%i.service serial-getty@%i.service
Before=getty@%i.service serial-getty@%i.service

[Service]
ExecStart=/usr/bin/debian-atomic-install
StandardInput=tty-force
StandardOutput=tty
StandardError=tty
TTYPath=/dev/%I
TTYReset=yes
TTYVHangup=yes
Environment=TERM=linux

[Install]
WantedBy=multi-user.target
`

// Consoles are where the installer runs: the screen and the first serial port.
var Consoles = []string{"tty1", "ttyS0"}

// LiveLinks are symbolic links the live tree gets in /etc/systemd/system:
// the installer's instances enabled, the consoles' gettys and
// systemd-firstboot masked.
func LiveLinks() map[string]string {
	links := map[string]string{}
	for _, c := range Consoles {
		links[path.Join("multi-user.target.wants", "debian-atomic-installer@"+c+".service")] = "../" + installUnit
	}
	links["getty@tty1.service"] = "/dev/null"
	links["serial-getty@ttyS0.service"] = "/dev/null"
	// It would prompt on the console the installer runs on (an empty
	// machine-id is a first boot).
	links["systemd-firstboot.service"] = "/dev/null"
	return links
}

// infoText is /.disk/info, as Debian's media carry it.
func infoText(variant, commit string) string {
	return fmt.Sprintf("Debian Atomic %s installer (commit %.12s)\n", variant, commit)
}
