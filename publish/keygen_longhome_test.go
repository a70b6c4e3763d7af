package publish

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
)

// A GnuPG home deeper than gpg-agent's socket path allows (a deep
// DEBIAN_ATOMIC_CACHE) still makes a key and signs: gpg runs on a short link.
func TestKeygenLongHome(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("no gpg")
	}
	home := filepath.Join(t.TempDir(), strings.Repeat("deep-cache-folder/", 8), "gnupg")
	if len(home) <= maxHomeLen {
		t.Fatalf("the test's home %s is short enough already", home)
	}
	cfg := build.DefaultConfig(t.TempDir(), zerolog.New(zerolog.NewTestWriter(t)))
	s := &Settings{GnuPGHome: home, Keep: DefaultKeep, Repo: filepath.Join(t.TempDir(), "pub")}
	g := gpg{runner: cfg.Runner, home: s.Home(cfg)}
	if len(g.home) > maxHomeLen {
		t.Fatalf("Home gave %s (%d bytes)", g.home, len(g.home))
	}
	t.Cleanup(func() {
		g.stopAgent(context.Background())
		os.Remove(g.home)
	})
	ctx := context.Background()
	info, err := Keygen(ctx, cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.canSign(ctx, info.ID); err != nil {
		t.Fatalf("signing with the key in the long home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, KeyIDFileName)); err != nil {
		t.Errorf("the key id is not recorded in the real home: %v", err)
	}
	if again := s.Home(cfg); again != g.home {
		t.Errorf("the short link changed: %s then %s", g.home, again)
	}
}

func TestShortHomeKeepsShortPaths(t *testing.T) {
	if h, err := shortHome("/var/lib/x/gnupg"); err != nil || h != "/var/lib/x/gnupg" {
		t.Errorf("shortHome of a short path: %s %v", h, err)
	}
}
