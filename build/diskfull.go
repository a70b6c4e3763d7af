package build

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ExplainDiskFull puts a clear first line on an error caused by a full disk:
// the Go error ENOSPC, a tool's "No space left on device" (dpkg, apt and
// ostree print it), or ostree refusing to write past its min-free-space. dir is the folder whose disk filled; err is returned
// unchanged when the disk was not the cause.
func ExplainDiskFull(err error, dir, what string) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "No space left on device") ||
		strings.Contains(err.Error(), "min-free-space")) {
		return err
	}
	free := ""
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		free = fmt.Sprintf(" (%d MiB free now)", int64(st.Bavail)*int64(st.Bsize)>>20)
	}
	return fmt.Errorf("the disk holding %s is full%s: free some space, or set %s to a folder on a bigger disk, and run it again; %s: %w",
		dir, free, CacheEnv, what, err)
}
