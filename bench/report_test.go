package bench

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
)

func TestRowStatsAndRatio(t *testing.T) {
	s := time.Second
	res := Result{Rows: []Row{
		{Scenario: "plain", Samples: []time.Duration{10 * s, 12 * s, 11 * s}},
		{Scenario: "cold", Baseline: "plain", Goal: "≤1.10x", Samples: []time.Duration{13 * s, 11 * s, 20 * s, 12 * s}},
	}}
	if med, lo, hi := res.Rows[1].stats(); med != 12500*time.Millisecond || lo != 11*s || hi != 20*s {
		t.Errorf("stats: %v %v %v", med, lo, hi)
	}
	if r := ratioOf(res, res.Rows[1]); r != "1.14x" {
		t.Errorf("ratio %s, want 12.5/11", r)
	}
	md := Markdown(res)
	if !strings.Contains(md, "| cold | 4 | 12.50 s | 11.00 s | 20.00 s | 1.14x | plain | ≤1.10x |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestSVGIsWellFormedAndToScale(t *testing.T) {
	charts := []Chart{{Title: "cold <tiny>", Total: 60 * time.Second, Steps: []build.StepReport{
		{Step: build.StepBootstrap, Duration: 30 * time.Second},
		{Step: build.StepInstall, Name: "install:tiny", Duration: 20 * time.Second},
		{Step: build.StepPostprocess, Duration: 8 * time.Second, Cached: true},
		{Step: build.StepCommit, Duration: 2 * time.Second},
	}}}
	svg := SVG(charts)
	d := xml.NewDecoder(strings.NewReader(svg))
	var widths []string
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v\n%s", err, svg)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "width" && strings.Contains(a.Value, ".") {
					widths = append(widths, a.Value)
				}
			}
		}
	}
	// 920 px for 60 s: bootstrap 460, install 306.7, postprocess 122.7, commit 30.7.
	if strings.Join(widths, " ") != "460.0 306.7 122.7 30.7" {
		t.Errorf("bar widths %v", widths)
	}
	if !strings.Contains(svg, "cold &lt;tiny&gt;: 60.0 s") || !strings.Contains(svg, "postprocess: 8.00 s, cached") {
		t.Errorf("labels:\n%s", svg)
	}
}

// Steps that overlap add up to more than the build took: the chart marks
// where it ended and says so, instead of a bar longer than the build.
func TestSVGMarksTheEndOfABuildWhoseStepsOverlap(t *testing.T) {
	overlap := SVG([]Chart{{Title: "gnome after adding x", Total: 84 * time.Second, Steps: []build.StepReport{
		{Step: build.StepInstall, Name: "install:gnome", Duration: 56 * time.Second},
		{Step: build.StepPostprocess, Duration: 65 * time.Second},
	}}})
	if !strings.Contains(overlap, "the build ended at the black line, 84.0 s") || !strings.Contains(overlap, "add up to 121.0 s") {
		t.Errorf("no end marker:\n%s", overlap)
	}
	serial := SVG([]Chart{{Title: "cold", Total: 60 * time.Second, Steps: []build.StepReport{{Step: build.StepBootstrap, Duration: 60 * time.Second}}}})
	if strings.Contains(serial, "black line") {
		t.Errorf("a build whose steps add up to its time got the overlap note:\n%s", serial)
	}
}

