package image

import (
	"strings"
	"testing"
)

// A desktop VM gets its graphics device, display and monitor socket; odd
// values never reach QEMU.
func TestScreenOptions(t *testing.T) {
	o := VMOptions{Disk: "d.qcow2", MemoryMiB: 4096, VGA: "virtio", Display: "vnc=127.0.0.1:5", Monitor: "/tmp/x/monitor.sock"}
	if err := o.checkScreen(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(qemuArgs(o, "tcg", "vars.fd"), " ")
	for _, w := range []string{" -display vnc=127.0.0.1:5 ", " -monitor unix:/tmp/x/monitor.sock,server=on,wait=off ", " -vga virtio "} {
		if !strings.Contains(args, w) {
			t.Errorf("QEMU arguments lack %q: %s", w, args)
		}
	}
	if args := strings.Join(qemuArgs(VMOptions{Disk: "d.raw"}, "tcg", "vars.fd"), " "); !strings.Contains(args, " -display none -serial stdio -monitor none ") || strings.Contains(args, "-vga") {
		t.Errorf("a serial VM changed: %s", args)
	}
	for _, bad := range []VMOptions{
		{Display: "vnc=0.0.0.0:0"}, {Display: "vnc=127.0.0.1:0,password=off"}, {Display: "curses"},
		{VGA: "qxl"}, {Monitor: "relative.sock"}, {Monitor: "/tmp/a,server=off"}, {Monitor: "/tmp/a b"},
	} {
		if bad.checkScreen() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if err := Screendump("/nonexistent.sock", "/tmp/a b.png"); err == nil || !strings.Contains(err.Error(), "screenshot path") {
		t.Errorf("screenshot path with a space: %v", err)
	}
}
