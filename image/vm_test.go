package image

import (
	"strings"
	"testing"
)

// Guest forwards reach QEMU as numbers only, restricted networks say so,
// and a VM without forwards keeps the plain user network.
func TestGuestForwardOptions(t *testing.T) {
	o := VMOptions{Disk: "d.qcow2", MemoryMiB: 2048, Restrict: true, connector: "/usr/bin/nc.openbsd",
		Forwards: []GuestForward{{Guest: "10.0.2.100:80", Host: "127.0.0.1:8180"}}}
	args := strings.Join(qemuArgs(o, "tcg", "vars.fd"), "\n")
	if !strings.Contains(args, "\nuser,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/nc.openbsd -N 127.0.0.1 8180\n") {
		t.Errorf("QEMU arguments:\n%s", args)
	}
	if args := strings.Join(qemuArgs(VMOptions{Disk: "d.raw", MemoryMiB: 2048}, "tcg", "vars.fd"), " "); !strings.Contains(args, " user,model=virtio-net-pci ") {
		t.Errorf("plain user network changed: %s", args)
	}
	for _, f := range []GuestForward{
		{Guest: "10.0.2.100:80,hostfwd=tcp::22-:22", Host: "127.0.0.1:8180"},
		{Guest: "guest:80", Host: "127.0.0.1:8180"},
		{Guest: "10.0.2.100:80", Host: "0.0.0.0:8180"},
		{Guest: "10.0.2.100:80", Host: "example.org:8180"},
		{Guest: "10.0.2.100:80", Host: "127.0.0.1:08180"},
		{Guest: "10.0.2.100:80", Host: "127.0.0.1:8180 -e /bin/sh"},
		{Guest: "10.0.2.100:0", Host: "127.0.0.1:8180"},
	} {
		if f.check() == nil {
			t.Errorf("accepted %+v", f)
		}
	}
	if err := (GuestForward{Guest: "10.0.2.100:80", Host: "[::1]:8180"}).check(); err != nil {
		t.Errorf("IPv6 loopback: %v", err)
	}
}
