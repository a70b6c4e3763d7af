package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Firmware: Debian's ovmf package.
var (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// VMOptions describe one boot.
type VMOptions struct {
	Disk       string   // qcow2 or raw boot disk
	ExtraDisks []string // more disks, raw, read-only for the guest's use
	Work       string   // holds the UEFI variable store
	Accel      string   // kvm, tcg or "" to choose
	MemoryMiB  int
	Echo       io.Writer // copy of the console, for people and logs
	Stdin      io.Reader // interactive use; nil for a scripted console
	// Restrict cuts the guest off from the host and the outside world
	// (QEMU user network restrict=on): only Forwards reach out.
	Restrict bool
	Forwards []GuestForward

	// Display: "" (none), "gtk" or "sdl" (a window), or "vnc=127.0.0.1:N".
	Display string
	// VGA adds a graphics device for desktops: "virtio" or "std"; "" keeps
	// QEMU's default.
	VGA string
	// Monitor is a Unix socket path for QEMU's human monitor (screendump,
	// sendkey: monitor.go); "" has none.
	Monitor string

	// SecureBoot boots Secure Boot firmware with Microsoft's keys enrolled
	// (OVMFCodeSecure, OVMFVarsMS): only signed loaders start.
	SecureBoot bool

	// Lane is a lock file the VM holds from its start until QEMU ends: VMs
	// naming the same file run one at a time (see HostLane); "" takes none.
	Lane string

	connector string // netcat, found by Boot when there are forwards
}

// GuestForward makes a service listening on the host's loopback reachable
// from the guest at an address of QEMU's user-mode network. Every TCP
// connection the guest opens there runs its own connector (netcat) to the
// host port (guestfwd's cmd: form), so parallel and successive HTTP
// connections all work; a tcp: chardev carries a single connection.
type GuestForward struct {
	Guest string // IP:PORT inside the guest's network, e.g. 10.0.2.100:80
	Host  string // 127.0.0.1:PORT on the host
}

// connectorPackage provides the netcat guest forwards run.
const connectorPackage = "netcat-openbsd"

// check validates a forward: numbers only, so nothing else ever reaches
// QEMU's option parser or the connector's command line.
func (f GuestForward) check() error {
	gh, gp, err := net.SplitHostPort(f.Guest)
	if err != nil || net.ParseIP(gh).To4() == nil || !isPort(gp) {
		return fmt.Errorf("guest forward %q: want IPv4:PORT in the guest's network, e.g. 10.0.2.100:80", f.Guest)
	}
	hh, hp, err := net.SplitHostPort(f.Host)
	if ip := net.ParseIP(hh); err != nil || ip == nil || !ip.IsLoopback() || !isPort(hp) {
		return fmt.Errorf("guest forward %q: want a loopback IP:PORT on the host, e.g. 127.0.0.1:8180", f.Host)
	}
	return nil
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == s
}

// VM is a running QEMU with its serial console.
type VM struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex
	out     bytes.Buffer // everything the console printed
	mark    int          // Expect searches from here
	done    chan struct{}
	waitErr error
	Accel   string
	// Started is when QEMU started: after the VM's lane was taken, so
	// durations from it leave out the wait for another VM.
	Started time.Time
}

// kvmBroken remembers, for this process, that KVM failed here.
var kvmBroken bool

// ChooseAccel picks KVM where /dev/kvm is usable and has not failed, else TCG.
func ChooseAccel() string {
	if kvmBroken {
		return "tcg"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	return "kvm"
}

func qemuArgs(o VMOptions, accel, vars string) []string {
	args := []string{"qemu-system-x86_64", "-M", "q35", "-m", fmt.Sprint(o.MemoryMiB), "-smp", "2",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + OVMFCode,
		"-drive", "if=pflash,format=raw,file=" + vars,
		"-drive", "file=" + o.Disk + ",if=virtio,format=" + diskFormat(o.Disk),
		"-nic", nicOption(o),
		"-display", orNone(o.Display), "-serial", "stdio", "-monitor", "none"}
	if o.Monitor != "" {
		args[len(args)-1] = "unix:" + o.Monitor + ",server=on,wait=off"
	}
	if o.VGA != "" {
		args = append(args, "-vga", o.VGA)
	}
	for _, d := range o.ExtraDisks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw,readonly=on")
	}
	if o.SecureBoot {
		args = secureBootArgs(args)
	}
	if accel == "kvm" {
		return append(args, "-accel", "kvm", "-cpu", "host")
	}
	cpu := TCGCPU
	if c := os.Getenv(CPUEnv); c != "" {
		cpu = c
	}
	return append(args, "-accel", "tcg", "-cpu", cpu)
}

// TCGCPU is the emulated processor: everything TCG does, but AVX. QEMU 7.2
// was the first to emulate AVX and AVX2, and llvmpipe's AVX code (the
// desktops' only renderer under TCG) died with it: Cinnamon fell into its
// fallback mode on "max" and ran with this one. Programs and the kernel
// take their SSE paths instead.
const TCGCPU = "max,avx=off,avx2=off,fma=off,f16c=off"

// CPUEnv names another -cpu for TCG guests (e.g. "max"), for trying one.
const CPUEnv = "DEBIAN_ATOMIC_VM_CPU"

