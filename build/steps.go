package build

import (
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

// Steps is the chain every variant goes through.
var Steps = []string{StepBootstrap, StepInstall, StepPostprocess, StepCommit}

// Schema versions: bump one when its step's behaviour changes.
const (
	bootstrapSchema = 1
	installSchema   = 1
	commitSchema    = 1
)

// tools are host tool versions that go into keys.
type tools map[string]string

// preimage describes everything that decides a step's result. parent is the
// content digest of the previous step's result ("" for bootstrap).
func preimage(step string, v *variants.Variant, parent string, t tools) *cache.Preimage {
	switch step {
	case StepBootstrap:
		p := cache.NewPreimage(step, bootstrapSchema).
			Add("tool", v.Bootstrap).
			Add("tool-version", t[v.Bootstrap]).
			Add("suite", v.Suite).
			Add("mirror", v.Mirror).
			Add("architecture", v.Architecture).
			AddList("components", v.Components)
		return p
	case StepInstall:
		return cache.NewPreimage(step, installSchema).
			Add("parent", parent).
			Add("mirror", v.Mirror).
			Add("recommends", boolString(v.Recommends)).
			AddSet("packages", v.Packages)
	case StepPostprocess:
		return cache.NewPreimage(step, postprocessSchema).
			Add("parent", parent)
	case StepCommit:
		return cache.NewPreimage(step, commitSchema).
			Add("parent", parent).
			Add("builder-version", Version).
			Add("ostree-version", t["ostree"]).
			Add("variant", v.Name).
			Add("description", v.Description).
			Add("ref", v.Ref).
			Add("os-name", v.OSName).
			Add("suite", v.Suite).
			Add("mirror", v.Mirror).
			AddList("kernel-args", v.KernelArgs).
			AddMap("metadata", v.Metadata)
	}
	panic("unknown step " + step)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
