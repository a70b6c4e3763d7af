package desktopcheck

import (
	"context"
	"testing"
	"time"
)

// An interrupted check stops waiting at once, so its clean-up runs within
// mage's grace period.
func TestPauseEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	if err := pause(ctx, time.Minute); err != context.Canceled {
		t.Fatalf("pause: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("pause returned after %s", d)
	}
	if err := pause(context.Background(), 10*time.Millisecond); err != nil {
		t.Errorf("pause without an interruption: %v", err)
	}
}
