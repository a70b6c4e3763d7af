package remotecache

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/publish"
)

// PushReport is what a push did.
type PushReport struct {
	Dir      string
	Pushed   []string // refs added
	Present  int      // refs the folder had already
	Skipped  []string // index entries whose stored result failed its check
	KeyFile  string   // the public key exported beside the entries
	Bytes    int64    // bytes the folder grew by
	Duration time.Duration
}

// Push writes the step results the last builds made (the index's latest key
// of every variant's step) into the archive-mode repository dir: the result
// commit unchanged and signed, and a signed entry commit under the key's ref
// carrying what the index needs; then the public key. No summary: CI jobs
// push in parallel into one static host, which could not merge theirs (see
// ostreeops.RemoteAddSignedCommits). Keys the folder holds already are left
// alone, so pushing twice writes nothing.
func Push(ctx context.Context, cfg build.Config, signer *publish.Signer, dir string) (PushReport, error) {
	start := time.Now()
	rep := PushReport{Dir: dir}
	lock, err := build.LockCache(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer lock.Release()
	idx, err := cache.OpenIndex(cfg.IndexPath(), 5*time.Second)
	if err != nil {
		return rep, err
	}
	defer idx.Close()
	lasts, err := idx.Lasts()
	if err != nil {
		return rep, err
	}
	store := cfg.StoreRepo()
	dst := ostreeops.Repo{Path: dir, Runner: cfg.Runner}
	if err := dst.Init(ctx, "archive"); err != nil {
		return rep, fmt.Errorf("creating the remote cache folder %s: %w", dir, err)
	}
	before := dirSize(dir)
	seen := map[cache.Key]bool{}
	for _, owner := range sortedKeys(lasts) {
		last := lasts[owner]
		if seen[last.Key] {
			continue
		}
		seen[last.Key] = true
		e, ok := idx.Get(last.Key)
		if !ok || e.Kind == build.StepCommit {
			continue // the output commit is not a step result in the store
		}
		if err := store.VerifyCommit(e.Result, e.Size); err != nil {
			cfg.Log.Warn().Str("step", owner).Err(err).Msg("cache push: stored result damaged, not pushed")
			rep.Skipped = append(rep.Skipped, owner)
			continue
		}
		step := owner[strings.Index(owner, "/")+1:]
		added, err := pushEntry(ctx, store, dst, signer, Entry{Key: last.Key, Kind: e.Kind, Step: step, Result: e.Result,
			ResultSize: e.Size, TreeSize: e.TreeSize, Inputs: last.Fields})
		if err != nil {
			return rep, fmt.Errorf("pushing %s (%s): %w", owner, last.Key.Short(), err)
		}
		if added {
			rep.Pushed = append(rep.Pushed, Ref(e.Kind, last.Key))
			cfg.Log.Info().Str("step", owner).Str("key", last.Key.Short()).Str("result", short(e.Result)).Msg("cache push: pushed")
		} else {
			rep.Present++
		}
	}
	if rep.KeyFile, err = signer.ExportPublic(ctx, dir); err != nil {
		return rep, err
	}
	rep.Bytes, rep.Duration = dirSize(dir)-before, time.Since(start)
	return rep, nil
}

// pushEntry brings one result into dst with its signed entry commit; it
// reports false when dst has the entry already.
func pushEntry(ctx context.Context, store, dst ostreeops.Repo, signer *publish.Signer, e Entry) (bool, error) {
	ref := Ref(e.Kind, e.Key)
	if have, ok := dst.RevParse(ctx, ref); ok && dst.HasDetachedMetadata(have) && dst.HasDetachedMetadata(e.Result) {
		return false, nil
	}
	if err := dst.PullLocal(ctx, store.Path, e.Result); err != nil {
		return false, err
	}
	// A detached signature: the result keeps the checksum the index knows.
	if !dst.HasDetachedMetadata(e.Result) {
		if err := dst.GPGSign(ctx, e.Result, signer.ID, signer.Home); err != nil {
			return false, err
		}
	}
	meta, err := e.Strings()
	if err != nil {
		return false, err
	}
	// Fixed timestamp and content only: the same result gives the same entry.
	entry, err := dst.Commit(ctx, ostreeops.CommitOptions{Branch: ref, TreeRef: e.Result, Parent: e.Result,
		Timestamp: "1970-01-01T00:00:00Z", Strings: meta})
	if err != nil {
		return false, err
	}
	if !dst.HasDetachedMetadata(entry) {
		if err := dst.GPGSign(ctx, entry, signer.ID, signer.Home); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Text is the report for people.
func (r PushReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote cache %s: %d step results pushed, %d there already", r.Dir, len(r.Pushed), r.Present)
	if len(r.Pushed) > 0 {
		fmt.Fprintf(&b, ", %.1f MiB added", float64(r.Bytes)/(1<<20))
	}
	fmt.Fprintf(&b, " (%s)\n", r.Duration.Round(time.Millisecond))
	for _, p := range r.Pushed {
		fmt.Fprintf(&b, "  + %s\n", p)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "  ! %s: its stored result is damaged; rebuild it\n", s)
	}
	if r.KeyFile != "" {
		fmt.Fprintf(&b, "public key for readers (%s): %s\n", KeyEnv, r.KeyFile)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dirSize sums the sizes of the regular files below dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
