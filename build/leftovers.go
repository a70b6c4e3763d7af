package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/mountinfo"
)

// What an interrupted or killed build can leave behind, found from the
// kernel's own tables so nothing depends on the dead process's memory.

// unmountUnder removes mounts left below dir by an earlier build that was
// killed before it could clean up.
func unmountUnder(runner run.Runner, dir string) error {
	var errs []error
	for _, mp := range mountinfo.Under(dir) {
		if err := run.Unmount(context.Background(), runner, mp); err != nil {
			errs = append(errs, fmt.Errorf("cannot unmount %s left by an earlier build: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// killChrooted kills processes whose root directory is below dir, or whose
// command line names a path below it (an ostree commit storing a tree): what
// a killed build left running. It returns how many it found.
func killChrooted(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	dir = filepath.Clean(dir)
	n := 0
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(p), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		root, err := os.Readlink(filepath.Join(p, "root"))
		inside := err == nil && (root == dir || strings.HasPrefix(root, dir+"/"))
		if !inside {
			cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
			inside = strings.Contains(string(cmdline), dir+"/")
		}
		if inside {
			syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	if n > 0 {
		time.Sleep(500 * time.Millisecond) // let the kernel release their mounts and files
	}
	return n
}

// LoopDevicesUnder lists loop devices whose backing file is at or below dir.
// The builder makes none (images are written without them); tests check
// that nothing did.
func LoopDevicesUnder(dir string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	dir = filepath.Clean(dir)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		back := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if err == nil && (back == dir || strings.HasPrefix(back, dir+"/")) {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f)))+" ("+back+")")
		}
	}
	return out
}

// LeftBehind reports on standard error any mount or loop device at or
// below dir, and says whether there was one. Test programs call it last.
func LeftBehind(dir string) bool {
	left := append(mountinfo.Under(dir), LoopDevicesUnder(dir)...)
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "mounts or loop devices left behind:\n  %s\n", strings.Join(left, "\n  "))
	}
	return len(left) > 0
}
