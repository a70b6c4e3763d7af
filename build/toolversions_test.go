package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/debian-atomic/builder/build/run"
)

type countingRunner struct{ n int }

func (r *countingRunner) Run(_ context.Context, c run.Cmd) ([]byte, error) {
	r.n++
	return []byte("faketool 1." + string(rune('0'+r.n)) + "\nmore\n"), nil
}

// A tool's version is asked once and kept across runs until the executable
// changes: a no-op build starts no tool process.
func TestToolVersionsAreKeptUntilTheToolChanges(t *testing.T) {
	bin, cache := t.TempDir(), t.TempDir()
	t.Setenv("PATH", bin)
	exe := filepath.Join(bin, "faketool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &countingRunner{}
	ask := func() string {
		h := &realHost{runner: r, versions: map[string]string{}, cacheDir: cache}
		v, err := h.ToolVersion(context.Background(), "faketool")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := ask(); v != "faketool 1.1" || r.n != 1 {
		t.Fatalf("first run: %q after %d runs", v, r.n)
	}
	if v := ask(); v != "faketool 1.1" || r.n != 1 {
		t.Fatalf("a second run asked again or got %q (%d runs)", v, r.n)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n# a new version\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if v := ask(); v != "faketool 1.2" || r.n != 2 {
		t.Fatalf("a changed tool kept its old version %q (%d runs)", v, r.n)
	}
}
