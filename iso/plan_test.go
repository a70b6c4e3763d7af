package iso

import (
	"strings"
	"testing"
)

func TestLabel(t *testing.T) {
	if Label("minimal") != "DEBIAN_ATOMIC_MINIMAL" {
		t.Error(Label("minimal"))
	}
	if l := Label("a-very-long-variant-name-here"); l != "DEBIAN_ATOMIC_A_VERY_LONG_VARIAN" || len(l) != 32 {
		t.Error(l)
	}
}

func TestGrubConfig(t *testing.T) {
	cfg := GrubConfig("Install Debian Atomic minimal", KernelArgs(Label("minimal"), []string{"debian-atomic.install.disk=/dev/vda"}))
	for _, want := range []string{
		"terminal_output console serial\n",
		"menuentry 'Install Debian Atomic minimal' {\n",
		"  linux /live/vmlinuz root=live:CDLABEL=DEBIAN_ATOMIC_MINIMAL rd.live.image rd.live.overlay.overlayfs=1 console=tty0 console=ttyS0,115200n8 systemd.show_status=auto debian-atomic.install.disk=/dev/vda\n",
		"  initrd /live/initrd.img\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(GrubConfig("it's", nil), "it's") {
		t.Error("a quote reached GRUB's menuentry title")
	}
}

func TestCheckKernelArgs(t *testing.T) {
	if err := CheckKernelArgs([]string{"debian-atomic.install.disk=/dev/disk/by-id/ata-X_Y-Z", "quiet"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"a b", "x;reboot", "$root", `"q"`, "a\nb", ""} {
		if err := CheckKernelArgs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestXorrisoArgs(t *testing.T) {
	got := strings.Join(XorrisoArgs("/o/m.iso", "DEBIAN_ATOMIC_MINIMAL", "/w/efi.img", "/w/stage"), " ")
	want := "xorriso -as mkisofs -o /o/m.iso -V DEBIAN_ATOMIC_MINIMAL -r -J -joliet-long -iso-level 3 -partition_offset 16 " +
		"-append_partition 2 0xef /w/efi.img -appended_part_as_gpt -e --interval:appended_partition_2:all:: -no-emul-boot /w/stage"
	if got != want {
		t.Errorf("xorriso:\n got %s\nwant %s", got, want)
	}
}

func TestPlanPieces(t *testing.T) {
	if strings.Join(DracutArgs("6.12.57+deb13-amd64", "/tmp/i.img"), " ") != "dracut --force --no-hostonly --reproducible --compress zstd -q -3 -T0 --add dmsquash-live --omit ostree --kver 6.12.57+deb13-amd64 /tmp/i.img" {
		t.Error(DracutArgs("k", "o"))
	}
	links := LiveLinks()
	if links["multi-user.target.wants/debian-atomic-installer@ttyS0.service"] != "../debian-atomic-installer@.service" ||
		links["multi-user.target.wants/debian-atomic-installer@tty1.service"] == "" || links["getty@tty1.service"] != "/dev/null" || links["systemd-firstboot.service"] != "/dev/null" {
		t.Errorf("links %v", links)
	}
	if ESPKiB(3<<20) != 4096 || ESPKiB(0) != 1024 {
		t.Error(ESPKiB(3<<20), ESPKiB(0))
	}
	// shim first as the removable-media loader, GRUB where shim looks.
	if ESPFiles[0].Dst != "EFI/BOOT/BOOTX64.EFI" || ESPFiles[1].Src != "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" || ESPFiles[1].Dst != "EFI/BOOT/grubx64.efi" {
		t.Errorf("%v", ESPFiles)
	}
}
