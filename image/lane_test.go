package image

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLaneTakesTurns(t *testing.T) {
	lane := filepath.Join(t.TempDir(), "vm.lane")
	first, err := takeLane(context.Background(), lane, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Taken: a second VM waits, and says so, until its context ends.
	var echo bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	if _, err := takeLane(ctx, lane, &echo); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a taken lane: %v", err)
	}
	if !strings.Contains(echo.String(), "waiting for the VM lane "+lane) {
		t.Errorf("the wait was not said: %q", echo.String())
	}
	// Released while a second waits: the second gets it.
	got := make(chan error, 1)
	go func() {
		release, err := takeLane(context.Background(), lane, nil)
		if err == nil {
			release()
		}
		got <- err
	}()
	time.Sleep(700 * time.Millisecond)
	first()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the released lane was not taken")
	}
}
