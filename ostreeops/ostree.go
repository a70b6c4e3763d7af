// Package ostreeops holds everything that talks to ostree: repositories,
// commits, refs, checkouts and commit metadata.
package ostreeops

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/debian-atomic/builder/build/run"
)

// Repo is one OSTree repository on disk.
type Repo struct {
	Path   string
	Runner run.Runner
}

func (r Repo) ostree(ctx context.Context, quiet bool, args ...string) ([]byte, error) {
	full := append([]string{"ostree", "--repo=" + r.Path}, args...)
	return r.Runner.Run(ctx, run.Cmd{Args: full, Quiet: quiet})
}

// Exists reports whether the repository has been initialised.
func (r Repo) Exists() bool {
	_, err := os.Stat(filepath.Join(r.Path, "config"))
	return err == nil
}

// Init creates the repository with mode (bare, bare-user, archive) if absent.
func (r Repo) Init(ctx context.Context, mode string) error {
	if r.Exists() {
		return nil
	}
	if err := os.MkdirAll(r.Path, 0o755); err != nil {
		return err
	}
	_, err := r.ostree(ctx, true, "init", "--mode="+mode)
	return err
}

// CommitOptions describe one commit.
type CommitOptions struct {
	Branch    string // ref to move; empty for an orphan commit
	Tree      string // directory to commit, or
	TreeRef   string // an existing commit in this repository whose tree is reused
	Parent    string // parent commit; "none" for none; empty for the branch's current commit
	Subject   string
	Timestamp string // fixed timestamp for reproducible store commits
	Bootable  bool
	NoFsync   bool
	// LinkSpeedup skips hashing files that are hardlinks to objects of this
	// repository (from CheckoutLinked): only changed files are read.
	LinkSpeedup bool
	// Consume moves the tree's files into the repository (ostree renames a
	// file into its object after hashing it, where it would copy it) and
	// removes the tree: give it a tree of hard links, and the files of the
	// original become the objects themselves.
	Consume    bool
	Strings    map[string]string // --add-metadata-string
	Variants   map[string]string // --add-metadata, GVariant text
	NoBindings bool              // no ostree.ref-binding, so the checksum depends on content only
}

// Commit writes a commit and returns its checksum.
func (r Repo) Commit(ctx context.Context, o CommitOptions) (string, error) {
	// No commit modifier (--no-xattrs, --owner-uid, ...): any one makes
	// ostree hash every file again, where a linked checkout's files are
	// otherwise known by device and inode (33 s against 1.8 s for a gnome
	// tree), and over a stored tree it stops the reuse of its dirtree (48 s
	// against 0.2 s for /usr/share). The xattrs kept are the tree's own:
	// file capabilities that maintainer scripts set.
	args := []string{"commit"}
	if o.Branch != "" {
		args = append(args, "--branch="+o.Branch)
	} else {
		args = append(args, "--orphan")
	}
	if o.NoBindings {
		args = append(args, "--no-bindings")
	}
	if o.Parent != "" {
		args = append(args, "--parent="+o.Parent)
	}
	if o.Subject != "" {
		args = append(args, "--subject="+o.Subject)
	}
	if o.Timestamp != "" {
		args = append(args, "--timestamp="+o.Timestamp)
	}
	if o.Bootable {
		args = append(args, "--bootable")
	}
	if o.NoFsync {
		args = append(args, "--fsync=false")
	}
	if o.LinkSpeedup {
		args = append(args, "--link-checkout-speedup")
	}
	if o.Consume {
		args = append(args, "--consume")
	}
	for _, k := range sortedKeys(o.Strings) {
		args = append(args, "--add-metadata-string="+k+"="+o.Strings[k])
	}
	for _, k := range sortedKeys(o.Variants) {
		args = append(args, "--add-metadata="+k+"="+o.Variants[k])
	}
	switch {
	case o.TreeRef != "":
		args = append(args, "--tree=ref="+o.TreeRef)
	case o.Tree != "":
		args = append(args, "--tree=dir="+o.Tree)
	default:
		return "", errors.New("ostree commit: no tree given")
	}
	out, err := r.ostree(ctx, true, args...)
	if err != nil {
		return "", err
	}
	sum := strings.TrimSpace(string(out))
	if !checksumRE.MatchString(sum) {
		return "", fmt.Errorf("ostree commit printed %q, not a checksum", sum)
	}
	return sum, nil
}

var checksumRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// RevParse resolves a ref; ok is false when the ref does not exist.
func (r Repo) RevParse(ctx context.Context, ref string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(r.Path, "refs", "heads", ref))
	if err == nil {
		sum := strings.TrimSpace(string(data))
		if checksumRE.MatchString(sum) {
			return sum, true
		}
	}
	out, err := r.ostree(ctx, true, "rev-parse", ref)
	if err != nil {
		return "", false
	}
	sum := strings.TrimSpace(string(out))
	return sum, checksumRE.MatchString(sum)
}

// CommitObject returns the path of a commit's object file.
func (r Repo) CommitObject(commit string) string {
	return filepath.Join(r.Path, "objects", commit[:2], commit[2:]+".commit")
}

// VerifyCommit checks that a commit object is present, has the expected size
// (when size > 0) and hashes to its name. It reads one small file, so every
// cache hit can afford it.
func (r Repo) VerifyCommit(commit string, size int64) error {
	if !checksumRE.MatchString(commit) {
		return fmt.Errorf("%q is not a commit checksum", commit)
	}
	data, err := os.ReadFile(r.CommitObject(commit))
	if err != nil {
		return fmt.Errorf("commit %s is missing from %s", commit[:12], r.Path)
	}
	if size > 0 && int64(len(data)) != size {
		return fmt.Errorf("commit %s has %d bytes, expected %d", commit[:12], len(data), size)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != commit {
		return fmt.Errorf("commit %s is corrupted (its content does not match its checksum)", commit[:12])
	}
	return nil
}

// CommitSize is the size of a commit's object file.
func (r Repo) CommitSize(commit string) int64 {
	fi, err := os.Stat(r.CommitObject(commit))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Checkout copies a commit's tree into dest (which must not exist). Copies,
// not hardlinks: build steps write into the tree, and an in-place write into a
// hardlinked file would silently corrupt the stored object.
func (r Repo) Checkout(ctx context.Context, commit, dest string) error {
	_, err := r.ostree(ctx, true, "checkout", "--force-copy", commit, dest)
	return err
}

// CheckoutLinked makes dest a tree of hardlinks to the objects of a bare
// repository on the same filesystem: seconds for any size, but nothing may
// write into its files, so it is only ever used as the read-only lower layer
// of an overlay.
func (r Repo) CheckoutLinked(ctx context.Context, commit, dest string) error {
	_, err := r.ostree(ctx, true, "checkout", "--require-hardlinks", commit, dest)
	return err
}

// PullLocal copies a commit and its objects from another local repository.
func (r Repo) PullLocal(ctx context.Context, from, commit string) error {
	_, err := r.ostree(ctx, true, "pull-local", from, commit)
	return err
}

// Cat returns the contents of a file in a commit.
func (r Repo) Cat(ctx context.Context, commit, path string) ([]byte, error) {
	return r.ostree(ctx, true, "cat", commit, path)
}

// Ls lists paths in a commit (ostree ls -R) for tests and checks.
func (r Repo) Ls(ctx context.Context, commit string, recursive bool, paths ...string) ([]byte, error) {
	args := []string{"ls", commit}
	if recursive {
		args = []string{"ls", "-R", commit}
	}
	return r.ostree(ctx, true, append(args, paths...)...)
}

// Metadata reads one metadata key of a commit as GVariant text.
func (r Repo) Metadata(ctx context.Context, commit, key string) (string, error) {
	out, err := r.ostree(ctx, true, "show", "--print-metadata-key="+key, commit)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Parent returns a commit's parent, or "" for none.
func (r Repo) Parent(ctx context.Context, commit string) string {
	out, err := r.ostree(ctx, true, "rev-parse", commit+"^")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Version returns the host ostree's version, e.g. "2022.7".
func Version(ctx context.Context, runner run.Runner) (string, error) {
	out, err := runner.Run(ctx, run.Cmd{Args: []string{"ostree", "--version"}, Quiet: true})
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "Version:"); ok {
			return strings.Trim(strings.TrimSpace(v), "'"), nil
		}
	}
	return "", fmt.Errorf("ostree --version printed no version")
}

// SupportsBootable reports whether an ostree version has `commit --bootable`
// (added in 2021.1).
func SupportsBootable(version string) bool {
	parts := strings.SplitN(version, ".", 2)
	year, err := strconv.Atoi(parts[0])
	return err == nil && year >= 2021
}

// GVariantString quotes s as a GVariant text string.
func GVariantString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// GVariantStrings parses the strings of GVariant text such as
// "[('bash', '5.2', 'amd64')]" in order.
func GVariantStrings(text string) []string {
	var out []string
	for i := 0; i < len(text); i++ {
		q := text[i]
		if q != '\'' && q != '"' {
			continue
		}
		var b strings.Builder
		for i++; i < len(text) && text[i] != q; i++ {
			if text[i] == '\\' && i+1 < len(text) {
				i++
			}
			b.WriteByte(text[i])
		}
		out = append(out, b.String())
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Publishing: an archive-mode repository that clients pull from over HTTP
// (package publish).

// PullLocalCommits copies commit and up to depth of its parents (as far as
// they exist in from) from another local repository, without moving refs.
func (r Repo) PullLocalCommits(ctx context.Context, from, commit string, depth int) error {
	_, err := r.ostree(ctx, true, "pull-local", "--depth="+strconv.Itoa(depth), from, commit)
	return err
}

// HasCommit reports whether a commit object is present.
func (r Repo) HasCommit(commit string) bool {
	if !checksumRE.MatchString(commit) {
		return false
	}
	_, err := os.Stat(r.CommitObject(commit))
	return err == nil
}

// HasDetachedMetadata reports whether a commit carries detached metadata
// (where GPG signatures live).
func (r Repo) HasDetachedMetadata(commit string) bool {
	_, err := os.Stat(strings.TrimSuffix(r.CommitObject(commit), ".commit") + ".commitmeta")
	return err == nil
}

// Commits lists every commit object in the repository, reachable or not.
func (r Repo) Commits() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(r.Path, "objects", "*", "*.commit"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		sum := filepath.Base(filepath.Dir(m)) + strings.TrimSuffix(filepath.Base(m), ".commit")
		if checksumRE.MatchString(sum) {
			out = append(out, sum)
		}
	}
	sort.Strings(out)
	return out, nil
}

// GPGSign adds a GPG signature by keyID (from the GnuPG home, "" for the
// default) to a commit's detached metadata.
func (r Repo) GPGSign(ctx context.Context, commit, keyID, home string) error {
	args := []string{"gpg-sign"}
	if home != "" {
		args = append(args, "--gpg-homedir="+home)
	}
	_, err := r.ostree(ctx, true, append(args, commit, keyID)...)
	return err
}

// SetRef points ref at commit, creating or moving it.
func (r Repo) SetRef(ctx context.Context, ref, commit string) error {
	_, err := r.ostree(ctx, true, "refs", "--force", "--create="+ref, commit)
	return err
}

// LocalRefs lists the repository's own refs (not remote ones), sorted.
func (r Repo) LocalRefs(ctx context.Context) ([]string, error) {
	out, err := r.ostree(ctx, true, "refs")
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, ":") {
			refs = append(refs, l)
		}
	}
	sort.Strings(refs)
	return refs, nil
}

// Delta is one static delta, from one commit to another.
type Delta struct{ From, To string }

func (d Delta) String() string { return d.From + "-" + d.To }

// StaticDeltaGenerate makes the static delta from one commit to another;
// inline puts its parts into the superblock, one file to fetch.
func (r Repo) StaticDeltaGenerate(ctx context.Context, d Delta, inline bool) error {
	args := []string{"static-delta", "generate", "--from=" + d.From, "--to=" + d.To}
	if inline {
		args = append(args, "--inline")
	}
	_, err := r.ostree(ctx, true, args...)
	return err
}

// StaticDeltas lists the repository's static deltas (from-scratch ones,
// which have no From, are skipped).
func (r Repo) StaticDeltas(ctx context.Context) ([]Delta, error) {
	out, err := r.ostree(ctx, true, "static-delta", "list")
	if err != nil {
		return nil, err
	}
	var ds []Delta
	for _, l := range strings.Split(string(out), "\n") {
		from, to, ok := strings.Cut(strings.TrimSpace(l), "-")
		if ok && checksumRE.MatchString(from) && checksumRE.MatchString(to) {
			ds = append(ds, Delta{from, to})
		}
	}
	return ds, nil
}

// StaticDeltaDelete removes a static delta.
func (r Repo) StaticDeltaDelete(ctx context.Context, d Delta) error {
	_, err := r.ostree(ctx, true, "static-delta", "delete", d.String())
	return err
}

// StaticDeltaDir is where a delta's superblock and parts are:
// deltas/FROM[:2]/FROM[2:]-TO with both checksums in ostree's modified
// base64 (no padding, '/' written as '_').
func (r Repo) StaticDeltaDir(d Delta) string {
	from, to := mbase64(d.From), mbase64(d.To)
	return filepath.Join(r.Path, "deltas", from[:2], from[2:]+"-"+to)
}

func mbase64(checksum string) string {
	raw, _ := hex.DecodeString(checksum)
	return strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(raw), "/", "_")
}

