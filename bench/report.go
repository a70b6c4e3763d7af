package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/lockresolve"
	"github.com/debian-atomic/builder/variants"
)

// Options say what a report measures.
type Options struct {
	Out  string // where the report goes (.cache/bench)
	Work string // caches made for the runs, removed at the end
	Runs int    // samples per scenario
	// Base, Child and Sibling are the variants measured (minimal, gnome,
	// plasma); Short measures Base alone (the tiny test variant, in CI).
	Base, Child, Sibling string
	// BaseExtra and ChildExtra are the packages added to Base and Child.
	BaseExtra, ChildExtra string
	// Scaling is the numbers of small variants built on Base at once.
	Scaling []int
	// ScalingExtras are small packages, one per scaling variant.
	ScalingExtras []string
	Short         bool
	Peers         bool // debos as a peer (installed when missing; never in CI)
	// Only limits the report to these groups of scenarios (Groups); empty:
	// all of them.
	Only []string
}

// Groups are the scenario groups Options.Only can pick: core (plain script,
// cold, adding a package, no-op, re-locking, peers), scaling, bootstrappers,
// child (the child cold on a cached base and after adding a package) and
// all (three variants as `mage all` and one after another, which measures
// the child rows too).
var Groups = []string{"core", "scaling", "bootstrappers", "child", "all"}

// CheckOnly says which of names is not a group, before anything runs.
func CheckOnly(names []string) error {
	for _, n := range names {
		if !slices.Contains(Groups, n) {
			return fmt.Errorf("no bench group %q: pick from %s", n, strings.Join(Groups, ", "))
		}
	}
	return nil
}

func (o Options) runs(group string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, group) }

// FullOptions is `mage bench`.
func FullOptions(out string) Options {
	return Options{Out: out, Work: filepath.Join(out, "work"), Runs: 3, Base: "minimal", Child: "gnome", Sibling: "plasma",
		BaseExtra: "tmux", ChildExtra: "gnome-tweaks", Scaling: []int{1, 2, 4, 8},
		ScalingExtras: []string{"tree", "figlet", "jq", "less", "htop", "ncdu", "pv", "bc"}}
}

// Row is one line of the table: a scenario's samples and, when it has one,
// the ratio of its median to its baseline's median measured in the same run.
type Row struct {
	Scenario string
	Baseline string
	Goal     string
	Samples  []time.Duration
}

func (r Row) stats() (med, lo, hi time.Duration) {
	s := append([]time.Duration(nil), r.Samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0, 0, 0
	}
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}

// Machine is what the figures were measured on.
type Machine struct {
	Cores   int
	MemGiB  float64
	Disk    string
	Load    string
	Started time.Time
}

func machine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Started: time.Now().UTC()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		m.Disk = fmt.Sprintf("%.0f GiB free of %.0f GiB", float64(st.Bavail)*float64(st.Bsize)/(1<<30), float64(st.Blocks)*float64(st.Bsize)/(1<<30))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	return m
}

// Result is a whole report.
type Result struct {
	Machine Machine
	Rows    []Row
	// Charts are builds whose steps the SVG shows: name -> steps.
	Charts []Chart
	Notes  []string
}

// Chart is one build's steps, for the SVG.
type Chart struct {
	Title string
	Steps []build.StepReport
	Total time.Duration
}

// runner runs the scenarios in caches under Work.
type runner struct {
	ctx  context.Context
	cfg  build.Config
	opts Options
	n    int
	// keepFree is the free space below which discard removes the samples
	// it set aside at once, rather than at the end.
	keepFree uint64
}

// trashDir holds the trees of finished samples until the report ends.
const trashDir = "trash"

// defaultKeepFree: a sample of the all group (minimal, gnome and plasma
// stored) takes about 6 GB; 20 GiB leaves room for the next ones.
const defaultKeepFree = 20 << 30

