package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
)

// blockingRunner runs commands for real until one contains block, which
// waits for the context to end, as a long mkfs or pull does under Ctrl-C.
type blockingRunner struct {
	block   string
	reached chan struct{}
}

func (r blockingRunner) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	if strings.Contains(c.String(), r.block) {
		close(r.reached)
		<-ctx.Done()
		return nil, &run.Error{Cmd: c.String(), Err: ctx.Err()}
	}
	return run.Exec{}.Run(ctx, c)
}

// An interrupted image build removes its scratch folder and keeps the
// image written before.
func TestInterruptedImageBuildKeepsThePreviousImage(t *testing.T) {
	if _, err := exec.LookPath("ostree"); err != nil {
		t.Skip("ostree is not installed")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "images", "minimal")
	os.MkdirAll(filepath.Dir(out), 0o755)
	os.WriteFile(out+".raw", []byte("previous image"), 0o644)
	r := blockingRunner{block: "pull-local", reached: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-r.reached
		cancel()
	}()
	work := filepath.Join(dir, "work", "image-minimal")
	_, err := Build(ctx, Options{Runner: r, Log: zerolog.Nop(), Repo: filepath.Join(dir, "repo"), Ref: "test/x",
		OSName: "debian", Config: Config{DiskSize: "4G", Filesystem: "ext4"}, Work: work, Out: out})
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("interrupted image build: %v", err)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the scratch folder %s is left", work)
	}
	if got, _ := os.ReadFile(out + ".raw"); string(got) != "previous image" {
		t.Errorf("the previous image was lost: %q", got)
	}
}
