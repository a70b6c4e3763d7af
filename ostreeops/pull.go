package ostreeops

import (
	"context"
	"path/filepath"
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
}

// PullRef fetches ref from a configured remote with o; only objects the
// repository lacks are downloaded, and each is checked against its checksum.
func (r Repo) PullRef(ctx context.Context, remote, ref string, o PullOptions) error {
	args := []string{"pull", "--depth=" + strconv.Itoa(o.Depth), "--network-retries=" + strconv.Itoa(o.NetworkRetries)}
	if o.MetadataOnly {
		args = append(args, "--commit-metadata-only")
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

// HasSummary reports whether the repository has a summary and its signature.
func (r Repo) HasSummary() bool {
	return fileSize(filepath.Join(r.Path, "summary")) > 0 && fileSize(filepath.Join(r.Path, "summary.sig")) > 0
}