// discard sets a finished sample's tree aside, removed when the report
// ends (Work goes then). Removing it at once billed the next sample: on
// ext4 without a journal (these machines' disks), every file created
// skips, one by one, the inodes freed in the last 60 to 360 seconds
// (ext4's recently_deleted), and after removing the 500,000 files of an
// all sample that took a third of the CPU time of the next sample's
// first two minutes (perf). Only when the disk gets short are the set
// aside trees removed at once; the log says so.
func (r *runner) discard(dir string) {
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	r.n++
	trash := filepath.Join(r.opts.Work, trashDir)
	to := filepath.Join(trash, fmt.Sprintf("%s-%d", filepath.Base(dir), r.n))
	if os.MkdirAll(trash, 0o755) != nil || os.Rename(dir, to) != nil {
		os.RemoveAll(dir)
		return
	}
	var st syscall.Statfs_t
	if syscall.Statfs(trash, &st) == nil && st.Bavail*uint64(st.Bsize) < r.keepFree {
		r.cfg.Log.Info().Str("path", trash).Msg("bench: disk short, removing the trees of earlier samples now; the next sample pays for it (see discard)")
		os.RemoveAll(trash)
	}
}

// fresh is a new cache and a copy of the variants, edited by edit.
func (r *runner) fresh(tag string) build.Config {
	r.n++
	c := r.cfg
	dir := filepath.Join(r.opts.Work, fmt.Sprintf("%s-%d", tag, r.n))
	os.RemoveAll(dir)
	c.CacheDir, c.RepoDir = filepath.Join(dir, "cache"), filepath.Join(dir, "cache", "repo")
	c.VariantsDir = filepath.Join(dir, "variants")
	copyDir(r.cfg.VariantsDir, c.VariantsDir)
	return c
}

func copyDir(from, to string) {
	os.MkdirAll(to, 0o755)
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(from, e.Name())); err == nil && e.Type().IsRegular() {
			os.WriteFile(filepath.Join(to, e.Name()), data, 0o644)
		}
	}
}

// writeChild writes a small variant on base.
func writeChild(c build.Config, name, base, pkg string) error {
	return os.WriteFile(filepath.Join(c.VariantsDir, name+".yaml"),
		[]byte("name: "+name+"\ninherits: "+base+"\nref: bench/"+name+"\npackages:\n  - "+pkg+"\n"), 0o644)
}

// settle writes out what earlier samples left in the page cache, so that
// no writeback of theirs lands in the next
// sample's time. Called before every sample, outside its time; the debug
// log gives how long each took.
func (r *runner) settle() {
	start := time.Now()
	syscall.Sync()
	r.cfg.Log.Debug().Dur("sync", time.Since(start)).Msg("bench: earlier writes flushed")
}

// timed settles, then builds names.
func (r *runner) timed(c build.Config, names ...string) (time.Duration, []build.Report, error) {
	r.settle()
	return r.build(c, names...)
}

// build builds names, timed, inside a sample that settled already.
func (r *runner) build(c build.Config, names ...string) (time.Duration, []build.Report, error) {
	start := time.Now()
	reps, err := build.Variants(r.ctx, c, names)
	return time.Since(start), reps, err
}

