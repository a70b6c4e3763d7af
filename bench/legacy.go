// Package bench measures the builder: the figures of `mage bench` and
// `mage benchLayer`, as ratios within one run on a shared, noisy machine.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/internal/benchkit"
	"github.com/debian-atomic/builder/variants"
)

// BenchResult holds the foundation figures, measured in one run so they can
// be read as ratios on a shared, noisy machine.
type BenchResult struct {
	Variant          string          `json:"variant"`
	PlainScript      time.Duration   `json:"plain_script"` // the faster of PlainRuns
	PlainRuns        []time.Duration `json:"plain_runs"`
	Cold             time.Duration   `json:"cold"` // the faster of ColdRuns
	ColdRuns         []time.Duration `json:"cold_runs"`
	NoOp             time.Duration   `json:"noop"`
	NoOpOffline      bool            `json:"noop_offline"`
	NoOpCommands     []string        `json:"noop_commands"`
	AddOne           time.Duration   `json:"add_one_package"`
	AddedPackage     string          `json:"added_package"`
	BootstrapProduce time.Duration   `json:"bootstrap_produce"`
	BootstrapRestore time.Duration   `json:"bootstrap_restore"`
}

// recorder remembers the commands a build runs.
type recorder struct {
	run.Runner
	cmds []string
}

func (r *recorder) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	r.cmds = append(r.cmds, c.String())
	return r.Runner.Run(ctx, c)
}

// Bench measures, for the named variant: a plain script doing the same work
// (mmdebstrap with every package, the same postprocess, ostree commit)
// against a cold build; a no-op rebuild (also inside a network namespace with
// no network at all); a rebuild after adding one package; and restoring the
// cached bootstrap against producing it. It works under dir and leaves the
// user's cache alone, apart from sharing its downloaded packages.
func Bench(ctx context.Context, cfg build.Config, name, extra string, dir string) (BenchResult, error) {
	res := BenchResult{Variant: name, AddedPackage: extra}
	v, err := variants.Load(cfg.VariantsDir, name)
	if err != nil {
		return res, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return res, err
	}
	fresh := func(tag string) build.Config {
		c := cfg
		c.CacheDir = filepath.Join(dir, tag, "cache")
		c.RepoDir = filepath.Join(dir, tag, "repo")
		return c
	}
	// Warm the shared package cache first, so neither contender downloads.
	cfg.Log.Info().Msg("bench: warming the package cache")
	if _, err := build.Variants(ctx, fresh("warmup"), []string{name}); err != nil {
		return res, err
	}
	os.RemoveAll(filepath.Join(dir, "warmup"))

	// Two rounds, alternating, keeping the faster of each: the machine is
	// shared and noisy, and a ratio of two single runs says little.
	var cold build.Config
	var reps []build.Report
	for round := 0; round < 2; round++ {
		cfg.Log.Info().Int("round", round+1).Msg("bench: plain script")
		start := time.Now()
		if err := build.PlainScript(ctx, cfg, v, filepath.Join(dir, "plain")); err != nil {
			return res, fmt.Errorf("plain script: %w", err)
		}
		res.PlainRuns = append(res.PlainRuns, time.Since(start))
		os.RemoveAll(filepath.Join(dir, "plain"))

		cfg.Log.Info().Int("round", round+1).Msg("bench: cold build")
		os.RemoveAll(filepath.Join(dir, "builder"))
		cold = fresh("builder")
		var d time.Duration
		if d, reps, err = benchkit.Build(ctx, cold, name); err != nil {
			return res, err
		}
		res.ColdRuns = append(res.ColdRuns, d)
		if round == 0 || reps[0].Steps[0].Duration < res.BootstrapProduce {
			res.BootstrapProduce = reps[0].Steps[0].Duration
		}
	}
	res.PlainScript, res.Cold = min(res.PlainRuns[0], res.PlainRuns[1]), min(res.ColdRuns[0], res.ColdRuns[1])

	rec := &recorder{Runner: cold.Runner}
	noop := cold
	noop.Runner = rec
	if res.NoOp, reps, err = benchkit.Build(ctx, noop, name); err != nil {
		return res, err
	}
	if reps[0].Ran() != 0 {
		return res, fmt.Errorf("no-op build ran %d steps", reps[0].Ran())
	}
	res.NoOpCommands = rec.cmds
	res.NoOpOffline = offlineNoOp(ctx, cold, name)

	// Restore the cached bootstrap the way a miss on install does.
	start := time.Now()
	store := cold.StoreRepo()
	if err := store.Checkout(ctx, reps[0].Steps[0].Result, filepath.Join(dir, "restore")); err != nil {
		return res, err
	}
	res.BootstrapRestore = time.Since(start)
	os.RemoveAll(filepath.Join(dir, "restore"))

	// One more package, in a copy of the variant file.
	edited := filepath.Join(dir, "variants")
	os.MkdirAll(edited, 0o755)
	body, _ := os.ReadFile(v.File)
	text := strings.Replace(string(body), "packages:\n", "packages:\n  - "+extra+"\n", 1)
	if err := os.WriteFile(filepath.Join(edited, name+".yaml"), []byte(text), 0o644); err != nil {
		return res, err
	}
	add := cold
	add.VariantsDir = edited
	if res.AddOne, _, err = benchkit.Build(ctx, add, name); err != nil {
		return res, err
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	os.WriteFile(filepath.Join(dir, "bench.json"), data, 0o644)
	return res, nil
}

// offlineNoOp reruns the no-op build inside a network namespace with no
// network: proof that it makes no request at all.
func offlineNoOp(ctx context.Context, cfg build.Config, name string) bool {
	self, err := os.Executable()
	if err != nil {
		return false
	}
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", self, "build:variant", name)
	cmd.Env = append(os.Environ(), build.CacheEnv+"="+cfg.CacheDir, build.RepoEnv+"="+cfg.RepoDir, build.VariantsEnv+"="+cfg.VariantsDir, "CI=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		cfg.Log.Warn().Err(err).Str("output", string(out)).Msg("offline no-op build failed")
		return false
	}
	return strings.Contains(string(out), `"ran":0`)
}

// BenchTable renders the figures with their ratios.
func BenchTable(r BenchResult) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	ratio := func(a, c time.Duration) string { return fmt.Sprintf("%.2fx", a.Seconds()/c.Seconds()) }
	fmt.Fprintf(tw, "FIGURE\tTIME\tRATIO\t\n")
	fmt.Fprintf(tw, "plain script (mmdebstrap + same postprocess + ostree commit), best of %v\t%s\t1.00x\t\n", r.PlainRuns, r.PlainScript.Round(time.Millisecond))
	fmt.Fprintf(tw, "cold build:%s, best of %v\t%s\t%s of plain\t\n", r.Variant, r.ColdRuns, r.Cold.Round(time.Millisecond), ratio(r.Cold, r.PlainScript))
	fmt.Fprintf(tw, "no-op rebuild (in process)\t%s\t%s of cold\t\n", r.NoOp.Round(time.Millisecond), ratio(r.NoOp, r.Cold))
	fmt.Fprintf(tw, "no-op rebuild offline (unshare --net)\t%v\t\t\n", r.NoOpOffline)
	fmt.Fprintf(tw, "rebuild after adding %s\t%s\t%s of cold\t\n", r.AddedPackage, r.AddOne.Round(time.Millisecond), ratio(r.AddOne, r.Cold))
	fmt.Fprintf(tw, "bootstrap: produce\t%s\t1.00x\t\n", r.BootstrapProduce.Round(time.Millisecond))
	fmt.Fprintf(tw, "bootstrap: restore from cache\t%s\t%s of produce\t\n", r.BootstrapRestore.Round(time.Millisecond), ratio(r.BootstrapRestore, r.BootstrapProduce))
	tw.Flush()
	fmt.Fprintf(&b, "commands run by the no-op build: %s\n", strings.Join(r.NoOpCommands, "; "))
	return b.String()
}

