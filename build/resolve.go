package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/variants"
)

// archiveKeyring verifies the archive the resolver reads (a variable so that
// tests can sign a local archive with a throwaway key).
var archiveKeyring = variants.DebianKeyring

// resolver answers "which packages, at which versions" with the host's apt
// and a private configuration, downloading package lists but no package.
type resolver struct {
	runner run.Runner
	dir    string // private apt root
	conf   string // its APT_CONFIG
	// origins says which resolved "name version" came from the security
	// archive or a -updates suite (see pocketOf); others are absent.
	origins map[string]origin
}

// origin is where a resolved version comes from.
type origin struct {
	pocket  string // variants.PocketSecurity or PocketUpdates
	inSuite bool   // the suite itself has it too: a point release took it in
}

// newResolver prepares a private apt root for a base variant's archive plus
// extra sources, kept under the cache so updates are incremental.
func newResolver(cfg Config, base *variants.Variant, sources []string) (*resolver, error) {
	id := cache.NewPreimage("resolver", 1).Add("bootstrap", base.BootstrapID()).AddSet("sources", sources).Sum()
	dir := filepath.Join(cfg.CacheDir, "apt", id.Short())
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
	var lines []string
	for _, s := range sources {
		src, err := variants.ParseSource(s)
		if err != nil {
			return nil, err
		}
		lines = append(lines, src.Line(src.URL))
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "apt.conf")
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
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return &resolver{runner: cfg.Runner, dir: dir, conf: conf, origins: map[string]origin{}}, nil
}

func (r *resolver) apt(ctx context.Context, args ...string) ([]byte, error) {
	return r.runner.Run(ctx, run.Cmd{Args: append([]string{"apt-get", "-q"}, args...),
		Env: []string{"APT_CONFIG=" + r.conf, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}, Quiet: true})
}

// update downloads the package lists.
func (r *resolver) update(ctx context.Context) error {
	// --error-on=any: a source that cannot be fetched is an error, not a
	// warning followed by "Unable to locate package".
	if _, err := r.apt(ctx, "update", "--error-on=any"); err != nil {
		return fmt.Errorf("reading the archive's package lists failed (check the mirror, suite and sources of the variant): %w", err)
	}
	return nil
}

// archives returns the state of every Release file the lists came from.
func (r *resolver) archives() map[string]variants.ArchiveState {
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
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), key+": "); ok {
			return v
		}
	}
	return ""
}

// essential resolves a minbase bootstrap: the Essential packages and apt,
// as mmdebstrap's minbase variant installs them.
func (r *resolver) essential(ctx context.Context) ([]string, error) {
	if err := os.WriteFile(filepath.Join(r.dir, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		return nil, err
	}
	out, err := r.apt(ctx, "install", "-s", "-o", "APT::Install-Recommends=false", "?essential", "apt")
	if err != nil {
		return nil, fmt.Errorf("resolving the bootstrap's packages: %w", err)
	}
	return r.parse(out), nil
}

// layer resolves what installing pkgs on top of installed adds or upgrades.
func (r *resolver) layer(ctx context.Context, installed, pkgs []string, recommends bool) ([]string, error) {
	status, err := r.statusFor(installed)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.dir, "var/lib/dpkg/status"), status, 0o644); err != nil {
		return nil, err
	}
	args := []string{"install", "-s", "-o", "APT::Install-Recommends=" + boolString(recommends), "--"}
	out, err := r.apt(ctx, append(args, pkgs...)...)
	if err != nil {
		return nil, fmt.Errorf("resolving packages %s%s: %w", strings.Join(pkgs, " "), unknownPackages(err.Error()), err)
	}
	return r.parse(out), nil
}

// parse reads apt-get -s output and remembers where each package comes from.
func (r *resolver) parse(out []byte) []string {
	for k, p := range parseOrigins(out) {
		r.origins[k] = p
	}
	return parseInst(out)
}

