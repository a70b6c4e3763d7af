package build

import (
	"strconv"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/variants"
)

// Step kinds, in chain order.
const (
	StepBootstrap   = "bootstrap"
	StepInstall     = "install"
	StepPostprocess = "postprocess"
	StepCommit      = "commit"
)

// Steps is the chain of a variant without parents.
var Steps = []string{StepBootstrap, StepInstall, StepPostprocess, StepCommit}

// Schema versions: bump one when its step's behaviour changes.
const (
	bootstrapSchema = 4 // 3: SOURCE_DATE_EPOCH; 4: xattrs kept (file capabilities)
	installSchema   = 5 // 4: apt's pkgcache.bin and srcpkgcache.bin dropped from the result; 5: xattrs kept
	commitSchema    = 3 // 3: debian-atomic.root-tree
)

// epochEnv sets SOURCE_DATE_EPOCH from the lock for the commands that make a
// tree: mmdebstrap, dpkg's maintainer scripts (shadow's last-change days),
// dracut (--reproducible clamps file times to it). Without an epoch (an
// empty lock) commands see none.
func (b *variantBuild) epochEnv() []string {
	if b.lock == nil || b.lock.SourceDateEpoch == 0 {
		return nil
	}
	return []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(b.lock.SourceDateEpoch, 10)}
}

// tools are host tool versions that go into keys.
type tools map[string]string

// step is one link of a variant's chain. Install steps carry the layer
// (the variant in the inheritance chain) whose packages they add.
type step struct {
	kind  string
	layer *variants.Variant
}

// name is how reports and the index call the step: install steps are per
// layer, so a child's chain shares its parent's install steps.
func (s step) name() string {
	if s.kind == StepInstall {
		return StepInstall + ":" + s.layer.Name
	}
	return s.kind
}

// chain is a variant's steps: bootstrap, one install per layer from the base
// variant down, postprocess, commit.
func chain(v *variants.Variant) []step {
	out := []step{{kind: StepBootstrap}}
	for _, l := range v.Layers() {
		out = append(out, step{kind: StepInstall, layer: l})
	}
	return append(out, step{kind: StepPostprocess}, step{kind: StepCommit})
}

// preimage describes everything that decides a step's result. parent is the
// content digest of the previous step's result ("" for bootstrap); lock
// gives the exact package versions each step installs. The mirror is not an
// input: with versions locked (and packages signed) any mirror gives the same
// packages, so moving to another mirror, or losing it, rebuilds nothing.
func preimage(s step, v *variants.Variant, parent string, t tools, lock *variants.Lock) *cache.Preimage {
	base := v.Layers()[0]
	switch s.kind {
	case StepBootstrap:
		return cache.NewPreimage(s.kind, bootstrapSchema).
			Add("tool", base.Bootstrap).
			Add("tool-version", t[base.Bootstrap]).
			Add("suite", base.Suite).
			Add("apt-sources", base.SystemSources()). // suites and mirrors the committed system names
			Add("architecture", base.Architecture).
			AddList("components", base.Components).
			AddSet("locked-packages", lock.Bootstraps[base.BootstrapID()]).
			Add("source-date-epoch", epoch(lock))
	case StepInstall:
		p := cache.NewPreimage(s.kind, installSchema).
			Add("parent", parent).
			AddSet("sources", sourcesUpTo(s.layer)).
			Add("recommends", boolString(s.layer.Recommends)).
			AddSet("packages", s.layer.Packages).
			AddSet("locked-packages", lock.Variants[s.layer.Name].Packages).
			Add("source-date-epoch", epoch(lock))
		if len(s.layer.Files) > 0 {
			// only when given, so the keys of layers without files stay
			p.AddDigests("files", s.layer.Files)
		}
		return p
	case StepPostprocess:
		return cache.NewPreimage(s.kind, postprocessSchema).
			Add("parent", parent).
			Add("source-date-epoch", epoch(lock)).
			AddList("allowed-secrets", v.AllowedSecretPaths())
	case StepCommit:
		return cache.NewPreimage(s.kind, commitSchema).
			Add("parent", parent).
			Add("builder-version", Version).
			Add("ostree-version", t["ostree"]).
			Add("variant", v.Name).
			Add("description", v.Description).
			Add("ref", v.Ref).
			Add("os-name", v.OSName).
			Add("suite", v.Suite).
			AddList("kernel-args", v.KernelArgs).
			AddMap("metadata", v.Metadata)
	}
	panic("unknown step " + s.kind)
}

func epoch(lock *variants.Lock) string {
	if lock == nil {
		return "0"
	}
	return strconv.FormatInt(lock.SourceDateEpoch, 10)
}

// sourcesUpTo is the extra apt sources a layer installs with: its own and
// those of every layer under it.
func sourcesUpTo(layer *variants.Variant) []string {
	var out []string
	for _, l := range layer.Layers() {
		out = append(out, l.Sources...)
	}
	return out
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
