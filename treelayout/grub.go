package treelayout

import (
	"os"
	"path/filepath"
)

// grubOstreeScript replaces ostree-boot's /etc/grub.d/15_ostree. ostree's
// grub2 backend runs grub-mkconfig in a chroot of the new deployment, where
// /ostree/repo does not exist, so the stock script silently emits nothing
// and the machine would lose its boot entries at its first upgrade. This one
// reads the Boot Loader Spec entries of the new boot version, which the
// chroot does see in /boot, and needs nothing else.
const grubOstreeScript = `#!/bin/sh
# Made by debian-atomic: GRUB menu entries from ostree's Boot Loader Spec entries.
set -e
dir=/boot/loader.${_OSTREE_GRUB2_BOOTVERSION:-none}/entries
[ -d "$dir" ] || dir=/boot/loader/entries
[ -d "$dir" ] || exit 0
field() { sed -n "s/^$1 //p" "$2" | head -n 1; }
# /boot is a folder of the root filesystem, GRUB's root: paths need it.
boot() { case "$1" in /boot/*) echo "$1" ;; *) echo "/boot$1" ;; esac; }
for f in "$dir"/*.conf; do
	[ -f "$f" ] || continue
	echo "$(field version "$f") $f"
done | sort -rn | while read -r _ f; do
	title=$(field title "$f" | tr -d "'")
	echo "menuentry '$title' --class gnu-linux --class os {"
	echo "	linux $(boot "$(field linux "$f")") $(field options "$f")"
	initrd=$(field initrd "$f")
	[ -z "$initrd" ] || echo "	initrd $(boot "$initrd")"
	echo "}"
done
`

// installGrubScript puts the generator in place when the tree has GRUB's
// configuration tools.
func installGrubScript(root string) error {
	if !exists(filepath.Join(root, "usr/sbin/grub-mkconfig")) {
		return nil
	}
	dir := filepath.Join(root, "etc/grub.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// ostree-boot ships it as an absolute link into /usr/libexec: replace
	// the link, never write through it (that would be the host's path).
	path := filepath.Join(dir, "15_ostree")
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(grubOstreeScript), 0o755)
}