// LayerBenchResult is the layered-variant figure: a child variant built on
// its parents' cached layers, then rebuilt after adding one package.
type LayerBenchResult struct {
	Variant      string             `json:"variant"`
	Parents      time.Duration      `json:"parents"` // building the parents' chain first
	Cold         time.Duration      `json:"cold"`    // the child on cached parent layers
	AddOne       time.Duration      `json:"add_one_package"`
	AddedPackage string             `json:"added_package"`
	AddOneSteps  []build.StepReport `json:"add_one_steps"`
}

// BenchLayer measures, in a fresh cache under dir (sharing only downloaded
// packages): the parents of name, then name cold on them, then name after
// adding extra to its package list (including re-locking it).
func BenchLayer(ctx context.Context, cfg build.Config, name, extra, dir string) (LayerBenchResult, error) {
	res := LayerBenchResult{Variant: name, AddedPackage: extra}
	v, err := variants.LoadChain(cfg.VariantsDir, name)
	if err != nil {
		return res, err
	}
	// A copy of the variants folder (files and lock), edited later.
	c, err := benchkit.Fresh(cfg, dir)
	if err != nil {
		return res, err
	}
	vdir := c.VariantsDir
	var parents []string
	for _, l := range v.Layers()[:len(v.Layers())-1] {
		parents = append(parents, l.Name)
	}
	if len(parents) > 0 {
		if res.Parents, _, err = benchkit.Build(ctx, c, parents...); err != nil {
			return res, err
		}
	}
	if res.Cold, _, err = benchkit.Build(ctx, c, name); err != nil {
		return res, err
	}
	if err := variants.AddPackage(vdir, name, extra); err != nil {
		return res, err
	}
	var reps []build.Report
	if res.AddOne, reps, err = benchkit.Build(ctx, c, name); err != nil {
		return res, err
	}
	res.AddOneSteps = reps[0].Steps
	data, _ := json.MarshalIndent(res, "", "  ")
	os.WriteFile(filepath.Join(dir, "bench-layer.json"), data, 0o644)
	return res, nil
}

// LayerBenchTable renders the layered figures with their ratio.
func LayerBenchTable(r LayerBenchResult) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FIGURE\tTIME\tRATIO\t\n")
	fmt.Fprintf(tw, "parents of %s, cold\t%s\t\t\n", r.Variant, r.Parents.Round(time.Millisecond))
	fmt.Fprintf(tw, "%s cold on cached parent layers\t%s\t1.00x\t\n", r.Variant, r.Cold.Round(time.Millisecond))
	fmt.Fprintf(tw, "%s after adding %s (re-lock included)\t%s\t%.2fx of cold\t\n", r.Variant, r.AddedPackage, r.AddOne.Round(time.Millisecond), r.AddOne.Seconds()/r.Cold.Seconds())
	for _, s := range r.AddOneSteps {
		if !s.Cached {
			fmt.Fprintf(tw, "  step %s\t%s\t\t\n", s.Name, s.Duration.Round(time.Millisecond))
		}
	}
	tw.Flush()
	return b.String()
}
