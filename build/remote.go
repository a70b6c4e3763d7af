package build

import (
	"context"
	"errors"
	"time"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
)

// RemoteCache is a step cache shared between machines (package remotecache
// implements it over OSTree's pull protocol). The builder asks it only on a
// local miss, so a build with nothing to do never contacts it.
type RemoteCache interface {
	// Fetch brings the result of step kind with key into the store, with its
	// signature checked, and returns it. ErrRemoteMiss (wrapped) means the
	// remote does not hold the key; any other error is worth a warning.
	Fetch(ctx context.Context, store ostreeops.Repo, kind string, key cache.Key) (RemoteResult, error)
}

// RemoteResult is a step result a remote cache brought into the store.
type RemoteResult struct {
	Result   string // the result commit, as the builder that pushed it stored it
	Size     int64  // its commit object's size, checked as for local hits
	TreeSize int64  // bytes in the tree, for the summary
}

// ErrRemoteMiss means the remote cache does not hold a key (or is off).
var ErrRemoteMiss = errors.New("not in the remote cache")

// StoreRepo is the step store (bare mode), for packages that read or fill it.
func (c Config) StoreRepo() ostreeops.Repo { return c.storeRepo() }

// IndexPath is the step index, for packages that read it holding the lock.
func (c Config) IndexPath() string { return c.indexPath() }

// fromRemote asks the remote cache for a step missing locally. The result is
// indexed only after the store's copy passes the same check as a local hit;
// any failure is one warning, and the step is built here.
func (b *variantBuild) fromRemote(ctx context.Context, r *stepRun, log logger) bool {
	if b.cfg.Remote == nil {
		return false
	}
	name, start := r.st.name(), time.Now()
	res, err := b.cfg.Remote.Fetch(ctx, b.store, r.st.kind, r.sr.Key)
	if err == nil {
		err = b.store.VerifyCommit(res.Result, res.Size)
	}
	if err == nil {
		err = b.idx.Put(r.sr.Key, cache.Entry{Kind: r.st.kind, Variant: b.v.Name, Result: res.Result,
			Size: b.store.CommitSize(res.Result), TreeSize: res.TreeSize, Created: time.Now(), Duration: time.Since(start)},
			lastOwner(r.st, b.v), name, r.pre.Fields())
	}
	switch {
	case errors.Is(err, ErrRemoteMiss):
		log.Debug().Str("step", name).Err(err).Msg(name + ": not in the remote cache")
		return false
	case err != nil:
		log.Warn().Str("step", name).Err(err).Msg(name + ": the remote cache's result is not used; building it here")
		return false
	}
	r.sr.Cached, r.sr.Remote, r.sr.Result, r.sr.Size = true, true, res.Result, res.TreeSize
	r.sr.Duration = time.Since(start)
	log.Info().Str("step", name).Str("key", r.sr.Key.Short()).Bool("cached", true).Bool("remote", true).
		Dur("duration", r.sr.Duration).Msg(name + ": remote hit")
	return true
}
