package publish

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
)

// Missing tools stop a publish with one message, before anything is written.
func TestPublishWithoutToolsWritesNothing(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	cfg := build.DefaultConfig(dir, zerolog.Nop())
	t.Setenv(Env, "")
	t.Setenv("PATH", bin)
	s := &Settings{Keep: DefaultKeep}
	_, err := Publish(context.Background(), cfg, s, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "ostree is missing") {
		t.Fatalf("no ostree: %v", err)
	}
	os.WriteFile(filepath.Join(bin, "ostree"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	_, err = Publish(context.Background(), cfg, s, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "gpg is missing") || !strings.Contains(err.Error(), "signing: none") {
		t.Fatalf("no gpg: %v", err)
	}
	if _, err := os.Stat(s.RepoDir(cfg)); !os.IsNotExist(err) {
		t.Fatalf("%s was written", s.RepoDir(cfg))
	}
}
