package image

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Shell is a logged-in session on a VM's serial console.
type Shell struct {
	vm  *VM
	seq int
}

var (
	loginPrompt    = regexp.MustCompile(`login: $|login: `)
	passwordPrompt = regexp.MustCompile(`(?i)password(?: for [^:]+)?: ?`)
	promptRE       = regexp.MustCompile(`[$#] $`)
	panicRE        = regexp.MustCompile(`Kernel panic - not syncing:[^\r\n]*`)
	loginOrPanic   = regexp.MustCompile(loginPrompt.String() + "|" + panicRE.String())
)

// hungAfter is how long a guest whose kernel reported the emulator's
// trouble may go on showing no boot progress before waitForLogin calls it
// hung, not slow (LoginRetrying then boots it once more). On 2026-12-06 a
// plasma check's guest stalled 22 s into its boot (a virtual CPU's timer
// never fired again) and printed nothing but the kernel's stall reports
// until its 25-minute deadline, while the boot tests waited for the VM lane.
var hungAfter = 6 * time.Minute

// pollEvery is how often waitForLogin looks for progress.
var pollEvery = 10 * time.Second

// progressRE is what a booting guest prints as it gets on: systemd's
// status lines, in the initramfs and after.
var progressRE = regexp.MustCompile(`  OK  |Starting |Reached target`)

// waitForLogin waits for the login prompt (or a panic) until timeout, but
// gives up early on a hung guest (see hungAfter).
func waitForLogin(vm *VM, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	progress, moved := 0, time.Now()
	for {
		got, err := vm.Expect(loginOrPanic, min(pollEvery, time.Until(deadline)))
		if err == nil || vm.exited() {
			return got, err
		}
		if !time.Now().Before(deadline) {
			return got, fmt.Errorf("no %q on the console within %s", loginOrPanic, timeout)
		}
		out := vm.Output()
		if n := len(progressRE.FindAllStringIndex(out, -1)); n != progress {
			progress, moved = n, time.Now()
		}
		if trouble := EmulatorTrouble(out); trouble != "" && time.Since(moved) >= hungAfter {
			return got, fmt.Errorf("the guest is hung: its kernel reported %q and its boot showed no progress for %s", trouble, hungAfter)
		}
	}
}

// Login waits for the login prompt and logs in.
func Login(vm *VM, user, password string, timeout time.Duration) (*Shell, error) {
	got, err := waitForLogin(vm, timeout)
	if err != nil {
		return nil, err
	}
	// A panicked kernel prints no login: say so now, not at the deadline.
	if line := panicRE.FindString(got); line != "" {
		return nil, &KernelPanic{Line: line}
	}
	vm.Send(user)
	if _, err := vm.Expect(passwordPrompt, 30*time.Second); err != nil {
		return nil, err
	}
	vm.Send(password)
	// login flushes typed-ahead input: wait for the shell's prompt first.
	if _, err := vm.Expect(promptRE, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("no shell prompt after logging in as %s: %w", user, err)
	}
	s := &Shell{vm: vm}
	// Quiet kernel messages and disable paging, so outputs stay parseable.
	if _, _, err := s.Run("export SYSTEMD_PAGER= PAGER=cat TERM=dumb; stty -echo cols 500", 60*time.Second); err != nil {
		return nil, fmt.Errorf("no shell after logging in as %s: %w", user, err)
	}
	return s, nil
}

// emulatorTroubleRE matches what a guest kernel prints when the emulator or
// the host, not the image, failed it: processors that got no time for tens
// of seconds (TCG on a busy host), or a trap on the breakpoint of the
// kernel's own code patching (text_poke_bp), which TCG's multi-threaded
// emulation can let another virtual processor see (an "int3" oops).
var emulatorTroubleRE = regexp.MustCompile(`soft lockup - CPU#\d+ stuck for \d+s|rcu: INFO: rcu_\w+ (self-)?detected stall|Oops: int3: `)

// EmulatorTrouble returns the first console line part that shows such
// trouble, "" when there is none: a boot test may boot once more then.
func EmulatorTrouble(console string) string { return emulatorTroubleRE.FindString(console) }

// LoginRetrying boots (boot starts a VM) and logs in on the serial console.
// A boot that reaches no login is booted once more, but only when its
// kernel reported the emulator's trouble (EmulatorTrouble); again hears of
// that retry. On failure the last VM is returned too (killed), for its
// console.
func LoginRetrying(ctx context.Context, boot func() (*VM, error), user, password string, deadline time.Duration, again func(err error, trouble string)) (*VM, *Shell, error) {
	for try := 1; ; try++ {
		vm, err := boot()
		if err != nil {
			return nil, nil, err
		}
		sh, err := Login(vm, user, password, deadline)
		if err == nil {
			return vm, sh, nil
		}
		vm.Kill()
		trouble := EmulatorTrouble(vm.Output())
		if trouble == "" || try > 1 || ctx.Err() != nil {
			return vm, nil, err
		}
		if again != nil {
			again(err, trouble)
		}
	}
}

// KernelPanic is Login's error when the guest kernel panicked instead.
type KernelPanic struct{ Line string }

func (e *KernelPanic) Error() string { return "the guest kernel panicked: " + e.Line }

// Sudo turns the session into a root shell with the user's password.
func (s *Shell) Sudo(password string) error {
	s.vm.Send("sudo -i")
	if _, err := s.vm.Expect(passwordPrompt, 30*time.Second); err != nil {
		return err
	}
	s.vm.Send(password)
	if _, err := s.vm.Expect(regexp.MustCompile(`# $`), time.Minute); err != nil {
		return fmt.Errorf("no root prompt after sudo: %w", err)
	}
	_, code, err := s.Run("stty -echo cols 500; id -u", 30*time.Second)
	if err != nil || code != 0 {
		return fmt.Errorf("sudo failed: %v", err)
	}
	return nil
}

// Run runs a command line and returns its output and exit status. The
// markers are printed by the shell, so the echoed command never matches.
func (s *Shell) Run(cmd string, timeout time.Duration) (string, int, error) {
	s.seq++
	begin, end := fmt.Sprintf("BEGIN%d", s.seq), fmt.Sprintf("END%d", s.seq)
	s.vm.Send(fmt.Sprintf("echo %s''_; %s; echo _%s''_$?_", begin, cmd, end))
	if _, err := s.vm.Expect(regexp.MustCompile(begin+`_`), timeout); err != nil {
		return "", -1, err
	}
	text, err := s.vm.Expect(regexp.MustCompile(`_`+end+`_(\d+)_`), timeout)
	if err != nil {
		return text, -1, err
	}
	m := regexp.MustCompile(`_` + end + `_(\d+)_`).FindStringSubmatch(text)
	code, _ := strconv.Atoi(m[1])
	out := strings.TrimSuffix(text, m[0])
	return strings.TrimSpace(strings.ReplaceAll(out, "\r", "")), code, nil
}
