package image

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Drives are what a boot of an installer needs beyond VMOptions: an ISO as
// an optical drive and writable disks to install onto.
type Drives struct {
	CDROM string   // an ISO image attached as a CD-ROM drive (AHCI)
	Disks []string // more writable raw disks (virtio), after VMOptions.Disk
	// NoReboot makes a reboot of the guest end QEMU, as a power-off does.
	NoReboot bool
}

func (d Drives) args() ([]string, error) {
	var args []string
	for _, p := range append([]string{d.CDROM}, d.Disks...) {
		if p != "" && !monitorPathRE.MatchString(p) {
			return nil, fmt.Errorf("drive %q: want an absolute path of letters, digits, '/', '.', '_', '-'", p)
		}
	}
	if d.CDROM != "" {
		args = append(args, "-drive", "file="+d.CDROM+",media=cdrom,readonly=on,format=raw")
	}
	for _, p := range d.Disks {
		args = append(args, "-drive", "file="+p+",if=virtio,format=raw")
	}
	if d.NoReboot {
		args = append(args, "-no-reboot")
	}
	return args, nil
}

// BootDrives is Boot with Drives added, and the same choice of KVM or TCG
// (falling back to TCG where KVM fails early).
func BootDrives(ctx context.Context, o VMOptions, d Drives) (*VM, error) {
	extra, err := d.args()
	if err != nil {
		return nil, err
	}
	if len(o.Forwards) > 0 {
		return nil, fmt.Errorf("BootDrives: guest forwards are not supported; use Boot")
	}
	return boot(ctx, o, extra)
}

// startArgs starts QEMU with the command line boot made.
func startArgs(ctx context.Context, o VMOptions, accel string, args []string) (*VM, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	vm := &VM{cmd: cmd, done: make(chan struct{}), Accel: accel}
	var err error
	if o.Stdin != nil {
		cmd.Stdin = o.Stdin
	} else if vm.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	w := io.Writer(&vmWriter{vm: vm})
	if o.Echo != nil {
		w = io.MultiWriter(w, o.Echo)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU (install qemu-system-x86): %w", err)
	}
	vm.Started = time.Now()
	go func() {
		vm.waitErr = cmd.Wait()
		close(vm.done)
	}()
	return vm, nil
}

// Exited says whether QEMU has ended (the guest powered off).
func (vm *VM) Exited() bool { return vm.exited() }
