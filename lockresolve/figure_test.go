package lockresolve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/variants"
)

// TestRelockFigure measures re-locking after adding one package, against the
// real archive, on a copy of the project's variants (opt-in:
// DEBIAN_ATOMIC_RELOCK_FIGURE=1; DEBIAN_ATOMIC_RELOCK_CACHE keeps the apt
// lists between runs). The first change warms the lists; the figures are the
// next ones: gnome + gnome-tweaks (one layer), minimal + tmux (minimal and
// every layer on it). DEBIAN_ATOMIC_RELOCK_VARIANTS reads the variants
// from another folder.
func TestRelockFigure(t *testing.T) {
	if os.Getenv("DEBIAN_ATOMIC_RELOCK_FIGURE") == "" {
		t.Skip("opt-in: DEBIAN_ATOMIC_RELOCK_FIGURE=1")
	}
	from := filepath.Join("..", "variants")
	if d := os.Getenv("DEBIAN_ATOMIC_RELOCK_VARIANTS"); d != "" {
		from = d
	}
	vdir := t.TempDir()
	for _, f := range []string{"minimal.yaml", "gnome.yaml", "plasma.yaml", variants.LockFile} {
		data, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(vdir, f), data, 0o644)
	}
	cacheDir := os.Getenv("DEBIAN_ATOMIC_RELOCK_CACHE")
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	cfg := Config{CacheDir: cacheDir, VariantsDir: vdir, Runner: run.Exec{}, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)}
	add := func(file, pkg string) time.Duration {
		p := filepath.Join(vdir, file)
		data, _ := os.ReadFile(p)
		s := strings.Replace(string(data), "packages:\n", "packages:\n  - "+pkg+"\n", 1)
		os.WriteFile(p, []byte(s), 0o644)
		start := time.Now()
		changes, err := Update(context.Background(), cfg, false)
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("adding %s to %s: re-locked in %.2f s, %d variants changed", pkg, file, d.Seconds(), len(changes))
		return d
	}
	add("plasma.yaml", "kate") // warms the lists
	add("gnome.yaml", "gnome-tweaks")
	add("minimal.yaml", "tmux")
}