// Report measures every scenario opts.Runs times, pairs alternating (A B,
// then B A) so that a slow spell of the machine weighs on both, and writes
// bench.md, bench.csv and steps.svg into opts.Out. A run that stops early
// (a failed build, Ctrl-C) still writes what it measured, saying so: an
// hour of samples is not thrown away for the scenario that failed.
func Report(ctx context.Context, cfg build.Config, opts Options) (res Result, err error) {
	if err := CheckOnly(opts.Only); err != nil {
		return res, err
	}
	res = Result{Machine: machine(filepath.Dir(opts.Out))}
	if len(opts.Only) > 0 {
		res.Notes = append(res.Notes, "Only these groups of scenarios ran: "+strings.Join(opts.Only, ", ")+".")
	}
	// What a killed report left goes first: the warm-up build below, not a
	// measured one, runs while its freed inodes are recent (see discard).
	os.RemoveAll(opts.Work)
	if err := os.MkdirAll(opts.Work, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(opts.Work)
	r := &runner{ctx: ctx, cfg: cfg, opts: opts, keepFree: defaultKeepFree}
	rows := map[string]*Row{}
	defer func() {
		if err == nil || len(res.Rows) == 0 {
			return
		}
		var kept []Row
		for _, row := range res.Rows {
			if len(rows[row.Scenario].Samples) > 0 {
				kept = append(kept, *rows[row.Scenario])
			}
		}
		res.Rows = kept
		res.Notes = append(res.Notes, "This run stopped early, so scenarios after the failure are missing: "+err.Error())
		if werr := write(opts.Out, res); werr != nil {
			cfg.Log.Warn().Err(werr).Msg("bench: writing the partial report")
		}
	}()
	row := func(name, baseline, goal string) *Row {
		if rows[name] == nil {
			rows[name] = &Row{Scenario: name, Baseline: baseline, Goal: goal}
			res.Rows = append(res.Rows, Row{Scenario: name})
		}
		return rows[name]
	}
	// Warm the shared package cache, so no contender downloads.
	cfg.Log.Info().Msg("bench: warming the package cache")
	warm := r.fresh("warm")
	if _, _, err := r.timed(warm, opts.Base); err != nil {
		return res, err
	}
	r.discard(filepath.Dir(warm.CacheDir))
	if opts.runs("core") {
		if err := r.core(&res, row); err != nil {
			return res, err
		}
	}
	if opts.runs("scaling") {
		if err := r.scaling(&res, row); err != nil {
			return res, err
		}
	}
	if !opts.Short {
		if opts.runs("bootstrappers") {
			if err := r.bootstrappers(row); err != nil {
				return res, err
			}
		}
		if opts.runs("all") || opts.runs("child") {
			if err := r.layered(&res, row, opts.runs("all")); err != nil {
				return res, err
			}
		}
	}
	if opts.Peers && opts.runs("core") {
		res.Notes = append(res.Notes, "debos runs without fakemachine (it needs KVM), from a recipe made of the variant: debootstrap minbase, the same sources and packages without Recommends, the same dracut call, the OSTree layout as a script, ostree-commit; it has no cache, so each of its runs downloads its packages.")
	}
	for i := range res.Rows {
		res.Rows[i] = *rows[res.Rows[i].Scenario]
	}
	return res, write(opts.Out, res)
}

// core is the base variant's rows: a plain script against a cold build,
// a no-op, re-locking and building after adding a package, and the peers.
func (r *runner) core(res *Result, row func(name, baseline, goal string) *Row) error {
	ctx, cfg, opts := r.ctx, r.cfg, r.opts
	b := opts.Base
	plain := row("plain script, "+b, "", "")
	cold := row("cold "+b, plain.Scenario, "≤1.10x")
	addOne := row(b+" after adding "+opts.BaseExtra, cold.Scenario, "≤0.25x")
	noop := row("no-op build of "+b, "", "<0.3 s")
	relock := row("re-locking after adding "+opts.BaseExtra+" to "+b, "", "≤3 s")
	var debos *Row
	if opts.Peers {
		if err := EnsureDebos(ctx, cfg); err != nil {
			return err
		}
		debos = row("debos, "+b+" (peer: no cache, downloads every time)", cold.Scenario, "≥1.00x (the builder faster)")
	}
	for i := 0; i < opts.Runs; i++ {
		measurePlain := func() error {
			v, err := variants.LoadChain(cfg.VariantsDir, b)
			if err != nil {
				return err
			}
			dir := filepath.Join(opts.Work, "plain")
			r.settle()
			start := time.Now()
			err = build.PlainScript(ctx, cfg, v, dir)
			plain.Samples = append(plain.Samples, time.Since(start))
			r.discard(dir)
			return err
		}
		measureCold := func() error {
			c := r.fresh("cold")
			d, reps, err := r.timed(c, b)
			if err != nil {
				return err
			}
			cold.Samples = append(cold.Samples, d)
			if i == 0 {
				res.Charts = append(res.Charts, Chart{Title: "cold " + b, Steps: reps[0].Steps, Total: d})
			}
			if d, _, err = r.timed(c, b); err != nil {
				return err
			}
			noop.Samples = append(noop.Samples, d)
			if err := variants.AddPackage(c.VariantsDir, b, opts.BaseExtra); err != nil {
				return err
			}
			r.settle()
			start := time.Now()
			if err := relockOnly(ctx, c, b); err != nil {
				return err
			}
			relock.Samples = append(relock.Samples, time.Since(start))
			d, _, err = r.timed(c, b)
			addOne.Samples = append(addOne.Samples, d)
			r.discard(filepath.Dir(c.CacheDir))
			return err
		}
		measures := []func() error{measurePlain, measureCold}
		if debos != nil {
			measures = append(measures, func() error {
				v, err := variants.LoadChain(cfg.VariantsDir, b)
				if err != nil {
					return err
				}
				dir := filepath.Join(opts.Work, "debos")
				defer r.discard(dir)
				r.settle()
				start := time.Now()
				if err := Debos(ctx, cfg, v, dir); err != nil {
					return err
				}
				debos.Samples = append(debos.Samples, time.Since(start))
				return nil
			})
		}
		// Each run starts with the next one, so every contender goes first once.
		for j := range measures {
			if err := measures[(i+j)%len(measures)](); err != nil {
				return err
			}
		}
	}
	return nil
}

// relockOnly re-locks the variants of c as a build would before building.
func relockOnly(ctx context.Context, c build.Config, name string) error {
	v, err := variants.LoadChain(c.VariantsDir, name)
	if err != nil {
		return err
	}
	lock, err := variants.ReadLock(c.VariantsDir)
	if err != nil {
		return err
	}
	_, err = lockresolve.Ensure(ctx, lockresolve.Config{CacheDir: c.CacheDir, VariantsDir: c.VariantsDir, Runner: c.Runner, Log: c.Log},
		lock, []*variants.Variant{v}, false)
	return err
}

// scaling builds k small variants on a cached base, all at once (parallel,
// as `mage all`) and one after another, for every k. What it shows is a
// shape, not a ratio: the shared work (the base, built once per sample,
// whatever k) stays the same, and each added variant costs its own layer
// (one after another, per variant, against the first k's). Side by side
// carries no goal: small layers share the package cache's lock and two
// cores.
func (r *runner) scaling(res *Result, row func(name, baseline, goal string) *Row) error {
	b := r.opts.Base
	first := ""
	counts := map[int]stepCount{}
	defer func() {
		for _, k := range r.opts.Scaling {
			if c, ok := counts[k]; ok {
				res.Notes = append(res.Notes, fmt.Sprintf("%s on cached %s, all samples: %s's shared steps were reused %d times and ran %d times; the variants ran %d steps of their own.", smallVariants(k), b, b, c.reused, c.reran, c.own))
			}
		}
	}()
	for _, k := range r.opts.Scaling {
		if k > len(r.opts.ScalingExtras) {
			continue
		}
		small := smallVariants(k)
		shared := row(fmt.Sprintf("%s cold, the shared work under %s", b, small), "", "")
		seq := row(fmt.Sprintf("%s on cached %s, one after another", small, b), "", "")
		par := row(fmt.Sprintf("%s on cached %s, side by side", small, b), seq.Scenario, "")
		var per *Row
		if first == "" {
			first = seq.Scenario
		} else {
			per = row(fmt.Sprintf("%s on cached %s, one after another, per variant", small, b), first, "")
		}
		for i := 0; i < r.opts.Runs; i++ {
			runOne := func(parallel bool) error {
				c := r.fresh("scale")
				defer r.discard(filepath.Dir(c.CacheDir))
				d, baseReps, err := r.timed(c, b)
				if err != nil {
					return err
				}
				shared.Samples = append(shared.Samples, d)
				tally := func(reps []build.Report) {
					t := countShared(baseReps, reps)
					counts[k] = counts[k].add(t)
				}
				var names []string
				for j := 0; j < k; j++ {
					n := fmt.Sprintf("%s-s%d", b, j+1)
					if err := writeChild(c, n, b, r.opts.ScalingExtras[j]); err != nil {
						return err
					}
					names = append(names, n)
				}
				r.settle()
				start := time.Now()
				if parallel {
					_, reps, err := r.build(c, names...)
					if err != nil {
						return err
					}
					par.Samples = append(par.Samples, time.Since(start))
					tally(reps)
					return nil
				}
				for _, n := range names {
					_, reps, err := r.build(c, n)
					if err != nil {
						return err
					}
					tally(reps)
				}
				d = time.Since(start)
				seq.Samples = append(seq.Samples, d)
				if per != nil {
					per.Samples = append(per.Samples, d/time.Duration(k))
				}
				return nil
			}
			order := []bool{false, true}
			if i%2 == 1 {
				order = []bool{true, false}
			}
			for _, p := range order {
				if err := runOne(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func smallVariants(k int) string {
	if k == 1 {
		return "1 small variant"
	}
	return fmt.Sprintf("%d small variants", k)
}

// stepCount is what the builds of variants on a cached base did with the
// base's steps (bootstrap and installs: the work they share) and their own.
type stepCount struct{ reused, reran, own int }

func (c stepCount) add(o stepCount) stepCount {
	return stepCount{c.reused + o.reused, c.reran + o.reran, c.own + o.own}
}

// countShared counts, in reps, the shared steps (those of base's build that
// bootstrap or install) reused from the cache or run again, and the other
// steps that ran.
func countShared(base, reps []build.Report) stepCount {
	shared := map[string]bool{}
	for _, rep := range base {
		for _, st := range rep.Steps {
			if st.Step == build.StepBootstrap || st.Step == build.StepInstall {
				shared[st.Name] = true
			}
		}
	}
	var c stepCount
	for _, rep := range reps {
		for _, st := range rep.Steps {
			switch {
			case shared[st.Name] && st.Cached:
				c.reused++
			case shared[st.Name]:
				c.reran++
			case !st.Cached:
				c.own++
			}
		}
	}
	return c
}

// bootstrappers builds Base cold with mmdebstrap and with debootstrap.
func (r *runner) bootstrappers(row func(name, baseline, goal string) *Row) error {
	b := r.opts.Base
	mm := row("cold "+b+" with mmdebstrap", "", "")
	deb := row("cold "+b+" with debootstrap", mm.Scenario, "")
	for i := 0; i < r.opts.Runs; i++ {
		order := []string{"mmdebstrap", "debootstrap"}
		if i%2 == 1 {
			order = []string{"debootstrap", "mmdebstrap"}
		}
		for _, tool := range order {
			c := r.fresh(tool)
			p := filepath.Join(c.VariantsDir, b+".yaml")
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			text := regexp.MustCompile(`(?m)^bootstrap:.*\n`).ReplaceAllString(string(data), "")
			if err := os.WriteFile(p, []byte(text+"bootstrap: "+tool+"\n"), 0o644); err != nil {
				return err
			}
			d, _, err := r.timed(c, b)
			r.discard(filepath.Dir(c.CacheDir))
			if err != nil {
				return err
			}
			if tool == "mmdebstrap" {
				mm.Samples = append(mm.Samples, d)
			} else {
				deb.Samples = append(deb.Samples, d)
			}
		}
	}
	return nil
}

// layered is the desktop rows: the child cold on a cached base and after
// adding one package, `all` cold for base, child and sibling against the
// three one after another, and a no-op `all`.
func (r *runner) layered(res *Result, row func(name, baseline, goal string) *Row, withAll bool) error {
	o := r.opts
	childCold := row(o.Child+" cold on cached "+o.Base, "", "")
	childAdd := row(o.Child+" after adding "+o.ChildExtra, childCold.Scenario, "≤0.30x")
	chain := []string{o.Base, o.Child}
	var seq, all, noop *Row // the mage all rows, only withAll
	if withAll {
		chain = append(chain, o.Sibling)
		seq = row(fmt.Sprintf("%s, %s, %s cold, one after another", o.Base, o.Child, o.Sibling), "", "")
		all = row(fmt.Sprintf("%s, %s, %s cold, as mage all", o.Base, o.Child, o.Sibling), seq.Scenario, "≤0.75x")
		noop = row("no-op mage all", "", "<0.3 s")
	}
	for i := 0; i < o.Runs; i++ {
		sequential := func() error {
			c := r.fresh("seq")
			defer r.discard(filepath.Dir(c.CacheDir))
			r.settle()
			start := time.Now()
			for _, n := range chain {
				d, _, err := r.build(c, n)
				if err != nil {
					return err
				}
				if n == o.Child {
					childCold.Samples = append(childCold.Samples, d)
				}
			}
			if seq != nil {
				seq.Samples = append(seq.Samples, time.Since(start))
			}
			if err := variants.AddPackage(c.VariantsDir, o.Child, o.ChildExtra); err != nil {
				return err
			}
			d, reps, err := r.timed(c, o.Child)
			if err != nil {
				return err
			}
			childAdd.Samples = append(childAdd.Samples, d)
			if i == 0 {
				res.Charts = append(res.Charts, Chart{Title: o.Child + " after adding " + o.ChildExtra, Steps: reps[0].Steps, Total: d})
			}
			return nil
		}
		parallel := func() error {
			c := r.fresh("all")
			defer r.discard(filepath.Dir(c.CacheDir))
			d, _, err := r.timed(c, o.Base, o.Child, o.Sibling)
			if err != nil {
				return err
			}
			all.Samples = append(all.Samples, d)
			d, _, err = r.timed(c, o.Base, o.Child, o.Sibling)
			noop.Samples = append(noop.Samples, d)
			return err
		}
		pair := []func() error{sequential, parallel}
		if !withAll {
			pair = pair[:1]
		}
		if i%2 == 1 && len(pair) == 2 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, m := range pair {
			if err := m(); err != nil {
				return err
			}
		}
	}
	return nil
}

// write puts the report into dir: bench.md, bench.csv, steps.svg.
func write(dir string, res Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(Markdown(res)), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "bench.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"scenario", "runs", "median_s", "min_s", "max_s", "baseline", "ratio", "goal", "samples_s"})
	for _, r := range res.Rows {
		med, lo, hi := r.stats()
		var samples []string
		for _, s := range r.Samples {
			samples = append(samples, fmt.Sprintf("%.3f", s.Seconds()))
		}
		w.Write([]string{r.Scenario, strconv.Itoa(len(r.Samples)), secs(med), secs(lo), secs(hi), r.Baseline, ratioOf(res, r), r.Goal, strings.Join(samples, " ")})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "steps.svg"), []byte(SVG(res.Charts)), 0o644)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// ratioOf is a row's median over its baseline's median, "" without one.
func ratioOf(res Result, r Row) string {
	if r.Baseline == "" {
		return ""
	}
	for _, b := range res.Rows {
		if b.Scenario == r.Baseline {
			bm, _, _ := b.stats()
			m, _, _ := r.stats()
			if bm > 0 {
				return fmt.Sprintf("%.2fx", m.Seconds()/bm.Seconds())
			}
		}
	}
	return ""
}

// Markdown is the report as a table with the machine it ran on.
func Markdown(res Result) string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "Measured %s on %d cores, %.1f GiB memory, disk %s, load average at the start %s.\n\n",
		m.Started.Format("2006-01-02 15:04 UTC"), m.Cores, m.MemGiB, m.Disk, m.Load)
	b.WriteString("| scenario | runs | median | min | max | ratio (medians, same run) | against | goal |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range res.Rows {
		med, lo, hi := r.stats()
		fmt.Fprintf(&b, "| %s | %d | %.2f s | %.2f s | %.2f s | %s | %s | %s |\n", r.Scenario, len(r.Samples), med.Seconds(), lo.Seconds(), hi.Seconds(),
			ratioOf(res, r), r.Baseline, r.Goal)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}
