package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestErrorKeepsTailAndEarlierErrors(t *testing.T) {
	script := `echo "dpkg: error processing package x (--configure):" >&2; for i in $(seq 1 100); do echo "line $i"; done; exit 3`
	_, err := Exec{}.Run(context.Background(), Cmd{Args: []string{"sh", "-c", script}})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", "dpkg: error processing package x", "line 100", "line 61"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 50\n") {
		t.Errorf("message keeps too much:\n%s", msg)
	}
}

func TestOnlyEnvHidesTheHostEnvironment(t *testing.T) {
	t.Setenv("TMPDIR", "/nonexistent-host-tmp")
	out, err := Exec{}.Run(context.Background(), Cmd{Args: []string{"/usr/bin/env"}, Env: []string{"A=1"}, OnlyEnv: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "TMPDIR") || !strings.Contains(string(out), "A=1") {
		t.Errorf("environment inside: %s", out)
	}
}

// A command that ignores SIGTERM, and its children, are killed after the
// grace period: an interrupted build must not wait on them.
func TestCancelKillsTheWholeGroup(t *testing.T) {
	KillGrace = 300 * time.Millisecond
	defer func() { KillGrace = 2 * time.Second }()
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := `trap "" TERM; sleep 60 & echo $! > "$1"; wait`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Exec{}.Run(ctx, Cmd{Args: []string{"sh", "-c", script, "sh", pidFile}})
		done <- err
	}()
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if child == 0 {
		t.Fatal("the script never started its child")
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("cancelled command returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a command ignoring SIGTERM was not killed")
	}
	t.Logf("returned %s after cancel", time.Since(start).Round(time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the command's child survived: %s", st)
	}
}

// A pinned command's lines are logged under its own name, not taskset's.
func TestLinesOfAPinnedCommandNameIt(t *testing.T) {
	var names []string
	x := Exec{Line: func(cmd, line string) { names = append(names, cmd+": "+line) }}
	if _, err := x.Run(context.Background(), Cmd{Args: []string{"taskset", "--cpu-list", "0", "echo", "hi"}}); err != nil {
		t.Skip("no taskset here:", err)
	}
	if len(names) != 1 || names[0] != "echo: hi" {
		t.Errorf("logged %q, want echo: hi", names)
	}
}