// StaticDeltaSize is the size in bytes of a delta's files.
func (r Repo) StaticDeltaSize(d Delta) int64 {
	var n int64
	filepath.WalkDir(r.StaticDeltaDir(d), func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// PruneRefs deletes every commit not within depth parents of a ref, and the
// objects only they held.
func (r Repo) PruneRefs(ctx context.Context, depth int) error {
	_, err := r.ostree(ctx, true, "prune", "--refs-only", "--depth="+strconv.Itoa(depth))
	return err
}

// UpdateSummary regenerates the summary (which also reindexes static
// deltas), signed by keyID from the GnuPG home when keyID is not "".
func (r Repo) UpdateSummary(ctx context.Context, keyID, home string) error {
	args := []string{"summary", "--update"}
	if keyID != "" {
		args = append(args, "--gpg-sign="+keyID)
		if home != "" {
			args = append(args, "--gpg-homedir="+home)
		}
	}
	_, err := r.ostree(ctx, true, args...)
	return err
}

// ArchiveCommitSize is what a full pull of commit from an archive-mode
// repository transfers: the commit, its detached metadata and every
// distinct object its tree reaches, as stored.
func (r Repo) ArchiveCommitSize(ctx context.Context, commit string) (int64, error) {
	out, err := r.ostree(ctx, true, "ls", "-R", "-C", commit)
	if err != nil {
		return 0, err
	}
	objects := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if strings.HasPrefix(f[0], "d") {
			objects[f[4]+".dirtree"], objects[f[5]+".dirmeta"] = true, true
		} else {
			objects[f[4]+".filez"] = true
		}
	}
	base := strings.TrimSuffix(r.CommitObject(commit), ".commit")
	size := fileSize(base+".commit") + fileSize(base+".commitmeta")
	for o := range objects {
		if len(o) > 2 {
			size += fileSize(filepath.Join(r.Path, "objects", o[:2], o[2:]))
		}
	}
	return size, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// RemoteAdd configures a remote with GPG verification of commits and of the
// summary, trusting the keys in keyFile ("" imports none).
func (r Repo) RemoteAdd(ctx context.Context, name, url, keyFile string) error {
	args := []string{"remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true"}
	if keyFile != "" {
		args = append(args, "--gpg-import="+keyFile)
	}
	_, err := r.ostree(ctx, true, append(args, name, url)...)
	return err
}

// Pull fetches ref from a remote (what `ostree admin upgrade` does on a
// machine, without deploying).
func (r Repo) Pull(ctx context.Context, remote, ref string) error {
	_, err := r.ostree(ctx, true, "pull", remote, ref)
	return err
}

// RootTree returns the checksum of a commit's root directory tree: its
// contents, whatever the commit's metadata, time or parent. Two builds that
// made the same files give the same root tree (`ostree ls -C -d COMMIT /`).
func (r Repo) RootTree(ctx context.Context, commit string) (string, error) {
	out, err := r.ostree(ctx, true, "ls", "-C", "-d", commit, "/")
	if err != nil {
		return "", err
	}
	// d00755 0 0 0 DIRTREE DIRMETA /
	f := strings.Fields(string(out))
	if len(f) != 7 || len(f[4]) != 64 {
		return "", fmt.Errorf("unexpected ostree ls output %q", out)
	}
	return f[4], nil
}
