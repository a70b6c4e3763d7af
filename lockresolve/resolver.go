// Package lockresolve resolves variants' package sets against the Debian
// archive and keeps variants/variants.lock: which versions every layer
// installs, from which Release files, and which changes are security fixes.
// It uses the host's apt with a private configuration under the cache; no
// package is downloaded.
package lockresolve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/variants"
)

// archiveKeyring verifies the archive the resolver reads (a variable so that
// tests can sign a local archive with a throwaway key).
var archiveKeyring = variants.DebianKeyring

// Resolver answers "which packages, at which versions" for one base
// variant's archive plus extra sources, in a private apt root kept under the
// cache so that its package lists are reused while the archive is unchanged.
type Resolver struct {
	runner  run.Runner
	log     zerolog.Logger
	dir     string // private apt root
	conf    string // its APT_CONFIG
	urls    []string
	all     *lists // every package list, read when needed, once
	pockets *lists // the security and -updates lists alone
	// origins says where each version resolved in this run comes from;
	// inSuite is known once complete has read the suite's lists.
	origins  map[string]origin
	complete bool
}

// origin is where a resolved version comes from.
type origin struct {
	pocket  string // variants.PocketSecurity or PocketUpdates
	inSuite bool   // the suite itself has it too: a point release took it in
}

// Open prepares the private apt root for base's archive plus sources.
func Open(runner run.Runner, log zerolog.Logger, cacheDir string, base *variants.Variant, sources []string) (*Resolver, error) {
	id := cache.NewPreimage("resolver", 1).Add("bootstrap", base.BootstrapID()).AddSet("sources", sources).Sum()
	dir := filepath.Join(cacheDir, "apt", id.Short())
	if strings.ContainsAny(dir, "\"\n") {
		return nil, fmt.Errorf("the cache folder %q cannot hold an apt configuration", dir)
	}
	for _, d := range []string{"etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/trusted.gpg.d",
		"var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The archive's suites (with -updates and -security when followed), as
	// the build's apt sees them, verified with the Debian archive keyring.
	sources822 := base.DebianSources(base.Mirror, base.SecurityMirror, archiveKeyring)
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list.d/debian.sources"), []byte(sources822), 0o644); err != nil {
		return nil, err
	}
	r := &Resolver{runner: runner, log: log, dir: dir, conf: filepath.Join(dir, "apt.conf"), origins: map[string]origin{}}
	for _, s := range base.MainSuites() {
		r.urls = append(r.urls, base.Mirror+"/dists/"+s+"/InRelease")
	}
	if s := base.SecuritySuite(); s != "" {
		r.urls = append(r.urls, base.SecurityMirror+"/dists/"+s+"/InRelease")
	}
	var lines []string
	for _, s := range sources {
		src, err := variants.ParseSource(s)
		if err != nil {
			return nil, err
		}
		lines = append(lines, src.Line(src.URL))
		r.urls = append(r.urls, releaseURL(src))
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	text := fmt.Sprintf(`Dir "%[1]s/";
Dir::State::status "%[1]s/var/lib/dpkg/status";
Dir::Etc::Trusted "%[3]s";
Dir::Etc::TrustedParts "%[1]s/etc/apt/trusted.gpg.d/";
APT::Architecture "%[2]s";
APT::Architectures { "%[2]s"; };
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
`, dir, base.Architecture, archiveKeyring)
	if err := os.WriteFile(r.conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// releaseURL is where an extra source's InRelease lives: URL/dists/SUITE/
// for a suite, URL/SUITE for a flat repository ("./").
func releaseURL(s variants.Source) string {
	if strings.HasSuffix(s.Suite, "/") {
		return strings.TrimSuffix(s.URL+"/"+strings.TrimPrefix(s.Suite, "./"), "/") + "/InRelease"
	}
	return s.URL + "/dists/" + s.Suite + "/InRelease"
}

// Dir is the private apt root.
func (r *Resolver) Dir() string { return r.dir }

func (r *Resolver) apt(ctx context.Context, args ...string) ([]byte, error) {
	return r.runner.Run(ctx, run.Cmd{Args: append([]string{"apt-get", "-q"}, args...),
		Env: []string{"APT_CONFIG=" + r.conf, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}, Quiet: true})
}

// Update brings the package lists up to date. When the lists of the last
// update were read with the same configuration and keyring and every
// InRelease the archive serves now is byte for byte the one apt verified
// then, apt-get update (seconds: it fetches them again and rebuilds its
// cache) is skipped.
func (r *Resolver) Update(ctx context.Context) error {
	r.all, r.pockets = nil, nil
	stamp, err := r.stamp(ctx)
	if err == nil {
		if old, rerr := os.ReadFile(r.stampFile()); rerr == nil && string(old) == stamp {
			r.log.Debug().Str("apt", r.dir).Msg("the archive's Release files are unchanged: reusing the package lists")
			return nil
		}
	} else {
		r.log.Debug().Err(err).Msg("could not compare the archive's Release files; running apt-get update")
	}
	os.Remove(r.stampFile())
	// --error-on=any: a source that cannot be fetched is an error, not a
	// warning followed by "Unable to locate package". The lists' cache
	// (srcpkgcache.bin) is made here; the cache with a dpkg status
	// (pkgcache.bin) is made per layer base beside its status, not here.
	if _, err := r.apt(ctx, "update", "--error-on=any", "-o", "Dir::Cache::pkgcache="); err != nil {
		return fmt.Errorf("reading the archive's package lists failed (check the mirror, suite and sources of the variant): %w", err)
	}
	os.Remove(filepath.Join(r.dir, "var/cache/apt/pkgcache.bin")) // made by an older resolver; nothing reads it
	// The stamp written is of what apt verified: the lists it kept.
	if stamp, err := r.listsStamp(); err == nil {
		return os.WriteFile(r.stampFile(), []byte(stamp), 0o644)
	}
	return nil
}

func (r *Resolver) stampFile() string { return filepath.Join(r.dir, "lists.stamp") }

// Archives returns the state of every Release file the lists came from.
func (r *Resolver) Archives() map[string]variants.ArchiveState {
	out := map[string]variants.ArchiveState{}
	m, _ := filepath.Glob(filepath.Join(r.dir, "var/lib/apt/lists/*Release"))
	for _, f := range m {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		out[filepath.Base(f)] = variants.ArchiveState{Date: releaseField(data, "Date"), SHA256: hex.EncodeToString(sum[:])}
	}
	return out
}

func releaseField(data []byte, key string) string {
	s := bufio.NewScanner(strings.NewReader(string(data)))
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), key+": "); ok {
			return v
		}
	}
	return ""
}

