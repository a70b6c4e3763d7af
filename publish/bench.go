package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/internal/benchkit"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// PullFigures describe one client pull over HTTP.
type PullFigures struct {
	Duration   time.Duration
	Requests   int
	Bytes      int64    // response bodies
	Superblock bool     // a static delta's superblock was fetched
	Loose      int      // loose content and tree objects fetched (a delta pull fetches none)
	LooseSeen  []string `json:",omitempty"` // the first few of them
}

// BenchResult is one run of Bench.
type BenchResult struct {
	Variant, Added    string
	Ref               string
	First, Second     string // published commits
	Build, Rebuild    time.Duration
	Publish, Publish2 time.Duration // first publish; publish of the one-package rebuild
	NoOpPublish       time.Duration
	CommitSize        int64       // full pull of the second commit, as stored
	DeltaSize         int64       // static delta first -> second
	FullPull          PullFigures // host ostree, fresh client
	DeltaPull         PullFigures // host ostree, client on the first commit
	// The delta pull by the ostree inside the commit (what machines run),
	// in a chroot of the first commit; zero when the variant has no ostree.
	MachinePull   PullFigures
	MachineOstree string
	// Where things are, for the end-to-end test's further checks.
	PublishDir, KeyFile, GnuPGHome string
	Config                         build.Config `json:"-"`
	Settings                       *Settings    `json:"-"`
}

