package lockresolve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/variants"
)

// TestRelockBench measures re-locking one layer after adding one package
// (opt-in: DEBIAN_ATOMIC_RELOCK_BENCH=1; real archive). Every run starts
// from a copy of the project's variant file and lock, adds the package and
// re-locks, so every run does the same work; the cache folder
// (DEBIAN_ATOMIC_RELOCK_CACHE, default a temporary one) is kept between
// runs, as a developer's is, unless DEBIAN_ATOMIC_RELOCK_FRESH=1 gives
// every run an empty one. DEBIAN_ATOMIC_RELOCK_VARIANT (minimal),
// _ADD (tree) and _RUNS (5) set the scenario. It logs one line a run with
// where the time went and the median at the end; bench-relock compares two
// builds of the resolver with it, alternating.
func TestRelockBench(t *testing.T) {
	if os.Getenv("DEBIAN_ATOMIC_RELOCK_BENCH") == "" {
		t.Skip("opt-in: DEBIAN_ATOMIC_RELOCK_BENCH=1")
	}
	name := envDefault("DEBIAN_ATOMIC_RELOCK_VARIANT", "minimal")
	add := envDefault("DEBIAN_ATOMIC_RELOCK_ADD", "tree")
	runs, _ := strconv.Atoi(envDefault("DEBIAN_ATOMIC_RELOCK_RUNS", "5"))
	from := envDefault("DEBIAN_ATOMIC_RELOCK_VARIANTS", filepath.Join("..", "variants"))
	cacheDir := os.Getenv("DEBIAN_ATOMIC_RELOCK_CACHE")
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	fresh := os.Getenv("DEBIAN_ATOMIC_RELOCK_FRESH") == "1"
	var totals []time.Duration
	for i := 0; i < runs; i++ {
		vdir := t.TempDir()
		copyVariants(t, from, vdir)
		if err := variants.AddPackage(vdir, name, add); err != nil {
			t.Fatal(err)
		}
		c := cacheDir
		if fresh {
			c = t.TempDir()
		}
		v, err := variants.LoadChain(vdir, name)
		if err != nil {
			t.Fatal(err)
		}
		lock, err := variants.ReadLock(vdir)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		timer := &timingRunner{real: run.Exec{}, took: map[string]time.Duration{}}
		cfg := Config{CacheDir: c, VariantsDir: vdir, Runner: timer,
			Log: zerolog.New(zerolog.MultiLevelWriter(&logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel)}
		start := time.Now()
		changes, err := Ensure(context.Background(), cfg, lock, []*variants.Variant{v}, false)
		total := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 1 || !strings.Contains(strings.Join(changes[0].Changes, " "), "+"+add+" ") {
			t.Fatalf("re-locking after adding %s to %s changed %v", add, name, changes)
		}
		totals = append(totals, total)
		t.Logf("RELOCK run %d: total %.2f s; %s", i+1, total.Seconds(), breakdown(logs.Bytes(), timer))
	}
	sort.Slice(totals, func(a, b int) bool { return totals[a] < totals[b] })
	t.Logf("RELOCK %s + %s, %d runs, fresh cache %v: median %.2f s, min %.2f s, max %.2f s", name, add, runs, fresh,
		totals[len(totals)/2].Seconds(), totals[0].Seconds(), totals[len(totals)-1].Seconds())
}

func envDefault(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func copyVariants(t *testing.T, from, to string) {
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// breakdown is where a re-lock's time went: the commands' time by program
// and subcommand, and every phase the resolver logs with its seconds.
func breakdown(logs []byte, timer *timingRunner) string {
	var parts []string
	for _, line := range bytes.Split(logs, []byte("\n")) {
		var e struct {
			Message string   `json:"message"`
			Seconds *float64 `json:"seconds"`
		}
		if json.Unmarshal(line, &e) != nil || e.Seconds == nil || e.Message == "locked" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f s", e.Message, *e.Seconds))
	}
	timer.mu.Lock()
	defer timer.mu.Unlock()
	var cmds []string
	for k := range timer.took {
		cmds = append(cmds, k)
	}
	sort.Strings(cmds)
	for _, k := range cmds {
		parts = append(parts, fmt.Sprintf("[%s] %.2f s", k, timer.took[k].Seconds()))
	}
	return strings.Join(parts, "; ")
}

// timingRunner runs commands for real and adds up their time by program
// and first non-option argument ("apt-get install").
type timingRunner struct {
	real run.Runner
	mu   sync.Mutex
	took map[string]time.Duration
}

func (r *timingRunner) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	start := time.Now()
	out, err := r.real.Run(ctx, c)
	k := c.Args[0]
	for _, a := range c.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			k += " " + a
			break
		}
	}
	r.mu.Lock()
	r.took[k] += time.Since(start)
	r.mu.Unlock()
	return out, err
}