// Essential resolves a minbase bootstrap: the Essential packages and apt,
// as mmdebstrap's minbase variant installs them.
func (r *Resolver) Essential(ctx context.Context) ([]string, error) {
	status, err := r.statusFor(nil)
	if err != nil {
		return nil, err
	}
	out, err := r.install(ctx, status, false, "?essential", "apt")
	if err != nil {
		return nil, fmt.Errorf("resolving the bootstrap's packages: %w", err)
	}
	return r.parse(out)
}

// Layer resolves what installing pkgs on top of installed adds or upgrades.
func (r *Resolver) Layer(ctx context.Context, installed, pkgs []string, recommends bool) ([]string, error) {
	status, err := r.statusFor(installed)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	out, err := r.install(ctx, status, recommends, append([]string{"--"}, pkgs...)...)
	r.log.Debug().Float64("seconds", time.Since(t).Seconds()).Msg("apt-get install --print-uris")
	if err != nil {
		return nil, fmt.Errorf("resolving packages %s%s: %w", strings.Join(pkgs, " "), UnknownPackages(err.Error()), err)
	}
	return r.parse(out)
}

// install asks apt which packages installing args would fetch on the
// system status says is installed. --print-uris answers what -s
// (simulate) answers, ten times faster: apt's simulation replays every step
// of the transaction (20 s for gnome's layer here). The private archives
// folder is always empty, so every package to install or upgrade is
// listed. apt's cache of lists and status (pkgcache.bin, 40 MB) is kept
// beside the status: apt rebuilds it when the status file is newer than
// the cache, and a kept status is never rewritten, so a re-lock on the same
// base maps the cache instead of rebuilding it.
func (r *Resolver) install(ctx context.Context, status string, recommends bool, args ...string) ([]byte, error) {
	return r.apt(ctx, append([]string{"install", "--print-uris", "-qq", "-o", "APT::Install-Recommends=" + fmt.Sprint(recommends),
		"-o", "APT::Get::HideAutoRemove=true", "-o", "Dir::State::status=" + status, "-o", "Dir::Cache::pkgcache=" + status + cacheSuffix}, args...)...)
}

