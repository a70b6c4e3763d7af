package build

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/variants"
)

// memCache is a cache snapshot in memory: the plan's tests need no store.
type memCache struct {
	entries map[cache.Key]cache.Entry
	lasts   map[string]cache.Last // owner/step
	lookups int
}

func newMemCache() *memCache {
	return &memCache{entries: map[cache.Key]cache.Entry{}, lasts: map[string]cache.Last{}}
}

func (m *memCache) lookup(key cache.Key) (cache.Entry, bool, string) {
	m.lookups++
	e, ok := m.entries[key]
	if !ok {
		return cache.Entry{}, false, "not in cache"
	}
	return e, true, ""
}

func (m *memCache) last(owner, step string) (cache.Last, bool) {
	l, ok := m.lasts[owner+"/"+step]
	return l, ok
}

// complete "runs" every miss of in's plan the way a build records it (an
// entry and the owner's last key; for the commit, the ref's input key)
// until the plan has none, and returns the inputs with the ref set.
func (m *memCache) complete(t *testing.T, in planInputs) planInputs {
	t.Helper()
	for range 10 {
		miss := makePlan(in, m).firstMiss()
		if miss == nil {
			return in
		}
		result := "result-of-" + miss.name() + "-" + string(miss.key)[:8]
		if miss.kind == StepCommit {
			in.refCommit, in.refKey = result, string(miss.key)
		} else {
			m.entries[miss.key] = cache.Entry{Kind: miss.kind, Result: result, TreeSize: 42}
		}
		m.lasts[lastOwner(miss.step, in.v)+"/"+miss.name()] = cache.Last{Key: miss.key, Fields: miss.pre.Fields()}
	}
	t.Fatal("the plan never ran out of misses")
	return in
}

const planBase = "name: base\nsuite: trixie\narchitecture: amd64\nmirror: http://127.0.0.1:9/debian\nos-name: debian\nref: test/base\nkernel-args: [rw]\npackages: [hello]\n"

// planVariant loads name from variant files written to a fresh folder.
func planVariant(t *testing.T, files map[string]string, name string) *variants.Variant {
	t.Helper()
	dir := t.TempDir()
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n+".yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := variants.LoadChain(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func planLock(layers map[string][]string) *variants.Lock {
	l := &variants.Lock{Bootstraps: map[string][]string{"trixie amd64 main": {"base-files 13.8 amd64"}},
		Variants: map[string]variants.LockedLayer{}, SourceDateEpoch: 1700000000}
	for n, pkgs := range layers {
		l.Variants[n] = variants.LockedLayer{Packages: pkgs}
	}
	return l
}

var planTools = tools{"mmdebstrap": "1.5.7", "ostree": "2022.7"}

func names(p plan) []string {
	var out []string
	for _, s := range p.steps {
		out = append(out, s.name())
	}
	return out
}

func TestPlanOfAFreshCacheStopsAtBootstrap(t *testing.T) {
	v := planVariant(t, map[string]string{"base": planBase}, "base")
	in := planInputs{v: v, lock: planLock(map[string][]string{"base": {"hello 2.10 amd64"}}), tools: planTools}
	c := newMemCache()
	p := makePlan(in, c)
	if got := names(p); !slices.Equal(got, []string{StepBootstrap}) {
		t.Fatalf("a fresh cache plans %v, want bootstrap only (later keys need its result)", got)
	}
	miss := p.firstMiss()
	if miss == nil || miss.hit || miss.kind != StepBootstrap || miss.parent != "" {
		t.Fatalf("first miss: %+v", miss)
	}
	if want := preimage(step{kind: StepBootstrap}, v, "", planTools, in.lock).Sum(); miss.key != want {
		t.Errorf("bootstrap key %s, want %s", miss.key, want)
	}
	if !slices.Equal(miss.why, []string{"not in cache"}) {
		t.Errorf("why %v", miss.why)
	}
	if p.done() || len(p.chain) != 4 {
		t.Errorf("done %v, chain %d steps", p.done(), len(p.chain))
	}
	if c.lookups != 1 {
		t.Errorf("%d lookups for one planned step", c.lookups)
	}
}

func TestPlanOfACachedChainIsAllHitsWithChainedKeys(t *testing.T) {
	v := planVariant(t, map[string]string{"base": planBase}, "base")
	in := planInputs{v: v, lock: planLock(map[string][]string{"base": {"hello 2.10 amd64"}}), tools: planTools}
	c := newMemCache()
	in = c.complete(t, in)
	p := makePlan(in, c)
	if !p.done() || p.firstMiss() != nil {
		t.Fatalf("a cached chain is not done: %v", names(p))
	}
	if got := names(p); !slices.Equal(got, []string{StepBootstrap, "install:base", StepPostprocess, StepCommit}) {
		t.Fatalf("steps %v", got)
	}
	parent := ""
	for _, s := range p.steps {
		if !s.hit || s.result == "" || s.parent != parent {
			t.Errorf("%s: hit %v result %q parent %q, want parent %q", s.name(), s.hit, s.result, s.parent, parent)
		}
		// Each key covers the previous step's result: the chain of keys is
		// what a build stores and looks up.
		if want := preimage(s.step, v, parent, planTools, in.lock).Sum(); s.key != want {
			t.Errorf("%s: key %s, want %s", s.name(), s.key, want)
		}
		parent = s.result
	}
	if p.steps[3].result != in.refCommit {
		t.Errorf("commit hit is %q, want the ref's %q", p.steps[3].result, in.refCommit)
	}
	// Pure: the same inputs and cache give the same plan.
	again := makePlan(in, c)
	for i := range p.steps {
		if p.steps[i].key != again.steps[i].key || p.steps[i].result != again.steps[i].result {
			t.Errorf("%s differs between two plans", p.steps[i].name())
		}
	}
	// Another ref key (another builder version, metadata...) misses the commit only.
	in.refKey = "something else"
	if m := makePlan(in, c).firstMiss(); m == nil || m.kind != StepCommit || !strings.Contains(strings.Join(m.why, " "), "inputs changed since") {
		t.Errorf("a stale ref: %+v", m)
	}
}