// TestE2EBenchSmoke runs the report on the tiny test variant, once per
// scenario, with two small variants side by side: what CI runs. It checks
// that the report is written, never a figure. About 5-8 minutes here.
func TestE2EBenchSmoke(t *testing.T) {
	if testing.Short() || os.Getenv("DEBIAN_ATOMIC_E2E") == "0" || os.Geteuid() != 0 {
		t.Skip("end-to-end: needs root and the Debian archive (DEBIAN_ATOMIC_E2E=0 or -short skips)")
	}
	dir := t.TempDir()
	vdir := filepath.Join(dir, "variants")
	os.MkdirAll(vdir, 0o755)
	data, err := os.ReadFile(filepath.Join("..", "testdata", "variants", "tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(vdir, "tiny.yaml"), data, 0o644)
	cfg := build.DefaultConfig(dir, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	cfg.VariantsDir = vdir
	out := filepath.Join(dir, "bench")
	opts := Options{Out: out, Work: filepath.Join(dir, "work"), Runs: 1, Base: "tiny", BaseExtra: "tree",
		Scaling: []int{2}, ScalingExtras: []string{"figlet", "jq"}, Short: true}
	res, err := Report(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "bench.md"))
	t.Logf("report:\n%s", md)
	for _, f := range []string{"bench.md", "bench.csv", "steps.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	for _, r := range res.Rows {
		want := 1
		if strings.Contains(r.Scenario, "the shared work") {
			want = 2 // the base, built for both samples of its k
		}
		if len(r.Samples) != want {
			t.Errorf("%s: %d samples", r.Scenario, len(r.Samples))
		}
	}
	if !strings.Contains(string(md), "shared steps were reused 8 times and ran 0 times; the variants ran 12 steps of their own") {
		t.Errorf("the scaling note is missing or wrong:\n%s", md)
	}
	if len(res.Charts) != 1 || len(res.Charts[0].Steps) < 3 {
		t.Errorf("charts: %+v", res.Charts)
	}
	if _, err := os.Stat(opts.Work); !os.IsNotExist(err) {
		t.Errorf("the runs' caches are left: %v", err)
	}
}

func TestCountSharedSeparatesTheBasesStepsFromTheVariants(t *testing.T) {
	base := []build.Report{{Steps: []build.StepReport{
		{Step: build.StepBootstrap, Name: "bootstrap"}, {Step: build.StepInstall, Name: "install:minimal"},
		{Step: build.StepPostprocess, Name: "postprocess"}, {Step: build.StepCommit, Name: "commit"},
	}}}
	child := func(name string, rerun bool) build.Report {
		return build.Report{Steps: []build.StepReport{
			{Step: build.StepBootstrap, Name: "bootstrap", Cached: !rerun}, {Step: build.StepInstall, Name: "install:minimal", Cached: true},
			{Step: build.StepInstall, Name: "install:" + name}, {Step: build.StepPostprocess, Name: "postprocess"},
			{Step: build.StepCommit, Name: "commit"},
		}}
	}
	got := countShared(base, []build.Report{child("a", false), child("b", true)})
	if want := (stepCount{reused: 3, reran: 1, own: 6}); got != want {
		t.Errorf("countShared = %+v, want %+v", got, want)
	}
	if got.add(got) != (stepCount{6, 2, 12}) {
		t.Errorf("add: %+v", got.add(got))
	}
}

func TestOnlyPicksGroupsAndNamesAWrongOne(t *testing.T) {
	if err := CheckOnly([]string{"core", "child"}); err != nil {
		t.Error(err)
	}
	err := CheckOnly([]string{"core", "layerd"})
	if err == nil || !strings.Contains(err.Error(), `"layerd"`) || !strings.Contains(err.Error(), "bootstrappers") {
		t.Errorf("a wrong group: %v", err)
	}
	o := Options{Only: []string{"child"}}
	if o.runs("core") || !o.runs("child") || !(Options{}).runs("scaling") {
		t.Error("runs does not follow Only")
	}
}

// A finished sample's tree is set aside, not removed, until the report
// ends; only a short disk removes the set aside trees at once.
func TestDiscardSetsSamplesAsideUntilTheDiskIsShort(t *testing.T) {
	work := t.TempDir()
	r := &runner{cfg: build.Config{Log: zerolog.Nop()}, opts: Options{Work: work}}
	sample := func(name string) string {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Join(dir, "cache", "repo"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a := sample("seq-1")
	r.discard(a)
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Fatalf("the sample's tree is still where it was: %v", err)
	}
	kept, _ := os.ReadDir(filepath.Join(work, trashDir))
	if len(kept) != 1 || !strings.HasPrefix(kept[0].Name(), "seq-1-") {
		t.Fatalf("set aside: %v, want seq-1-N", kept)
	}
	r.discard(filepath.Join(work, "never-made")) // nothing to set aside
	r.keepFree = ^uint64(0)                      // no disk is that large
	r.discard(sample("all-2"))
	if _, err := os.Stat(filepath.Join(work, trashDir)); !os.IsNotExist(err) {
		t.Fatalf("with the disk short the set aside trees stay: %v", err)
	}
}