// cacheSuffix names the apt cache kept beside a status file.
const cacheSuffix = ".pkgcache.bin"

// keptBases is how many layer bases' status and apt cache are kept for
// the current lists: a few layers' worth (about 40 MB each), not every set
// ever locked.
const keptBases = 6

// statusFor is the path of a dpkg status saying installed is installed,
// made from the package lists once and kept beside them, keyed by the
// lists' stamp and the set: re-locking a child layer on an unchanged
// parent reads no list, and apt finds its cache for it still valid. Kept
// statuses of older lists are removed; without a stamp (lists apt-get
// update did not finish) the status is made afresh every time.
func (r *Resolver) statusFor(installed []string) (string, error) {
	t := time.Now()
	stamp, err := os.ReadFile(r.stampFile())
	if err != nil {
		path := filepath.Join(r.dir, "var/lib/dpkg/status")
		status, err := r.makeStatus(installed)
		if err != nil {
			return "", err
		}
		os.Remove(path + cacheSuffix)
		return path, os.WriteFile(path, status, 0o644)
	}
	lists := cache.NewPreimage("lists", 1).Add("stamp", string(stamp)).Sum().Short()
	dir := filepath.Join(r.dir, "status", lists)
	path := filepath.Join(dir, cache.NewPreimage("status", 1).AddSet("installed", installed).Sum().Short())
	if _, err := os.Stat(path); err == nil {
		// The cache's time says when the base was last used (pruning keeps
		// the recent ones); a cache newer than its status stays valid.
		now := time.Now()
		os.Chtimes(path+cacheSuffix, now, now)
		r.log.Debug().Float64("seconds", time.Since(t).Seconds()).Int("packages", len(installed)).Msg("layer base status kept")
		return path, nil
	}
	status, err := r.makeStatus(installed)
	if err != nil {
		return "", err
	}
	pruneStatuses(filepath.Dir(dir), lists)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := variants.WriteFileAtomic(path, status, 0o644); err != nil {
		return "", err
	}
	r.log.Debug().Float64("seconds", time.Since(t).Seconds()).Int("packages", len(installed)).Msg("layer base status made from the lists")
	return path, nil
}

// makeStatus is the dpkg status for installed, from the lists this run has
// read whole or, when it has not, from the stanzas of those names alone.
func (r *Resolver) makeStatus(installed []string) ([]byte, error) {
	if len(installed) == 0 {
		return []byte{}, nil
	}
	l := r.all
	if l == nil {
		want := map[string]bool{}
		for _, e := range installed {
			want[strings.SplitN(e, " ", 2)[0]] = true
		}
		var err error
		if l, err = readListsOf(filepath.Join(r.dir, "var/lib/apt/lists"), false, want); err != nil {
			return nil, err
		}
	}
	return l.status(installed)
}

