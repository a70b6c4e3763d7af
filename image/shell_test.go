package image

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A console that stands for a guest: a shell printing what a kernel would.
func fakeConsole(t *testing.T, script string) *VM {
	t.Helper()
	vm, err := startArgs(context.Background(), VMOptions{}, "tcg", []string{"sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	return vm
}

func TestLoginSaysKernelPanicAtOnce(t *testing.T) {
	vm := fakeConsole(t, `printf '[    9.153794] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[    9.170235] Kernel panic - not syncing: Fatal exception in interrupt\n'; sleep 60`)
	start := time.Now()
	_, err := Login(vm, "tester", "tester", time.Minute)
	var p *KernelPanic
	if !errors.As(err, &p) || p.Line != "Kernel panic - not syncing: Fatal exception in interrupt" {
		t.Fatalf("Login: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the panic was reported after %s, not at once", time.Since(start))
	}
}

func TestEmulatorTrouble(t *testing.T) {
	for line, want := range map[string]string{
		"[  136.1] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [modprobe:412]": "soft lockup - CPU#1 stuck for 23s",
		"[  140.2] rcu: INFO: rcu_preempt self-detected stall on CPU":                "rcu: INFO: rcu_preempt self-detected stall",
		"[    9.153794] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI":                     "Oops: int3: ",
		"[    2.1] VFS: Unable to mount root fs on unknown-block(0,0)":               "",
		"[    9.2] Kernel panic - not syncing: Attempted to kill init!":              "",
	} {
		if got := EmulatorTrouble("booting\n" + line + "\nmore\n"); got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}

func TestLoginRetryingBootsAgainOnlyOnTheEmulatorsTrouble(t *testing.T) {
	for _, c := range []struct {
		name, console string
		boots, agains int
	}{
		// A trap in the kernel's code patching: TCG's, so once more (and no more).
		{"int3", `printf '[    9.1] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[    9.2] Kernel panic - not syncing: Fatal exception\n'; sleep 60`, 2, 1},
		// The image's own fault: no second boot.
		{"no root", `printf '[    2.1] VFS: Unable to mount root fs on unknown-block(0,0)\n[    2.2] Kernel panic - not syncing: VFS: Unable to mount root fs\n'; sleep 60`, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			boots, agains := 0, 0
			boot := func() (*VM, error) { boots++; return fakeConsole(t, c.console), nil }
			vm, sh, err := LoginRetrying(context.Background(), boot, "tester", "tester", time.Minute, func(error, string) { agains++ })
			if err == nil || sh != nil || vm == nil {
				t.Fatalf("LoginRetrying: %v, %v, %v", vm, sh, err)
			}
			if boots != c.boots || agains != c.agains {
				t.Errorf("booted %d times, told of %d retries; want %d and %d", boots, agains, c.boots, c.agains)
			}
		})
	}
}

// A guest that reported the emulator's trouble and then shows no progress
// is hung: Login says so after hungAfter, not at its deadline. One whose
// boot goes on printing systemd's progress is only slow.
func TestLoginGivesUpOnAHungGuestOnly(t *testing.T) {
	defer func(h, p time.Duration) { hungAfter, pollEvery = h, p }(hungAfter, pollEvery)
	hungAfter, pollEvery = 2*time.Second, 100*time.Millisecond
	stall := `printf '[   22.4] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n'; `

	hung := fakeConsole(t, stall+`sleep 60`)
	start := time.Now()
	_, err := waitForLogin(hung, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "hung") {
		t.Fatalf("waitForLogin on a hung guest: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hung guest was given up after %s, want about %s", d, hungAfter)
	}
	if EmulatorTrouble(hung.Output()) == "" {
		t.Error("a hung guest's console shows no trouble: LoginRetrying would not boot it again")
	}

	slow := fakeConsole(t, stall+`for i in 1 2 3 4 5 6 7 8; do printf '[  OK  ] Started unit %d.\n' $i; sleep 0.5; done; printf 'host login: '; sleep 60`)
	if got, err := waitForLogin(slow, time.Minute); err != nil || !strings.HasSuffix(got, "login: ") {
		t.Fatalf("waitForLogin on a slow guest: %q, %v", got, err)
	}

	quiet := fakeConsole(t, `sleep 60`) // no trouble reported: only the deadline ends the wait
	if _, err := waitForLogin(quiet, 3*time.Second); err == nil || strings.Contains(err.Error(), "hung") {
		t.Fatalf("waitForLogin on a quiet guest: %v", err)
	}
}
