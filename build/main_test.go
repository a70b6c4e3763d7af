package build

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// helperEnv makes the test binary a builder process, so tests can
// interrupt and kill a real build: it builds the variant named by it with
// the folders given in the environment.
const helperEnv = "DEBIAN_ATOMIC_TEST_HELPER_BUILD"

func helperBuild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := DefaultConfig(os.Getenv(CacheEnv), zerolog.New(os.Stderr))
	cfg.VariantsDir = os.Getenv(VariantsEnv)
	cfg.CacheDir, cfg.RepoDir, cfg.DebsDir = os.Getenv(CacheEnv), os.Getenv(RepoEnv), os.Getenv(DebsEnv)
	if _, err := Variants(ctx, cfg, []string{os.Getenv(helperEnv)}); err != nil {
		fmt.Fprintln(os.Stderr, "build failed:", err)
		return 1
	}
	return 0
}

// e2eDebs is the package cache every end-to-end test shares, across runs.
var e2eDebs = filepath.Join(os.TempDir(), "debian-atomic-e2e-debs")

// TestMain gives this test process a temporary folder of its own and fails
// the run when any test left a mount or a loop device in it: every exit
// path of a build must undo what it set up.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperBuild())
	}
	tmp, err := os.MkdirTemp("", "debian-atomic-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	if LeftBehind(tmp) {
		code = 1
	} else {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}
