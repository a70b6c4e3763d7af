package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// HostLane is the lane the boot tests of every package share: under TCG on
// a small host, two guests at once starve each other (kernel soft lockups,
// RCU stalls, a boot that never reaches its login), so they take turns.
var HostLane = filepath.Join(os.TempDir(), "debian-atomic-vm.lane")

// takeLane waits, as long as ctx allows, for the exclusive lock on the lane
// file and returns what releases it. A lock on an open file goes with the
// process, so a test killed midway leaves no stale lane behind.
func takeLane(ctx context.Context, path string, echo io.Writer) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("the VM lane %s: %w", path, err)
	}
	start, said := time.Now(), false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("the VM lane %s: %w", path, err)
		}
		if !said && echo != nil {
			fmt.Fprintf(echo, "[waiting for the VM lane %s: another VM is running]\n", path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if said && echo != nil {
		fmt.Fprintf(echo, "[the VM lane is ours after %s]\n", time.Since(start).Round(time.Second))
	}
	return func() { f.Close() }, nil
}
