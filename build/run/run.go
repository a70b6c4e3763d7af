// Package run is the one seam through which the builder runs host commands.
// Every command is an argument vector, never a shell string, so user text
// cannot be interpreted by a shell. Tests swap the Runner for a fake.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cmd is one command to run.
type Cmd struct {
	Args []string // program and arguments
	Env  []string // extra environment, KEY=VALUE
	// OnlyEnv runs with Env alone instead of adding it to the builder's own
	// environment: commands inside a build tree must not see host settings
	// such as TMPDIR, which name paths that do not exist there.
	OnlyEnv bool
	Dir     string    // working directory
	Stdin   io.Reader // optional
	Stdout  io.Writer // optional; output is otherwise captured and logged
	// Quiet keeps output out of the log (for queries).
	Quiet bool
}

func (c Cmd) String() string { return strings.Join(c.Args, " ") }

// Runner runs commands.
type Runner interface {
	// Run runs c and returns its standard output; on failure the error
	// includes the end of its standard error.
	Run(ctx context.Context, c Cmd) ([]byte, error)
}

// Error is a failed command with the tail of what it printed.
type Error struct {
	Cmd    string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if e.Stderr != "" {
		msg += "\n" + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KillGrace is how long an interrupted command's process group has between
// SIGTERM and SIGKILL.
var KillGrace = 2 * time.Second

// Exec runs commands on the host. Line receives each output line as it
// comes, for logs and progress.
type Exec struct {
	Line func(cmd string, line string)
}

// Run starts c in its own process group so an interrupt can stop the whole
// tree (apt's dpkg, mmdebstrap's children), first with SIGTERM.
func (x Exec) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	if c.OnlyEnv {
		cmd.Env = c.Env
	}
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancel the group gets SIGTERM, then SIGKILL after a grace period:
	// mage gives a target only 5 s after Ctrl-C, and the mounts must be
	// released within that time.
	grace := KillGrace
	exited := make(chan struct{})
	defer close(exited)
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		go func() {
			select {
			case <-exited:
			case <-time.After(grace):
				syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}()
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = grace + time.Second

	var stdout bytes.Buffer
	tail := &tailWriter{max: 40}
	name := c.Args[0]
	if name == "taskset" && len(c.Args) > 3 { // pinned: the log names what runs
		name = c.Args[3]
	}
	lw := &lineWriter{fn: func(l string) {
		tail.add(l)
		if x.Line != nil && !c.Quiet {
			x.Line(name, l)
		}
	}}
	// Output lines feed the error's tail (apt says "Err: URL 404" on
	// standard output), and the log unless the command is quiet.
	if c.Stdout != nil {
		cmd.Stdout = io.MultiWriter(c.Stdout, lw)
	} else {
		cmd.Stdout = io.MultiWriter(&stdout, lw)
	}
	cmd.Stderr = lw
	err := cmd.Run()
	lw.flush()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.Bytes(), &Error{Cmd: c.String(), Err: err, Stderr: tail.String()}
	}
	return stdout.Bytes(), nil
}

// lineWriter splits a stream into lines.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\n\r")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.fn(line)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if line := strings.TrimSpace(string(w.buf)); line != "" {
		w.fn(line)
	}
	w.buf = nil
}

// tailWriter keeps the last lines for error messages, and the first lines
// that look like errors wherever they came: dpkg says why a maintainer
// script failed long before apt's last words.
type tailWriter struct {
	mu     sync.Mutex
	max    int
	lines  []string
	errors []string
	lost   bool // errors scrolled out of the tail
}

func looksLikeError(l string) bool {
	low := strings.ToLower(l)
	return strings.Contains(low, "error") || strings.HasPrefix(l, "E: ") || strings.Contains(low, "failed")
}

func (t *tailWriter) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		if looksLikeError(t.lines[0]) && len(t.errors) < 20 {
			t.errors = append(t.errors, t.lines[0])
			t.lost = true
		}
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.lost {
		return strings.Join(t.lines, "\n")
	}
	return strings.Join(t.errors, "\n") + "\n...\n" + strings.Join(t.lines, "\n")
}

// Unmount unmounts target with runner, lazily when something still holds it
// (a process that outlived an interrupt), so that exit paths never stall.
func Unmount(ctx context.Context, runner Runner, target string) error {
	if _, err := runner.Run(ctx, Cmd{Args: []string{"umount", target}, Quiet: true}); err == nil {
		return nil
	}
	_, err := runner.Run(ctx, Cmd{Args: []string{"umount", "--lazy", target}, Quiet: true})
	return err
}
