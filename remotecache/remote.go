package remotecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/publish"
)

// Settings come from the environment, so a CI job sets them without editing
// the project.
const (
	URLEnv = "DEBIAN_ATOMIC_REMOTE_CACHE" // the remote cache's URL (http, https or file)
	// KeyEnv names the public key (a binary or armored keyring) the remote's
	// commits must be signed with. Default: the key `mage keygen` exported
	// beside the publish repository.
	KeyEnv = "DEBIAN_ATOMIC_REMOTE_CACHE_KEY"
)

// RemoteName is the remote the store's configuration gets.
const RemoteName = "debian-atomic-cache"

// Deadlines: the probe fetches commit objects only, so a remote that does not
// answer is given up on quickly; the pull of the trees may take long.
const (
	DefaultProbeTimeout = 20 * time.Second
	DefaultPullTimeout  = 30 * time.Minute
)

// Remote is a remote step cache, a build.RemoteCache.
type Remote struct {
	URL, KeyFile              string
	ProbeTimeout, PullTimeout time.Duration
	Log                       zerolog.Logger

	mu         sync.Mutex
	configured map[string]bool // stores whose configuration has the remote
	off        error           // the failure that turned the remote off
}

// FromEnv reads the settings; it returns nil when no remote cache is set.
// A URL that is not one, or a missing key file, is an error naming the
// variable, before anything is done.
func FromEnv(cfg build.Config) (*Remote, error) {
	raw := strings.TrimSpace(os.Getenv(URLEnv))
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return nil, fmt.Errorf("%s=%q is not a remote cache URL: give http://HOST/PATH, https://HOST/PATH or file:///PATH", URLEnv, raw)
	}
	key := os.Getenv(KeyEnv)
	if key == "" {
		s, err := publish.LoadSettings(cfg.VariantsDir)
		if err != nil {
			return nil, err
		}
		key = filepath.Join(s.RepoDir(cfg), publish.KeyFileName)
	}
	if abs, err := filepath.Abs(key); err == nil {
		key = abs
	}
	if fi, err := os.Stat(key); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is set but the public key %s is not there: set %s to the key the remote cache is signed with (`mage keygen` exports it as debian-atomic.gpg)", URLEnv, key, KeyEnv)
	}
	return &Remote{URL: raw, KeyFile: key, ProbeTimeout: DefaultProbeTimeout, PullTimeout: DefaultPullTimeout, Log: cfg.Log}, nil
}

// Fetch implements build.RemoteCache.
func (r *Remote) Fetch(ctx context.Context, store ostreeops.Repo, kind string, key cache.Key) (build.RemoteResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off != nil {
		return build.RemoteResult{}, fmt.Errorf("%w (off for this build after: %v)", build.ErrRemoteMiss, r.off)
	}
	res, err := r.fetch(ctx, store, kind, key)
	if err != nil && !errors.Is(err, build.ErrRemoteMiss) && ctx.Err() == nil {
		// One warning per build: a remote that failed once is not asked again.
		r.off = err
		err = fmt.Errorf("remote cache %s: %w (not asked again in this build)", r.URL, err)
	}
	return res, err
}

func (r *Remote) fetch(ctx context.Context, store ostreeops.Repo, kind string, key cache.Key) (build.RemoteResult, error) {
	if err := r.configure(ctx, store); err != nil {
		return build.RemoteResult{}, err
	}
	ref := Ref(kind, key)
	remoteRef := RemoteName + ":" + ref
	defer store.DeleteRef(context.WithoutCancel(ctx), remoteRef) // the local ref below keeps the result
	// Commits first: their signatures are checked before any tree comes over.
	if err := r.pull(ctx, store, ref, true); err != nil {
		return build.RemoteResult{}, err
	}
	entry, ok := store.RevParse(ctx, remoteRef)
	if !ok {
		return build.RemoteResult{}, fmt.Errorf("the pull of %s left no ref", ref)
	}
	meta := map[string]string{}
	for _, k := range metaKeys {
		text, err := store.Metadata(ctx, entry, k)
		if err != nil {
			return build.RemoteResult{}, fmt.Errorf("entry %s has no %s", short(entry), k)
		}
		if s := ostreeops.GVariantStrings(text); len(s) == 1 {
			meta[k] = s[0]
		}
	}
	e, err := ParseEntry(meta, kind, key, store.Parent(ctx, entry))
	if err != nil {
		return build.RemoteResult{}, fmt.Errorf("entry %s: %w", short(entry), err)
	}
	// The trees of the entry checked above, by checksum: the ref may have
	// moved on the server since.
	if err := r.pull(ctx, store, entry, false); err != nil {
		return build.RemoteResult{}, err
	}
	if err := store.SetRef(ctx, ref, e.Result); err != nil {
		return build.RemoteResult{}, err
	}
	return build.RemoteResult{Result: e.Result, Size: e.ResultSize, TreeSize: e.TreeSize}, nil
}

// configure checks that the remote answers (once per build) and (re)writes
// it into the store's configuration with GPG verification of commits.
func (r *Remote) configure(ctx context.Context, store ostreeops.Repo) error {
	if r.configured[store.Path] {
		return nil
	}
	if err := r.alive(ctx); err != nil {
		return err
	}
	if err := store.RemoteDelete(ctx, RemoteName); err != nil {
		return err
	}
	if err := store.RemoteAddSignedCommits(ctx, RemoteName, r.URL, r.KeyFile); err != nil {
		return fmt.Errorf("configuring the remote cache in %s: %w", store.Path, err)
	}
	if r.configured == nil {
		r.configured = map[string]bool{}
	}
	r.configured[store.Path] = true
	return nil
}

// pull fetches the entry (a ref or a checksum) and its result (depth 1)
// within a deadline.
func (r *Remote) pull(ctx context.Context, store ostreeops.Repo, ref string, metadataOnly bool) error {
	limit := r.PullTimeout
	if metadataOnly {
		limit = r.ProbeTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	err := store.PullRef(pctx, RemoteName, ref, ostreeops.PullOptions{Depth: 1, MetadataOnly: metadataOnly, NoFsync: true})
	r.Log.Debug().Str("ref", ref).Bool("commits_only", metadataOnly).Dur("duration", time.Since(start)).Err(err).Msg("remote cache: pull")
	switch {
	case err == nil:
		return nil
	case pctx.Err() != nil && ctx.Err() == nil:
		return fmt.Errorf("no answer within %s", limit)
	case strings.Contains(err.Error(), "HTTP 404"), strings.Contains(err.Error(), "No such file"):
		// The remote answered (alive checked it), so a 404 is a key it lacks.
		return fmt.Errorf("%w: %s", build.ErrRemoteMiss, ref)
	}
	return err
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// alive fetches the remote's config, which every OSTree repository has: a
// remote that is down, stalls or answers 404 fails here, within the probe
// deadline, and a 404 on a ref afterwards means a key the remote lacks.
func (r *Remote) alive(ctx context.Context) error {
	u, err := url.Parse(r.URL)
	if err != nil {
		return err
	}
	if u.Scheme == "file" {
		if _, err := os.Stat(filepath.Join(u.Path, "config")); err != nil {
			return fmt.Errorf("%s is not an OSTree repository (%v)", r.URL, err)
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, strings.TrimSuffix(r.URL, "/")+"/config", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer within %s", r.ProbeTimeout)
		}
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "[core]") {
		return fmt.Errorf("%s/config answered %s, not an OSTree repository's config", strings.TrimSuffix(r.URL, "/"), resp.Status)
	}
	return nil
}