func TestPlanOfAChildReusesItsParentsCachedLayers(t *testing.T) {
	files := map[string]string{"base": planBase, "c": child("c", "base", "zsh")}
	lock := planLock(map[string][]string{"base": {"hello 2.10 amd64"}, "c": {"zsh 5.9 amd64"}})
	c := newMemCache()
	base := c.complete(t, planInputs{v: planVariant(t, files, "base"), lock: lock, tools: planTools})
	basePlan := makePlan(base, c)

	p := makePlan(planInputs{v: planVariant(t, files, "c"), lock: lock, tools: planTools}, c)
	if got := names(p); !slices.Equal(got, []string{StepBootstrap, "install:base", "install:c"}) {
		t.Fatalf("child plan %v, want the base's layers then its own install", got)
	}
	for i := range 2 {
		if !p.steps[i].hit || p.steps[i].key != basePlan.steps[i].key || p.steps[i].result != basePlan.steps[i].result {
			t.Errorf("%s is not the base's cached step", p.steps[i].name())
		}
	}
	miss := p.firstMiss()
	if miss.hit || miss.parent != basePlan.steps[1].result || !slices.Equal(miss.why, []string{"not in cache"}) {
		t.Errorf("child's install: %+v", miss)
	}
	// What a child of c would share is c's layers: not stored yet. The
	// base's are, once only its postprocess or commit is left.
	if p.layersStored() {
		t.Errorf("c's layers are stored before its install ran")
	}
	fresh := makePlan(planInputs{v: planVariant(t, files, "base"), lock: lock, tools: planTools}, newMemCache()).layersStored()
	if !basePlan.layersStored() || fresh {
		t.Errorf("layersStored: a cached base %v, the base in a fresh cache %v", basePlan.layersStored(), fresh)
	}
}

func TestPlanOfAChangedPackageListMissesThatInstallAndSaysWhy(t *testing.T) {
	c := newMemCache()
	v := planVariant(t, map[string]string{"base": planBase}, "base")
	in := c.complete(t, planInputs{v: v, lock: planLock(map[string][]string{"base": {"hello 2.10 amd64"}}), tools: planTools})
	before := makePlan(in, c)

	in.v = planVariant(t, map[string]string{"base": strings.Replace(planBase, "[hello]", "[hello, tree]", 1)}, "base")
	in.lock = planLock(map[string][]string{"base": {"hello 2.10 amd64", "tree 2.2.1 amd64"}})
	p := makePlan(in, c)
	if got := names(p); !slices.Equal(got, []string{StepBootstrap, "install:base"}) {
		t.Fatalf("plan %v, want bootstrap cached and install missing", got)
	}
	if !p.steps[0].hit || p.steps[0].key != before.steps[0].key {
		t.Error("bootstrap is not the cached one")
	}
	miss := p.firstMiss()
	if miss.hit || miss.key == before.steps[1].key || miss.parent != before.steps[0].result {
		t.Fatalf("install: %+v", miss)
	}
	why := strings.Join(miss.why, "; ")
	if !strings.Contains(why, "packages: +tree") || !strings.Contains(why, "locked-packages: +tree 2.2.1 amd64") || strings.Contains(why, "parent") {
		t.Errorf("why %q, want the added package in packages and locked-packages only", why)
	}
}

// The plan sees what the executor stored: after a build, the plan over the
// real index is done, with the keys the build reported.
func TestPlanAgreesWithTheBuild(t *testing.T) {
	e := newTestEnv(t, "hello")
	rep := e.mustBuild()
	ctx := context.Background()
	s, vs, err := Open(ctx, e.cfg, []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := &variantBuild{Session: s, v: vs[0], tools: tools{}}
	for _, tool := range []string{vs[0].Bootstrap, "ostree"} {
		b.tools[tool], _ = s.host.ToolVersion(ctx, tool)
	}
	in, version := b.planInputs(ctx)
	p := makePlan(in, indexView{s.idx, b.validStored})
	if !p.done() || version != rep.Version {
		t.Fatalf("after a build the plan is not done (%v) or version %q != %q", names(p), version, rep.Version)
	}
	for i, st := range p.steps {
		if st.key != rep.Steps[i].Key || st.result != rep.Steps[i].Result {
			t.Errorf("%s: plan %s/%s, build %s/%s", st.name(), st.key.Short(), short(st.result), rep.Steps[i].Key.Short(), short(rep.Steps[i].Result))
		}
	}
}