// instRE reads apt-get -s lines such as
// "Inst openssl [3.5.1-1] (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])":
// name, version, the releases offering that version, architecture.
var instRE = regexp.MustCompile(`(?m)^Inst (\S+) (?:\[\S+\] )?\((\S+) (.*)\[([a-z0-9-]+)\]\)`)

// parseInst reads apt-get -s output: "name version arch" per installed package.
func parseInst(out []byte) []string {
	var pkgs []string
	for _, m := range instRE.FindAllStringSubmatch(string(out), -1) {
		name := strings.SplitN(m[1], ":", 2)[0]
		pkgs = append(pkgs, name+" "+m[2]+" "+m[4])
	}
	sort.Strings(pkgs)
	return pkgs
}

// parseOrigins maps "name version" to where its version comes from, for
// the versions apt-get -s installs from the security archive or a -updates
// suite.
func parseOrigins(out []byte) map[string]origin {
	o := map[string]origin{}
	for _, m := range instRE.FindAllStringSubmatch(string(out), -1) {
		if p, inSuite := pocketOf(m[3]); p != "" {
			o[strings.SplitN(m[1], ":", 2)[0]+" "+m[2]] = origin{pocket: p, inSuite: inSuite}
		}
	}
	return o
}

// pocketOf classifies apt's release description of a version ("Label:
// Version/Archive" per release offering it, comma-separated): security when
// one of them is the security archive (its Label is Debian-Security, or its
// suite ends in -security), else updates when one is a -updates suite, else
// "". A fix that a point release has since folded into the suite is still
// offered by the security archive, so it stays marked security; inSuite
// says that the suite itself (a release of neither kind) offers it too.
func pocketOf(releases string) (pocket string, inSuite bool) {
	for _, rel := range strings.Split(strings.TrimSpace(releases), ", ") {
		label, archive := "", rel
		if i := strings.Index(rel, ":"); i >= 0 {
			label = rel[:i]
		}
		if i := strings.LastIndexAny(rel, "/:"); i >= 0 {
			archive = rel[i+1:]
		}
		switch {
		case strings.EqualFold(label, "Debian-Security") || strings.HasSuffix(archive, "-security"):
			pocket = variants.PocketSecurity
		case strings.HasSuffix(archive, "-updates"):
			if pocket == "" {
				pocket = variants.PocketUpdates
			}
		case rel != "":
			inSuite = true
		}
	}
	return pocket, inSuite
}

// statusFor makes a dpkg status file that says the given packages are
// installed, from their full stanzas in the package lists, so apt sees their
// dependencies and Provides.
func (r *resolver) statusFor(installed []string) ([]byte, error) {
	want := map[string]bool{}
	for _, e := range installed {
		f := strings.Fields(e)
		if len(f) == 3 {
			want[f[0]+" "+f[1]] = true
		}
	}
	lists, _ := filepath.Glob(filepath.Join(r.dir, "var/lib/apt/lists/*_Packages"))
	var out strings.Builder
	found := map[string]bool{}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		for _, stanza := range strings.Split(string(data), "\n\n") {
			name, ver := stanzaField(stanza, "Package"), stanzaField(stanza, "Version")
			k := name + " " + ver
			if !want[k] || found[k] {
				continue
			}
			found[k] = true
			out.WriteString(strings.TrimSpace(stanza))
			out.WriteString("\nStatus: install ok installed\n\n")
		}
	}
	var missing []string
	for k := range want {
		if !found[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &LockDriftError{Missing: missing}
	}
	return []byte(out.String()), nil
}

func stanzaField(stanza, key string) string {
	for _, line := range strings.Split(stanza, "\n") {
		if v, ok := strings.CutPrefix(line, key+": "); ok {
			return v
		}
	}
	return ""
}

// LockDriftError says the archive no longer has versions the lock names.
type LockDriftError struct {
	Missing []string // "name version"
}

func (e *LockDriftError) Error() string {
	return fmt.Sprintf("the mirror no longer has versions locked in %s: %s; run `mage update` to lock the archive as it is now",
		variants.LockFile, strings.Join(e.Missing, ", "))
}
