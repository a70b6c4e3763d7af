package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/debian-atomic/builder/build/run"
)

// Debian's signed boot chain as the tree carries it (shim-signed,
// shim-helpers-amd64-signed, grub-efi-amd64-signed). The image copies these
// files from the deployment, so their versions are the locked ones.
const (
	shimSigned = "usr/lib/shim/shimx64.efi.signed"
	mokSigned  = "usr/lib/shim/mmx64.efi.signed"
	grubSigned = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
)

// espFile is one file of the ESP: where it comes from in the deployment
// and where it goes.
type espFile struct{ src, dst string }

// signedChain lists the ESP's boot files taken from the deployment: shim as
// the removable-media path firmware boots without a boot entry, MokManager
// and GRUB beside it (shim loads \EFI\BOOT\grubx64.efi from its own folder).
// No fbx64.efi: shim's fallback would write boot entries for a disk that
// may be copied to other machines. nil when the tree lacks the packages.
func signedChain(deploy string) []espFile {
	files := []espFile{
		{grubSigned, "EFI/BOOT/grubx64.efi"},
		{mokSigned, "EFI/BOOT/mmx64.efi"},
		{shimSigned, "EFI/BOOT/BOOTX64.EFI"},
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(deploy, f.src)); err != nil {
			return nil
		}
	}
	return files
}

// espGrubCfg is where Debian's signed grubx64.efi reads its configuration:
// its embedded prefix is /EFI/debian on the device it was loaded from. It
// holds the same configuration as the unsigned GRUB's embedded one.
const espGrubCfg = "EFI/debian/grub.cfg"

// UpdateESPService copies the booted deployment's signed shim and GRUB
// onto the ESP when the deployment carries newer versions than the ESP has.
const UpdateESPService = "debian-atomic-update-esp.service"

// updateESPScript is the machine's own command for it (also run by hand:
// `sudo /etc/debian-atomic/update-esp`). It runs after a deployment booted
// with the loader already on the ESP, so a new loader is installed only
// from a system known to boot; it never installs an older version than
// the ESP has (a rollback keeps the newer loader, which boots older
// kernels; an older shim could be refused by the firmware's SBAT level).
// GRUB goes first: a newer shim may refuse an older GRUB, not the reverse.
const updateESPScript = `#!/bin/sh
# Made by debian-atomic: copies the booted deployment's signed shim and GRUB
# onto the EFI system partition when they are newer than the ones there.
set -eu
esp=/dev/disk/by-partlabel/EFI
[ -b "$esp" ] || { echo "no EFI system partition labelled EFI"; exit 0; }
[ -e /usr/lib/shim/shimx64.efi.signed ] && [ -e /usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed ] || { echo "this deployment has no signed shim and GRUB"; exit 0; }
new=$(echo $(dpkg-query -W -f='${Version}\n' shim-signed grub-efi-amd64-signed))
mnt=$(mktemp -d)
mount -t vfat -o umask=0077 "$esp" "$mnt"
trap 'umount "$mnt"; rmdir "$mnt"' EXIT
stamp="$mnt/EFI/debian/versions"
old=$(cat "$stamp" 2>/dev/null || true)
newer() { # two version lists (same packages, same order): one newer, none older?
	set -- $1 $2
	[ $# -eq 4 ] || return 0
	dpkg --compare-versions "$1" ge "$3" && dpkg --compare-versions "$2" ge "$4" && [ "$1 $2" != "$3 $4" ]
}
if [ -n "$old" ] && ! newer "$new" "$old"; then
	echo "the ESP has shim and GRUB $old; this deployment has $new: nothing to do"
	exit 0
fi
put() {
	cmp -s "$1" "$mnt/$2" && return 0
	cp "$1" "$mnt/$2.new" && sync && mv "$mnt/$2.new" "$mnt/$2" && sync
	echo "updated $2 from $1"
}
mkdir -p "$mnt/EFI/BOOT" "$mnt/EFI/debian"
put /usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed EFI/BOOT/grubx64.efi
put /usr/lib/shim/mmx64.efi.signed EFI/BOOT/mmx64.efi
put /usr/lib/shim/shimx64.efi.signed EFI/BOOT/BOOTX64.EFI
echo "$new" > "$stamp"
echo "the ESP has shim and GRUB $new"
`

const updateESPUnit = `# Made by debian-atomic: keeps the ESP's signed shim and GRUB in step with
# the booted deployment (see /etc/debian-atomic/update-esp).
[Unit]
Description=Update the signed shim and GRUB on the EFI system partition
ConditionPathExists=/usr/lib/shim/shimx64.efi.signed
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/etc/debian-atomic/update-esp

[Install]
WantedBy=multi-user.target
`

// loaderVersions are the versions of the signed packages in the
// deployment, as the update script records them on the ESP.
func loaderVersions(ctx context.Context, r run.Runner, deploy string) (string, error) {
	out, err := r.Run(ctx, run.Cmd{Args: []string{"dpkg-query", "--admindir=" + filepath.Join(deploy, "usr/share/dpkg/database"),
		"-W", "-f=${Version}\n", "shim-signed", "grub-efi-amd64-signed"}, Quiet: true})
	if err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(string(out)), " "), nil
}

// writeUpdateESP installs the ESP update script and its service in the
// deployment's /etc.
func (o Options) writeUpdateESP(ctx context.Context, deploy string) error {
	dir := filepath.Join(deploy, "etc", "debian-atomic")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "update-esp"), []byte(updateESPScript), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(deploy, "etc/systemd/system", UpdateESPService), []byte(updateESPUnit), 0o644); err != nil {
		return err
	}
	return o.enable(ctx, deploy, UpdateESPService)
}

// Growing the root: systemd-repart grows the root partition (GPT type
// root-x86-64) into the free space after it, and systemd-growfs (the
// fstab option x-systemd.growfs on /) grows its ext4 or btrfs filesystem
// online. Both do nothing once it fills the disk, so later boots change
// nothing. The raw image stays as small as disk-size.
const repartRoot = `# Made by debian-atomic: the root partition takes the disk's free space on
# boot (systemd-repart); x-systemd.growfs in /etc/fstab grows its filesystem.
[Partition]
Type=root
`

// RepartFile is the partition definition, in the deployment's /etc.
const RepartFile = "etc/repart.d/50-debian-atomic-root.conf"

// canGrow says whether the deployment has systemd-repart.
func canGrow(deploy string) bool {
	_, err := os.Stat(filepath.Join(deploy, "usr/bin/systemd-repart"))
	return err == nil
}

func writeRepart(deploy string) error {
	p := filepath.Join(deploy, RepartFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(repartRoot), 0o644)
}