// pruneStatuses removes the kept statuses of other lists than current, and
// the oldest of current's beyond keptBases.
func pruneStatuses(dir, current string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != current {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	type kept struct {
		path string
		mod  time.Time
	}
	var statuses []kept
	entries, _ = os.ReadDir(filepath.Join(dir, current))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || strings.HasSuffix(e.Name(), cacheSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		k := kept{filepath.Join(dir, current, e.Name()), info.ModTime()}
		if c, err := os.Stat(k.path + cacheSuffix); err == nil && c.ModTime().After(k.mod) {
			k.mod = c.ModTime()
		}
		statuses = append(statuses, k)
	}
	sort.Slice(statuses, func(i, j int) bool { return statuses[i].mod.After(statuses[j].mod) })
	for i := keptBases - 1; i < len(statuses); i++ {
		os.Remove(statuses[i].path)
		os.Remove(statuses[i].path + cacheSuffix)
	}
}

// parse reads apt-get --print-uris output and remembers which chosen
// versions the security archive or a -updates suite offers.
func (r *Resolver) parse(out []byte) ([]string, error) {
	pkgs := ParseURIs(out)
	l, err := r.lists(!r.complete)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		f := strings.Fields(p)
		k := f[0] + " " + f[1]
		if pocket, inSuite := pocketOf(strings.Join(l.releasesOf(k), ", ")); pocket != "" {
			r.origins[k] = origin{pocket: pocket, inSuite: inSuite}
		}
	}
	return pkgs, nil
}

// completeOrigins reads the suite's lists too, so that origins say whether
// the suite offers a version as well (a point release took a fix in).
func (r *Resolver) completeOrigins() error {
	if r.complete {
		return nil
	}
	l, err := r.lists(false)
	if err != nil {
		return err
	}
	for k := range r.origins {
		pocket, inSuite := pocketOf(strings.Join(l.releasesOf(k), ", "))
		r.origins[k] = origin{pocket: pocket, inSuite: inSuite}
	}
	r.complete = true
	return nil
}

// Origin says where the version of name resolved in this run comes from:
// variants.PocketSecurity, PocketUpdates or "" (the suite), and whether the
// suite has it too.
func (r *Resolver) Origin(name, version string) (pocket string, inSuite bool) {
	if err := r.completeOrigins(); err != nil {
		r.log.Warn().Err(err).Msg("reading the package lists")
	}
	o := r.origins[name+" "+version]
	return o.pocket, o.inSuite
}

// lists reads the package lists once: every one, or the pockets' alone.
func (r *Resolver) lists(pocketsOnly bool) (*lists, error) {
	if r.all != nil {
		return r.all, nil
	}
	if pocketsOnly && r.pockets != nil {
		return r.pockets, nil
	}
	t := time.Now()
	l, err := readLists(filepath.Join(r.dir, "var/lib/apt/lists"), pocketsOnly)
	if err != nil {
		return nil, err
	}
	if pocketsOnly {
		r.pockets = l
	} else {
		r.all = l
	}
	r.log.Debug().Float64("seconds", time.Since(t).Seconds()).Int("versions", len(l.at)).Bool("pockets_only", pocketsOnly).Msg("read the package lists")
	return l, nil
}

// ParseURIs reads apt-get --print-uris lines ("'URL' NAME_VERSION_ARCH.deb
// SIZE HASH", the parts of the file name escaped as apt does, %3a for an
// epoch's colon): "name version arch" per package, sorted.
func ParseURIs(out []byte) []string {
	var pkgs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[0], "'") || !strings.HasSuffix(f[1], ".deb") {
			continue
		}
		parts := strings.Split(strings.TrimSuffix(f[1], ".deb"), "_")
		if len(parts) != 3 {
			continue
		}
		for i, p := range parts {
			if u, err := url.PathUnescape(p); err == nil {
				parts[i] = u
			}
		}
		pkgs = append(pkgs, strings.Join(parts, " "))
	}
	sort.Strings(pkgs)
	return pkgs
}

var unableToLocate = regexp.MustCompile(`E: (?:Unable to locate package |Package '?)([a-z0-9+.-]+)`)

// UnknownPackages names the packages apt's output says it could not find,
// as a parenthesis for an error message ("" when there are none).
func UnknownPackages(out string) string {
	var names []string
	for _, m := range unableToLocate.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (the archive has no package %s: fix the packages list)", strings.Join(names, ", "))
}
