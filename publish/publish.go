package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// RefReport is what publishing did to one ref.
type RefReport struct {
	Variant    string
	Ref        string
	Old        string        // previously published commit, "" for none
	New        string        // published commit now (the built commit, same checksum)
	NewCommit  bool          // false: nothing new for this ref
	Brought    int           // commits brought in: the new one and the parents that came with it
	Delta      string        // "FROM-TO" of the static delta made, "" for none
	DeltaSize  int64         // bytes of that delta
	CommitSize int64         // bytes a full pull of the new commit fetches (every object it reaches)
	Pruned     []string      // commits of this ref's history pruned by the retention depth
	Duration   time.Duration // bringing in, signing and the delta
}

// Report is one publish run.
type Report struct {
	Repo          string // publish repository
	Refs          []RefReport
	Signed        bool
	KeyID         string // fingerprint that signed, "" when unsigned
	KeyFile       string // exported public key, "" when unsigned
	Summary       bool   // the summary was regenerated (and signed)
	PrunedCommits []string
	PrunedDeltas  []string
	Duration      time.Duration
}

// Changed reports whether the run wrote anything into the repository.
func (r Report) Changed() bool {
	return r.Summary || len(r.PrunedCommits) > 0 || len(r.PrunedDeltas) > 0
}

// InlineDeltaMax is the largest static delta written as one file (its
// parts inlined into the superblock). Beyond it, parts are separate files.
// One file is also what makes ostree 2022.7 clients (Debian 12) take the
// delta alone: with separate parts, a pull that gets the commit's signature
// before the part has been applied also fetches some of the changed
// objects loose (seen here: 4 to 8 objects of a one-package change).
const InlineDeltaMax = 32 << 20

type target struct{ variant, ref string }

