package ostreeops

import (
	"context"
	"strconv"
)

// Pulling step results from a remote step cache (package remotecache).

// PullOptions tune one pull from a remote.
type PullOptions struct {
	Depth        int  // parents to fetch with the commit
	MetadataOnly bool // commit objects only (their signatures are checked), no trees
	// NetworkRetries is how often each request is retried; 0 fails on the
	// first error, so an unreachable remote costs one attempt.
	NetworkRetries int
	// NoFsync skips fsync of the objects written: for a cache whose entries
	// are checked on every use and re-fetched when damaged, as the store's
	// own commits are made (CommitOptions.NoFsync).
	NoFsync bool
}

// PullRef fetches ref from a configured remote with o; only objects the
// repository lacks are downloaded, and each is checked against its checksum.
func (r Repo) PullRef(ctx context.Context, remote, ref string, o PullOptions) error {
	args := []string{"pull", "--depth=" + strconv.Itoa(o.Depth), "--network-retries=" + strconv.Itoa(o.NetworkRetries)}
	if o.MetadataOnly {
		args = append(args, "--commit-metadata-only")
	}
	if o.NoFsync {
		args = append(args, "--disable-fsync")
	}
	_, err := r.ostree(ctx, true, append(args, remote, ref)...)
	return err
}

// RemoteDelete removes a remote's configuration, if there is one.
func (r Repo) RemoteDelete(ctx context.Context, name string) error {
	_, err := r.ostree(ctx, true, "remote", "delete", "--if-exists", name)
	return err
}

// DeleteRef removes a ref ("REMOTE:REF" for a remote one); its commits stay.
func (r Repo) DeleteRef(ctx context.Context, ref string) error {
	_, err := r.ostree(ctx, true, "refs", "--delete", ref)
	return err
}

// RemoteAddSignedCommits configures a remote whose commits must be signed by
// a key in keyFile, with no summary: a step cache has many writers (one per
// CI job) and a static host cannot merge their summaries, so refs are read
// one by one (refs/heads/REF) and trust rests on the commits' signatures
// and ref bindings.
func (r Repo) RemoteAddSignedCommits(ctx context.Context, name, url, keyFile string) error {
	_, err := r.ostree(ctx, true, "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=false", "--gpg-import="+keyFile, name, url)
	return err
}
