package build

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
)

// Metadata keys the builder writes on every commit.
const (
	MetaInputKey = "debian-atomic.input-key"
	MetaPackages = "debian-atomic.packages" // a(sss): name, version, architecture
	MetaVariant  = "debian-atomic.variant"
	MetaVersion  = "version"
	// MetaRootTree is the commit's root tree checksum: the same for every
	// build of the same lock, so anyone can rebuild a commit and compare.
	MetaRootTree = "debian-atomic.root-tree"
)

// commit points the variant's ref at a new commit over the stored
// postprocess tree (its parent the ref's previous commit); the plan found
// that the ref's last commit was not made from exactly the same inputs.
func (b *variantBuild) commit(ctx context.Context, ps plannedStep, prevVersion string, log logger, rep *Report) (StepReport, error) {
	v, parent, key := b.v, ps.parent, ps.key
	sr := StepReport{Variant: v.Name, Step: StepCommit, Name: StepCommit, Key: key, Reason: strings.Join(ps.why, "; ")}
	log.Info().Str("step", StepCommit).Str("key", key.Short()).Bool("cached", false).Str("reason", sr.Reason).Msg("commit: running")
	start := time.Now()

	status, err := b.store.Cat(ctx, parent, "/"+dpkgDatabase+"/status")
	if err != nil {
		return sr, fmt.Errorf("reading the package list of %s: %w", v.Name, err)
	}
	pkgs := installedPackages(status)
	osRelease, _ := b.store.Cat(ctx, parent, "/usr/lib/os-release")
	version := nextVersion(prevVersion, osReleaseField(string(osRelease), "VERSION_ID"), time.Now().UTC())

	rootTree, err := b.store.RootTree(ctx, parent)
	if err != nil {
		return sr, fmt.Errorf("reading the root tree of %s: %w", v.Name, err)
	}
	// The tree is already in the repository (one repository holds step
	// results and refs): the commit below writes one commit object over it.
	opts := ostreeops.CommitOptions{
		Branch:   v.Ref,
		TreeRef:  parent,
		Subject:  fmt.Sprintf("%s %s", v.Name, version),
		Bootable: ostreeops.SupportsBootable(b.tools["ostree"]) && hasKernel(ctx, b.store, parent),
		Strings: map[string]string{
			MetaVersion:                     version,
			MetaVariant:                     v.Name,
			MetaInputKey:                    string(key),
			"debian-atomic.suite":           v.Suite,
			"debian-atomic.mirror":          v.Mirror,
			"debian-atomic.architecture":    v.Architecture,
			"debian-atomic.os-name":         v.OSName,
			"debian-atomic.builder-version": Version,
			"debian-atomic.bootstrap":       v.Bootstrap,
			"debian-atomic.description":     v.Description,
			"debian-atomic.tree":            parent,
			MetaRootTree:                    rootTree,
		},
		Variants: map[string]string{
			MetaPackages:                packagesGVariant(pkgs),
			"debian-atomic.kernel-args": stringsGVariant(v.KernelArgs),
		},
	}
	for k, val := range v.Metadata {
		opts.Strings[k] = val
	}
	commit, err := b.out.Commit(ctx, opts)
	if err != nil {
		return sr, fmt.Errorf("committing %s to %s: %w", v.Ref, b.out.Path, err)
	}
	sr.Result, sr.Duration = commit, time.Since(start)
	rep.Commit, rep.Version, rep.NewCommit = commit, version, true
	b.idx.Put(key, cacheEntryFor(StepCommit, v.Name, commit, sr.Duration), v.Name, StepCommit, ps.pre.Fields())
	log.Info().Str("step", StepCommit).Str("ref", v.Ref).Str("commit", commit).Str("version", version).
		Int("packages", len(pkgs)).Dur("duration", sr.Duration).Msg("commit: done")
	return sr, nil
}

// commitMeta reads the builder's own metadata keys of a commit.
func (b *variantBuild) commitMeta(ctx context.Context, commit string) map[string]string {
	return readMeta(ctx, b.out, commit, MetaInputKey, MetaVersion)
}

func readMeta(ctx context.Context, repo ostreeops.Repo, commit string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		text, err := repo.Metadata(ctx, commit, k)
		if err != nil {
			continue
		}
		if s := ostreeops.GVariantStrings(text); len(s) > 0 {
			out[k] = s[0]
		}
	}
	return out
}

func hasKernel(ctx context.Context, repo ostreeops.Repo, commit string) bool {
	out, err := repo.Ls(ctx, commit, false, "/usr/lib/modules")
	return err == nil && strings.Contains(string(out), "/usr/lib/modules/")
}

// nextVersion numbers commits like Fedora CoreOS: OSVERSION.YYYYMMDD.N.
func nextVersion(prev, osVersion string, now time.Time) string {
	if osVersion == "" {
		osVersion = "0"
	}
	prefix := fmt.Sprintf("%s.%s.", osVersion, now.Format("20060102"))
	if rest, ok := strings.CutPrefix(prev, prefix); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			return prefix + strconv.Itoa(n+1)
		}
	}
	return prefix + "0"
}

func osReleaseField(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func packagesGVariant(pkgs [][3]string) string {
	if len(pkgs) == 0 {
		return "@a(sss) []"
	}
	parts := make([]string, len(pkgs))
	for i, p := range pkgs {
		parts[i] = fmt.Sprintf("(%s, %s, %s)", ostreeops.GVariantString(p[0]), ostreeops.GVariantString(p[1]), ostreeops.GVariantString(p[2]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func stringsGVariant(l []string) string {
	if len(l) == 0 {
		return "@as []"
	}
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = ostreeops.GVariantString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func cacheEntryFor(step, variant, result string, d time.Duration) cache.Entry {
	return cache.Entry{Kind: step, Variant: variant, Result: result, Created: time.Now(), Duration: d}
}