// Publish brings the built refs of the variants names (every variant with a
// built ref when empty) into the publish repository, holding the build
// lock: each new commit unchanged with the parents the retention depth
// keeps, signed, with a static delta from the previously published commit;
// then prunes beyond the depth and regenerates the signed summary. Every
// reason to stop (no key, no gpg, a variant never built) is found before
// anything is written; with nothing new, nothing is written.
func Publish(ctx context.Context, cfg build.Config, s *Settings, names []string) (Report, error) {
	start := time.Now()
	if s.Keep < 1 { // Settings made in code rather than loaded
		withDefault := *s
		withDefault.Keep = DefaultKeep
		s = &withDefault
	}
	pub := ostreeops.Repo{Path: s.RepoDir(cfg), Runner: cfg.Runner}
	out := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
	rep := Report{Repo: pub.Path, Signed: !s.Unsigned}
	log := cfg.Log.With().Str("repo", pub.Path).Logger()

	if _, err := exec.LookPath("ostree"); err != nil {
		return rep, errors.New("ostree is missing: install it (apt-get install --no-install-recommends ostree); nothing was published")
	}
	g := gpg{runner: cfg.Runner, home: s.Home(cfg)}
	if !s.Unsigned {
		if _, err := exec.LookPath("gpg"); err != nil {
			return rep, fmt.Errorf("gpg is missing, and publishing signs with GPG: install gnupg (apt-get install --no-install-recommends gnupg), or write `signing: none` in %s to publish unsigned; nothing was published", SettingsFile)
		}
		id, err := s.Key(cfg)
		if err != nil {
			return rep, fmt.Errorf("%w; nothing was published", err)
		}
		fpr, err := g.secretKey(ctx, id)
		if err != nil {
			return rep, fmt.Errorf("the signing key %s is not in %s (%v): run `go run mage.go keygen`, or set key-id and gnupg-home in %s; nothing was published", id, g.home, err, SettingsFile)
		}
		if err := g.canSign(ctx, fpr); err != nil {
			return rep, fmt.Errorf("the key %s in %s cannot sign without a passphrase prompt (%v): publishing runs unattended; nothing was published", fpr, g.home, err)
		}
		rep.KeyID = fpr
		if s.ownHome() {
			defer g.stopAgent(context.WithoutCancel(ctx))
		}
	}
	targets, err := resolveTargets(ctx, cfg, out, names)
	if err != nil {
		return rep, err
	}

	lock, err := build.LockCache(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer lock.Release()
	if err := pub.Init(ctx, "archive"); err != nil {
		return rep, fmt.Errorf("creating the publish repository %s: %w", pub.Path, err)
	}
	changed := false
	for _, t := range targets {
		rr, err := publishRef(ctx, cfg, s, out, pub, t, rep.KeyID, g.home)
		if err != nil {
			return rep, fmt.Errorf("publishing %s (%s): %w", t.variant, t.ref, err)
		}
		changed = changed || rr.NewCommit
		rep.Refs = append(rep.Refs, rr)
	}
	if rep.Signed {
		path, _, err := exportKey(ctx, g, rep.KeyID, pub.Path)
		if err != nil {
			return rep, err
		}
		rep.KeyFile = path
	}
	if err := prune(ctx, s, pub, &rep); err != nil {
		return rep, err
	}
	if rep.Signed {
		// Commits published before signing was set up get signed now.
		if n, err := signUnsigned(ctx, pub, rep.KeyID, g.home); err != nil {
			return rep, err
		} else if n > 0 {
			changed = true
		}
	}
	if changed || rep.Changed() || !summaryOK(pub.Path, rep.Signed) {
		if err := pub.UpdateSummary(ctx, rep.KeyID, g.home); err != nil {
			return rep, fmt.Errorf("regenerating the summary: %w", err)
		}
		rep.Summary = true
	}
	rep.Duration = time.Since(start)
	log.Info().Int("refs", len(rep.Refs)).Bool("summary", rep.Summary).Bool("signed", rep.Signed).
		Dur("duration", rep.Duration).Msg("publish: done")
	return rep, nil
}

// resolveTargets maps variant names to refs that have a built commit.
func resolveTargets(ctx context.Context, cfg build.Config, out ostreeops.Repo, names []string) ([]target, error) {
	all := len(names) == 0
	if all {
		var err error
		if names, err = variants.List(cfg.VariantsDir); err != nil {
			return nil, err
		}
	}
	var ts []target
	for _, n := range names {
		v, err := variants.Load(cfg.VariantsDir, n)
		if err != nil {
			return nil, err
		}
		if _, ok := out.RevParse(ctx, v.Ref); !ok || !out.Exists() {
			if all {
				cfg.Log.Info().Str("variant", n).Msg("publish: not built, skipped")
				continue
			}
			return nil, fmt.Errorf("variant %s has no commit in %s yet: build it first (go run mage.go build:variant %s); nothing was published", n, out.Path, n)
		}
		ts = append(ts, target{n, v.Ref})
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("nothing to publish: no variant has a commit in %s yet; build one first (go run mage.go build:minimal)", out.Path)
	}
	return ts, nil
}

func publishRef(ctx context.Context, cfg build.Config, s *Settings, out, pub ostreeops.Repo, t target, key, home string) (RefReport, error) {
	start := time.Now()
	rr := RefReport{Variant: t.variant, Ref: t.ref}
	built, ok := out.RevParse(ctx, t.ref)
	if !ok {
		return rr, fmt.Errorf("the ref is gone from %s", out.Path)
	}
	old, _ := pub.RevParse(ctx, t.ref)
	rr.Old, rr.New = old, built
	log := cfg.Log.With().Str("variant", t.variant).Str("ref", t.ref).Str("commit", built).Logger()
	if old == built {
		log.Info().Msg("publish: already published")
		return rr, nil
	}
	var ancestors []string
	for c := built; len(ancestors) < s.Keep; {
		if c = out.Parent(ctx, c); c == "" || !out.HasCommit(c) {
			break
		}
		ancestors = append(ancestors, c)
	}
	from, bring := deltaFrom(old, ancestors, s.Keep)
	if old != "" && from == "" {
		log.Warn().Str("old", old).Msgf("publish: the published commit is not among the last %d of the built history (the output repository was rebuilt, or more builds than keep happened since): no delta, machines on it pull the new commit whole", s.Keep)
	}
	if err := pub.PullLocalCommits(ctx, out.Path, built, bring); err != nil {
		return rr, fmt.Errorf("bringing %s into %s: %w", short(built), pub.Path, err)
	}
	rr.Brought = 1 + bring
	if key != "" {
		chain := append([]string{built}, ancestors[:bring]...)
		for _, c := range chain {
			if pub.HasDetachedMetadata(c) {
				continue
			}
			// Signed before the delta, whose superblock carries the signature.
			if err := pub.GPGSign(ctx, c, key, home); err != nil {
				return rr, fmt.Errorf("signing %s with %s: %w", short(c), key, err)
			}
		}
	}
	if from != "" {
		d := ostreeops.Delta{From: from, To: built}
		if err := pub.StaticDeltaGenerate(ctx, d, true); err != nil {
			return rr, fmt.Errorf("static delta %s -> %s: %w", short(from), short(built), err)
		}
		if pub.StaticDeltaSize(d) > InlineDeltaMax {
			// A client holds a superblock in memory: big deltas get parts.
			if err := pub.StaticDeltaDelete(ctx, d); err != nil {
				return rr, err
			}
			if err := pub.StaticDeltaGenerate(ctx, d, false); err != nil {
				return rr, fmt.Errorf("static delta %s -> %s: %w", short(from), short(built), err)
			}
		}
		rr.Delta, rr.DeltaSize = d.String(), pub.StaticDeltaSize(d)
	}
	if err := pub.SetRef(ctx, t.ref, built); err != nil {
		return rr, err
	}
	rr.NewCommit, rr.Duration = true, time.Since(start)
	size, err := pub.ArchiveCommitSize(ctx, built)
	if err != nil {
		return rr, err
	}
	rr.CommitSize = size
	log.Info().Str("old", short(old)).Int("brought", rr.Brought).Int64("delta_bytes", rr.DeltaSize).
		Int64("commit_bytes", rr.CommitSize).Dur("duration", rr.Duration).Msg("publish: published")
	return rr, nil
}

// history walks a ref's commits in the publish repository, newest first,
// as far as parents are present.
func history(ctx context.Context, pub ostreeops.Repo, ref string) []string {
	head, ok := pub.RevParse(ctx, ref)
	if !ok {
		return nil
	}
	chain := []string{head}
	for c := head; ; {
		if c = pub.Parent(ctx, c); c == "" || !pub.HasCommit(c) || contains(chain, c) {
			return chain
		}
		chain = append(chain, c)
	}
}

// signUnsigned signs every ref's retained commits that carry no signature
// (published while signing: none).
func signUnsigned(ctx context.Context, pub ostreeops.Repo, key, home string) (int, error) {
	refs, err := pub.LocalRefs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ref := range refs {
		for _, c := range history(ctx, pub, ref) {
			if !pub.HasDetachedMetadata(c) {
				if err := pub.GPGSign(ctx, c, key, home); err != nil {
					return n, fmt.Errorf("signing %s with %s: %w", short(c), key, err)
				}
				n++
			}
		}
	}
	return n, nil
}

// prune applies the retention depth to every ref of the repository.
func prune(ctx context.Context, s *Settings, pub ostreeops.Repo, rep *Report) error {
	refs, err := pub.LocalRefs(ctx)
	if err != nil {
		return err
	}
	chains := map[string][]string{}
	for _, ref := range refs {
		chains[ref] = history(ctx, pub, ref)
	}
	present, err := pub.Commits()
	if err != nil {
		return err
	}
	deltas, err := pub.StaticDeltas(ctx)
	if err != nil {
		return err
	}
	commits, gone := retention(chains, present, deltas, s.Keep)
	if len(commits) > 0 {
		if err := pub.PruneRefs(ctx, s.Keep-1); err != nil {
			return fmt.Errorf("pruning beyond %d commits per ref: %w", s.Keep, err)
		}
		for _, c := range commits {
			if pub.HasCommit(c) {
				return fmt.Errorf("pruning kept %s, which is beyond the retention depth", short(c))
			}
		}
		for i := range rep.Refs {
			for _, c := range chains[rep.Refs[i].Ref] {
				if contains(commits, c) {
					rep.Refs[i].Pruned = append(rep.Refs[i].Pruned, c)
				}
			}
		}
		rep.PrunedCommits = commits
	}
	if len(gone) == 0 {
		return nil
	}
	// ostree's prune removes the deltas that lead to the commits it deletes;
	// those that start from them are left to remove here.
	left, err := pub.StaticDeltas(ctx)
	if err != nil {
		return err
	}
	for _, d := range gone {
		if slices.Contains(left, d) {
			if err := pub.StaticDeltaDelete(ctx, d); err != nil {
				return err
			}
		}
		rep.PrunedDeltas = append(rep.PrunedDeltas, d.String())
	}
	return nil
}

// summaryOK reports whether the repository has a summary (and its
// signature when signing): otherwise it is made even with nothing new.
func summaryOK(dir string, signed bool) bool {
	if _, err := os.Stat(filepath.Join(dir, "summary")); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "summary.sig"))
	return signed == (err == nil) // unsigned: a signature left from before is stale
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