// nicOption is the user-mode network, restricted and with guest forwards
// when asked. The cmd: string is split into arguments by QEMU (no shell).
func nicOption(o VMOptions) string {
	nic := "user,model=virtio-net-pci"
	if o.Restrict {
		nic += ",restrict=on"
	}
	for _, f := range o.Forwards {
		hh, hp, _ := net.SplitHostPort(f.Host)
		// -N: pass the guest's end of the request on, so the server closes.
		nic += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s -N %s %s", f.Guest, o.connector, hh, hp)
	}
	return nic
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func diskFormat(p string) string {
	if strings.HasSuffix(p, ".qcow2") {
		return "qcow2"
	}
	return "raw"
}

// Boot starts the VM. With Accel empty it tries KVM first and falls back to
// TCG when QEMU reports a KVM failure (as on machines where /dev/kvm exists
// but dies with "KVM internal error") or exits at once.
func Boot(ctx context.Context, o VMOptions) (*VM, error) { return boot(ctx, o, nil) }

// boot is Boot with extra QEMU arguments (BootDrives' CD-ROM and disks).
func boot(ctx context.Context, o VMOptions, extra []string) (*VM, error) {
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if err := o.checkScreen(); err != nil {
		return nil, err
	}
	for _, f := range o.Forwards {
		if err := f.check(); err != nil {
			return nil, err
		}
	}
	if len(o.Forwards) > 0 {
		nc, err := exec.LookPath("nc.openbsd")
		if err != nil {
			return nil, fmt.Errorf("guest forwards run netcat: install %s (apt-get install --no-install-recommends %s)", connectorPackage, connectorPackage)
		}
		o.connector = nc
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, err
	}
	vars, varsSrc := filepath.Join(o.Work, "OVMF_VARS.fd"), OVMFVars
	if o.SecureBoot {
		vars, varsSrc = filepath.Join(o.Work, "OVMF_VARS.ms.fd"), OVMFVarsMS
	}
	if _, err := os.Stat(vars); err != nil {
		data, err := os.ReadFile(varsSrc)
		if err != nil {
			return nil, fmt.Errorf("UEFI firmware missing (install ovmf): %w", err)
		}
		if err := os.WriteFile(vars, data, 0o644); err != nil {
			return nil, err
		}
	}
	release := func() {}
	if o.Lane != "" {
		var err error
		if release, err = takeLane(ctx, o.Lane, o.Echo); err != nil {
			return nil, err
		}
	}
	vm, err := startWithFallback(ctx, o, vars, extra)
	if err != nil {
		release()
		return nil, err
	}
	go func() {
		<-vm.done
		release()
	}()
	return vm, nil
}

// startWithFallback starts QEMU with the accelerator asked for or chosen,
// and falls back to TCG when KVM fails in the first seconds.
func startWithFallback(ctx context.Context, o VMOptions, vars string, extra []string) (*VM, error) {
	accel := o.Accel
	if accel == "" {
		accel = ChooseAccel()
	}
	start := func(accel string) (*VM, error) {
		return startArgs(ctx, o, accel, append(qemuArgs(o, accel, vars), extra...))
	}
	vm, err := start(accel)
	if err != nil || accel != "kvm" || o.Accel != "" {
		return vm, err
	}
	// Watch the first seconds: a broken KVM shows itself early.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if vm.exited() || strings.Contains(vm.Output(), "KVM internal error") || strings.Contains(vm.Output(), "failed to initialize kvm") {
			vm.Kill()
			kvmBroken = true
			return start("tcg")
		}
		if strings.Contains(vm.Output(), "Linux version") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return vm, nil
}

type vmWriter struct{ vm *VM }

func (w *vmWriter) Write(p []byte) (int, error) {
	w.vm.mu.Lock()
	defer w.vm.mu.Unlock()
	return w.vm.out.Write(p)
}

// Output is everything the console printed so far.
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.out.String()
}

func (vm *VM) exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}

// Expect waits until the console prints something matching re after the
// last match, and returns the text up to and including the match.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		vm.mu.Lock()
		text := vm.out.String()[vm.mark:]
		if loc := re.FindStringIndex(text); loc != nil {
			vm.mark += loc[1]
			vm.mu.Unlock()
			return text[:loc[1]], nil
		}
		vm.mu.Unlock()
		if vm.exited() {
			return text, fmt.Errorf("QEMU exited (%v) before the console printed %q", vm.waitErr, re)
		}
		if time.Now().After(deadline) {
			return text, fmt.Errorf("no %q on the console within %s", re, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Send types a line on the console.
func (vm *VM) Send(line string) error {
	if vm.stdin == nil {
		return errors.New("the console is interactive")
	}
	_, err := io.WriteString(vm.stdin, line+"\r")
	return err
}

// Wait waits for QEMU to exit (after a poweroff).
func (vm *VM) Wait(timeout time.Duration) error {
	select {
	case <-vm.done:
		return nil
	case <-time.After(timeout):
		vm.Kill()
		return fmt.Errorf("the VM did not power off within %s", timeout)
	}
}

// Kill stops QEMU.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
		return // QEMU has ended: its process group may be another's by now
	default:
	}
	if vm.cmd.Process != nil {
		syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-vm.done
}
