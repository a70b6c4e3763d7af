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
)

// Lock is the exclusive build lock. It is an flock, so the kernel releases it
// when its holder dies, even by kill -9, and a stale lock cannot block anyone.
type Lock struct {
	f *os.File
}

// AcquireLock takes the lock at path. When another build holds it, wait is
// told who, and AcquireLock waits until it is free or ctx ends.
func AcquireLock(ctx context.Context, path string, wait func(holder string)) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !told && wait != nil {
			holder, _ := os.ReadFile(path)
			wait(strings.TrimSpace(string(holder)))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("gave up waiting for the build lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d, %s, since %s\n", os.Getpid(), strings.Join(os.Args, " "), time.Now().Format(time.RFC3339))
	return &Lock{f: f}, nil
}

// Release frees the lock.
func (l *Lock) Release() {
	l.f.Truncate(0)
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// LockCache takes cfg's build lock, saying in the log whom it waits for.
// Whatever uses the work folder holds it: builds, and image builds.
func LockCache(ctx context.Context, cfg Config) (*Lock, error) {
	return AcquireLock(ctx, filepath.Join(cfg.CacheDir, "lock"), func(holder string) {
		cfg.Log.Warn().Str("holder", holder).Msg("another build holds the cache; waiting for it to finish")
	})
}
