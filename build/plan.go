package build

import (
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/variants"
)

// planInputs is everything that decides a variant's step keys.
type planInputs struct {
	v     *variants.Variant
	lock  *variants.Lock
	tools tools
	// refCommit is the variant ref's current commit ("" for none) and
	// refKey the input key it was made from: the commit step is a hit when
	// its key equals refKey.
	refCommit string
	refKey    string
}

// cacheView is what a plan reads of the cache. A plan only reads: the
// executor and status decide what a lookup may check (and drop) on the way.
type cacheView interface {
	// lookup returns a key's result, or on a miss why it missed.
	lookup(key cache.Key) (e cache.Entry, ok bool, why string)
	// last is the latest key recorded for an owner's step, with its preimage.
	last(owner, step string) (cache.Last, bool)
}

// plannedStep is one step of a plan: its key, and whether the cache holds it.
type plannedStep struct {
	step
	parent string // the previous step's result ("" for bootstrap)
	pre    *cache.Preimage
	key    cache.Key
	hit    bool
	result string   // a hit's result: a store commit, or the ref's commit
	size   int64    // a hit's tree size, for the summary
	why    []string // a miss: the inputs that changed, else the lookup's reason
}

// plan is a variant's chain with keys and hits resolved down to the first
// miss: a key names the previous step's result, so the keys after a miss
// are known only once it has run.
type plan struct {
	chain []step
	steps []plannedStep // the hits, then the first miss, if any
}

// makePlan resolves v's chain against the cache. It has no side effects
// beyond what c's lookups do.
func makePlan(in planInputs, c cacheView) plan {
	p := plan{chain: chain(in.v)}
	parent := ""
	for _, st := range p.chain {
		pre := preimage(st, in.v, parent, in.tools, in.lock)
		ps := plannedStep{step: st, parent: parent, pre: pre, key: pre.Sum()}
		why := ""
		if st.kind == StepCommit {
			ps.hit = in.refCommit != "" && in.refKey == string(ps.key)
			ps.result = in.refCommit
			why = "the ref " + in.v.Ref + " does not exist yet"
			if in.refCommit != "" {
				why = "inputs changed since " + short(in.refCommit)
			}
		} else {
			var e cache.Entry
			e, ps.hit, why = c.lookup(ps.key)
			ps.result, ps.size = e.Result, e.TreeSize
		}
		if !ps.hit {
			ps.why = whyMiss(c, lastOwner(st, in.v), st.name(), ps.key, ps.pre, why)
			ps.result, ps.size = "", 0
		}
		p.steps = append(p.steps, ps)
		if !ps.hit {
			break
		}
		parent = ps.result
	}
	return p
}

// done is whether every step is a hit: a build would change nothing.
func (p plan) done() bool {
	return len(p.steps) == len(p.chain) && p.steps[len(p.steps)-1].hit
}

// layersStored is whether every layer step (the bootstrap, the installs)
// is a hit: what a child of the variant shares is in the cache.
func (p plan) layersStored() bool {
	m := p.firstMiss()
	return m == nil || (m.kind != StepBootstrap && m.kind != StepInstall)
}

// firstMiss is the step a build runs next, nil when done.
func (p plan) firstMiss() *plannedStep {
	if p.done() {
		return nil
	}
	return &p.steps[len(p.steps)-1]
}

// whyMiss explains a miss by the inputs that changed since the owner's
// step last ran; with none changed (or no earlier run), why stands.
func whyMiss(c cacheView, owner, name string, key cache.Key, pre *cache.Preimage, why string) []string {
	last, ok := c.last(owner, name)
	if !ok || last.Key == key {
		return []string{why}
	}
	if d := cache.Diff(last.Fields, pre.Fields()); len(d) > 0 {
		return d
	}
	return []string{why}
}

// indexView reads an index (nil: no cache yet), checking each hit with valid.
type indexView struct {
	idx   *cache.Index
	valid cache.Validator
}

func (x indexView) lookup(key cache.Key) (cache.Entry, bool, string) {
	if x.idx == nil {
		return cache.Entry{}, false, "not in cache"
	}
	return x.idx.Lookup(key, x.valid)
}

func (x indexView) last(owner, step string) (cache.Last, bool) {
	if x.idx == nil {
		return cache.Last{}, false
	}
	return x.idx.Last(owner, step)
}
