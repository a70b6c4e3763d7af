package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/debian-atomic/builder/build"
)

// HostLane is the lane the boot tests of every package share: under TCG on
// a small host, two guests at once starve each other (kernel soft lockups,
// RCU stalls, a boot that never reaches its login), so they take turns.
var HostLane = filepath.Join(os.TempDir(), "debian-atomic-vm.lane")

// takeLane waits, as long as ctx allows, for the lane (the builds' flock,
// so a test killed midway leaves no stale lane) and returns what releases it.
func takeLane(ctx context.Context, path string, echo io.Writer) (release func(), err error) {
	start, said := time.Now(), false
	lock, err := build.AcquireLock(ctx, path, func(holder string) {
		if echo != nil {
			fmt.Fprintf(echo, "[waiting for the VM lane %s: another VM is running (%s)]\n", path, holder)
			said = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("the VM lane: %w", err)
	}
	if said {
		fmt.Fprintf(echo, "[the VM lane is ours after %s]\n", time.Since(start).Round(time.Second))
	}
	return lock.Release, nil
}