// Bench measures publishing in a fresh cache under dir: build variant name
// (its parents too), make a key, publish; add package extra, rebuild,
// publish again (a static delta); then over loopback HTTP a fresh client's
// full pull of the second commit against the delta pull of a client that
// has the first. Packages come from cfg's package cache.
func Bench(ctx context.Context, cfg build.Config, name, extra, dir string) (res BenchResult, err error) {
	res = BenchResult{Variant: name, Added: extra}
	if os.Getenv(Env) != "" {
		return res, fmt.Errorf("%s is set: unset it, the benchmark publishes into %s", Env, dir)
	}
	c, err := benchkit.Fresh(cfg, dir, SettingsFile)
	if err != nil {
		return res, err
	}
	vdir := c.VariantsDir
	s := &Settings{Keep: DefaultKeep, GnuPGHome: filepath.Join(dir, "gnupg"), Repo: filepath.Join(dir, "publish")}
	res.Config, res.Settings, res.PublishDir, res.GnuPGHome = c, s, s.Repo, s.GnuPGHome
	defer gpg{runner: c.Runner, home: s.GnuPGHome}.stopAgent(context.WithoutCancel(ctx))

	var reps []build.Report
	if res.Build, reps, err = benchkit.Build(ctx, c, name); err != nil {
		return res, err
	}
	res.Ref = reps[0].Ref
	key, err := Keygen(ctx, c, s)
	if err != nil {
		return res, err
	}
	res.KeyFile = key.PublicKey
	start := time.Now()
	if _, err := Publish(ctx, c, s, []string{name}); err != nil {
		return res, err
	}
	res.Publish = time.Since(start)

	srv := NewServer(s.Repo, c.Log)
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer srv.Close()
	// The client that will take the delta has the first commit.
	deltaClient := ostreeops.Repo{Path: filepath.Join(dir, "client-delta"), Runner: c.Runner}
	if err := clientPull(ctx, deltaClient, url, res.KeyFile, res.Ref); err != nil {
		return res, err
	}

	if err := variants.AddPackage(vdir, name, extra); err != nil {
		return res, err
	}
	if res.Rebuild, _, err = benchkit.Build(ctx, c, name); err != nil {
		return res, err
	}
	start = time.Now()
	rep, err := Publish(ctx, c, s, []string{name})
	if err != nil {
		return res, err
	}
	res.Publish2 = time.Since(start)
	rr := rep.Refs[0]
	res.First, res.Second, res.DeltaSize, res.CommitSize = rr.Old, rr.New, rr.DeltaSize, rr.CommitSize
	if rr.Delta == "" {
		return res, fmt.Errorf("the second publish made no static delta from %s", short(rr.Old))
	}
	start = time.Now()
	if rep, err := Publish(ctx, c, s, []string{name}); err != nil {
		return res, err
	} else if rep.Changed() {
		return res, fmt.Errorf("publishing with nothing new changed the repository: %+v", rep)
	}
	res.NoOpPublish = time.Since(start)

	if res.DeltaPull, err = timedPull(srv, func() error { return deltaClient.Pull(ctx, "origin", res.Ref) }); err != nil {
		return res, fmt.Errorf("delta pull: %w", err)
	}
	if res.FullPull, err = timedPull(srv, func() error {
		return clientPull(ctx, ostreeops.Repo{Path: filepath.Join(dir, "client-full"), Runner: c.Runner}, url, res.KeyFile, res.Ref)
	}); err != nil {
		return res, err
	}

	// The same delta pull by the ostree machines run: the one in the first
	// commit (trixie's), when the variant has it.
	out := ostreeops.Repo{Path: c.RepoDir, Runner: c.Runner}
	tc, err := newTreeClient(ctx, out, res.First, filepath.Join(dir, "machine"))
	switch {
	case errors.Is(err, errNoOstree):
		c.Log.Warn().Str("variant", name).Msg("bench: the variant has no ostree; no pull by the machine's own ostree")
	case err != nil:
		return res, err
	default:
		defer func() {
			if cerr := tc.Close(); err == nil {
				err = cerr
			}
		}()
		res.MachineOstree = tc.version(ctx)
		if err := tc.addRemote(ctx, url, res.KeyFile); err != nil {
			return res, err
		}
		if _, err := tc.ostree(ctx, "pull", "origin", res.Ref+"@"+res.First); err != nil {
			return res, fmt.Errorf("the machine's ostree pulling the first commit: %w", err)
		}
		if res.MachinePull, err = timedPull(srv, func() error {
			_, err := tc.ostree(ctx, "pull", "origin", res.Ref)
			return err
		}); err != nil {
			return res, fmt.Errorf("the machine's ostree pulling the second commit: %w", err)
		}
		if got, _ := tc.ostree(ctx, "rev-parse", "origin:"+res.Ref); got != res.Second {
			return res, fmt.Errorf("the machine's ostree pulled %s, published %s", got, res.Second)
		}
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	os.WriteFile(filepath.Join(dir, "bench-publish.json"), data, 0o644)
	return res, nil
}

// clientPull makes a fresh client repository that trusts keyFile and pulls
// ref from url with signature verification.
func clientPull(ctx context.Context, client ostreeops.Repo, url, keyFile, ref string) error {
	if err := client.Init(ctx, "bare-user"); err != nil {
		return err
	}
	if err := client.RemoteAdd(ctx, "origin", url, keyFile); err != nil {
		return err
	}
	if err := client.Pull(ctx, "origin", ref); err != nil {
		return fmt.Errorf("pulling %s from %s: %w", ref, url, err)
	}
	return nil
}

// timedPull runs pull with srv's request log emptied first, and says what
// the pull cost: its time and what it fetched.
func timedPull(srv *Server, pull func() error) (PullFigures, error) {
	srv.Reset()
	start := time.Now()
	if err := pull(); err != nil {
		return PullFigures{}, err
	}
	return figures(srv.Requests(), time.Since(start)), nil
}

func figures(reqs []Request, d time.Duration) PullFigures {
	f := PullFigures{Duration: d, Requests: len(reqs)}
	for _, r := range reqs {
		f.Bytes += r.Bytes
		if strings.HasPrefix(r.Path, "/deltas/") && strings.HasSuffix(r.Path, "/superblock") {
			f.Superblock = true
		}
		if strings.HasPrefix(r.Path, "/objects/") && (strings.HasSuffix(r.Path, ".filez") || strings.HasSuffix(r.Path, ".dirtree") || strings.HasSuffix(r.Path, ".dirmeta")) {
			f.Loose++
			if len(f.LooseSeen) < 10 {
				f.LooseSeen = append(f.LooseSeen, fmt.Sprintf("%s (%d bytes)", r.Path, r.Bytes))
			}
		}
	}
	return f
}

// BenchTable prints a run's figures.
func BenchTable(r BenchResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "publishing %s, then %s with %s added (%s):\n", r.Variant, r.Variant, r.Added, r.Ref)
	fmt.Fprintf(&b, "  build %s, rebuild %s\n", r.Build.Round(time.Second), r.Rebuild.Round(time.Second))
	fmt.Fprintf(&b, "  publish: first %s, after the rebuild %s, again with nothing new %s\n",
		r.Publish.Round(10*time.Millisecond), r.Publish2.Round(10*time.Millisecond), r.NoOpPublish.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  static delta %s against a full pull of %s (%.1f%%)\n", mib(r.DeltaSize), mib(r.CommitSize), 100*float64(r.DeltaSize)/float64(max(r.CommitSize, 1)))
	for _, p := range []struct {
		name string
		f    PullFigures
	}{{"full pull (host ostree)", r.FullPull}, {"delta pull (host ostree)", r.DeltaPull}, {"delta pull (ostree " + r.MachineOstree + " of the commit)", r.MachinePull}} {
		if p.f.Requests == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s over loopback: %s, %d requests, %s, delta superblock %v, loose objects %d\n",
			p.name, p.f.Duration.Round(time.Millisecond), p.f.Requests, mib(p.f.Bytes), p.f.Superblock, p.f.Loose)
	}
	return b.String()
}
