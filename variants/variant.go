// Package variants loads and validates variant files: the YAML descriptions of
// what each OSTree commit contains.
//
// Every problem is reported with the file, the line and the field, before any
// build step runs, and every value that later reaches a command line is checked
// here against a strict pattern, so user text never needs quoting anywhere.
package variants

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Bootstrap tools a variant may name.
const (
	Mmdebstrap  = "mmdebstrap"
	Debootstrap = "debootstrap"
)

// DefaultMirror is used when neither the variant, the environment nor the
// host's apt sources name a Debian mirror.
const DefaultMirror = "http://deb.debian.org/debian"

// MirrorEnv overrides every variant's mirror (for a local mirror or a proxy).
const MirrorEnv = "DEBIAN_ATOMIC_MIRROR"

// Variant is one validated variant file.
type Variant struct {
	Name         string            // file name without .yaml
	Inherits     string            // the variant this one builds on, "" for a base variant
	Parent       *Variant          // loaded by LoadChain
	File         string            // path it was loaded from
	Description  string            //
	Suite        string            // e.g. trixie
	Mirror       string            // resolved mirror URL
	MirrorSource string            // where Mirror came from: file, environment, host apt sources, default
	Architecture string            // Debian architecture, e.g. amd64
	Components   []string          // archive components, e.g. main
	Bootstrap    string            // mmdebstrap or debootstrap
	Recommends   bool              // install Recommends
	Packages     []string          // this variant's own packages (its layer), sorted
	Sources      []string          // extra apt sources for this layer: "[trusted=yes] URL SUITE [COMPONENT...]"
	KernelArgs   []string          // kernel command line arguments for deployments
	OSName       string            // OSTree stateroot (os) name
	Ref          string            // OSTree ref of the result
	Metadata     map[string]string // extra commit metadata
	// Files are written into this layer's tree after its packages are
	// installed: deployed path (under /etc or /usr) -> content. A child's
	// add to its parent's, and replace a parent's file of the same path.
	Files map[string]string
	// AllowedSecrets are private-key paths (as deployed: /etc/...) this
	// variant ships on purpose, each with the reason; the commit guard
	// lets them pass. A child's add to its parent's.
	AllowedSecrets map[string]string
	// Updates are the pockets followed besides the suite: PocketUpdates
	// (SUITE-updates) and PocketSecurity (SUITE-security). Set by the base.
	Updates []string
	// SecurityMirror is where the build reads SUITE-security from, and
	// SecurityMirrorSource where that came from.
	SecurityMirror, SecurityMirrorSource string
	// SystemMirror and SystemSecurityMirror are the URLs the committed
	// system's apt sources name: the file's, else Debian's own.
	SystemMirror, SystemSecurityMirror string
}

// Error is one problem in a variant file.
type Error struct {
	File  string
	Line  int // 0 when the problem has no line (a missing field)
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: field %q: %s", loc, e.Field, e.Msg)
}

// Errors is every problem found in one file, reported as one message.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	if len(es) > 1 {
		fmt.Fprintf(&b, "%d problems in variant file; nothing was built:\n", len(es))
	}
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		if len(es) > 1 {
			b.WriteString("  ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	suiteRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	archRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	componentRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	// Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters.
	packageRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,127}$`)
	osNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	refPartRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	metaKeyRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	secretPathRE = regexp.MustCompile(`^/[A-Za-z0-9_.+@:,-][A-Za-z0-9_.+@:,/-]*$`)
	kernelArgs   = regexp.MustCompile(`^[A-Za-z0-9_.,:/=+@%-]{1,255}$`)
)

// Reserved metadata keys are written by the builder itself.
var reservedMetaPrefixes = []string{"ostree.", "debian-atomic.", "version"}

// List returns the names of the variant files in dir, sorted.
func List(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		if n := strings.TrimSuffix(filepath.Base(m), ".yaml"); !IsSettingsFile(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Load reads variants/NAME.yaml from dir.
func Load(dir, name string) (*Variant, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("variant name %q is not valid: use lower case letters, digits and '-' (the file is variants/NAME.yaml)", name)
	}
	path := filepath.Join(dir, name+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			known, _ := List(dir)
			return nil, notFound(fmt.Sprintf("no variant %q: %s does not exist (variants here: %s)", name, path, strings.Join(known, ", ")))
		}
		return nil, err
	}
	return Parse(path, data)
}

// notFound is a missing variant file; errors.Is(err, os.ErrNotExist) holds.
type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == os.ErrNotExist }

// Parse validates the contents of a variant file. path names the file in
// messages, and its base name must match the name field.
func Parse(path string, data []byte) (*Variant, error) {
	v, errs := decode(path, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

// validate checks the decoded values; raw holds each field's line.
func (v *Variant) validate(lines map[string]int, child bool) Errors {
	var errs Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: v.File, Line: lines[field], Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	base := strings.TrimSuffix(filepath.Base(v.File), ".yaml")
	switch {
	case !nameRE.MatchString(v.Name):
		bad("name", "%q is not a valid variant name: use lower case letters, digits and '-'", v.Name)
	case v.Name != base:
		bad("name", "%q does not match the file name %q: rename one of them", v.Name, base+".yaml")
	}
	if child && !nameRE.MatchString(v.Inherits) {
		bad("inherits", "%q is not a variant name: give the name of another file in this folder, without .yaml", v.Inherits)
	}
	if !child {
		if !suiteRE.MatchString(v.Suite) {
			bad("suite", "%q is not a valid suite name (for example trixie)", v.Suite)
		}
		if !archRE.MatchString(v.Architecture) {
			bad("architecture", "%q is not a valid Debian architecture (for example amd64)", v.Architecture)
		}
		if len(v.Components) == 0 {
			bad("components", "list at least one archive component (for example main)")
		}
		for _, c := range v.Components {
			if !componentRE.MatchString(c) {
				bad("components", "%q is not a valid archive component (for example main, contrib, non-free-firmware)", c)
			}
		}
		if v.Bootstrap != Mmdebstrap && v.Bootstrap != Debootstrap {
			bad("bootstrap", "%q is not supported: use %s or %s", v.Bootstrap, Mmdebstrap, Debootstrap)
		}
		v.validatePockets(bad, lines)
	}
	for _, src := range v.Sources {
		if _, err := ParseSource(src); err != nil {
			bad("sources", "%q %v", src, err)
		}
	}
	if len(v.Packages) == 0 {
		bad("packages", "list at least one package")
	}
	seen := map[string]bool{}
	for _, p := range v.Packages {
		switch {
		case !packageRE.MatchString(p):
			bad("packages", "%q is not a valid Debian package name (lower case letters, digits, '+', '-', '.')", p)
		case seen[p]:
			bad("packages", "%q is listed twice", p)
		}
		seen[p] = true
	}
	for p, reason := range v.AllowedSecrets {
		if !secretPathRE.MatchString(p) || p != filepath.Clean(p) || strings.Contains(p, "/../") {
			bad("allowed-secrets", "%q is not an absolute, clean path in the deployed system (for example /etc/ssl/private/site.key)", p)
		}
		if strings.TrimSpace(reason) == "" {
			bad("allowed-secrets", "%q needs a reason: say why every machine may share this key", p)
		}
	}
	for p, content := range v.Files {
		if msg := checkFilePath(p); msg != "" {
			bad("files", "%q %s", p, msg)
		}
		if len(content) > MaxFileBytes {
			bad("files", "%q has %d bytes, more than the %d a variant file may carry: ship it in a package (see `sources`)", p, len(content), MaxFileBytes)
		}
	}
	for _, k := range v.KernelArgs {
		if !kernelArgs.MatchString(k) {
			bad("kernel-args", "%q is not accepted: one argument per list item, made of letters, digits and _.,:/=+@%%-", k)
		}
	}
	if (!child || v.OSName != "") && !osNameRE.MatchString(v.OSName) {
		bad("os-name", "%q is not a valid OSTree os name: letters, digits, '_', '.', '-'", v.OSName)
	}
	if err := checkRef(v.Ref); err != "" {
		bad("ref", "%q %s", v.Ref, err)
	}
	if err := checkMirror(v.Mirror); err != "" && v.MirrorSource == "file" {
		bad("mirror", "%q %s", v.Mirror, err)
	}
	for k, val := range v.Metadata {
		if !metaKeyRE.MatchString(k) {
			bad("metadata", "key %q is not valid: lower case letters, digits, '.', '_', '-'", k)
		}
		for _, p := range reservedMetaPrefixes {
			if strings.HasPrefix(k, p) {
				bad("metadata", "key %q is reserved (the builder writes version, ostree.* and debian-atomic.*)", k)
				break
			}
		}
		if strings.ContainsFunc(val, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			bad("metadata", "value of %q contains control characters", k)
		}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	return errs
}

// MaxFileBytes bounds one file a variant writes: configuration, not payloads.
const MaxFileBytes = 64 << 10

// checkFilePath accepts a clean absolute path under /etc or /usr where a
// deployment keeps the file: postprocess empties /var, moves /etc to
// /usr/etc (so that is written as /etc), and OSTree links /usr/local to /var.
func checkFilePath(p string) string {
	if !secretPathRE.MatchString(p) || p != filepath.Clean(p) || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return "is not an absolute, clean file path (for example /etc/sway/config.d/50-applets.conf)"
	}
	under := func(dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	switch {
	case under("/usr/etc"):
		return "is where the build moves /etc: write it as " + strings.TrimPrefix(p, "/usr")
	case under("/usr/local"):
		return "is under /usr/local, which a deployment links to /var/usrlocal (machine state, not the commit): use /usr or /etc"
	case p == "/etc" || p == "/usr" || !under("/etc") && !under("/usr"):
		return "is not a file under /etc or /usr, the parts of the tree a commit carries (/var and /home are each machine's)"
	}
	return ""
}

func checkRef(ref string) string {
	if ref == "" || len(ref) > 255 {
		return "is not a valid OSTree ref"
	}
	for _, part := range strings.Split(ref, "/") {
		if part == "." || part == ".." || !refPartRE.MatchString(part) {
			return "is not a valid OSTree ref: use parts of letters, digits, '.', '_', '-' separated by '/', for example debian/13/x86_64/minimal"
		}
	}
	return ""
}

// checkMirror accepts http, https and file URLs without spaces or quotes.
func checkMirror(m string) string {
	u, err := url.Parse(m)
	if err != nil || strings.ContainsAny(m, " \t\n'\"`$;\\") {
		return "is not a valid URL"
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return "has no host"
		}
	case "file":
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return "must name an absolute path (file:///srv/mirror)"
		}
	default:
		return "must be an http://, https:// or file:// URL"
	}
	return ""
}

// resolveMirror applies the precedence environment > file > host > default.
func (v *Variant) resolveMirror(fromFile string) {
	switch {
	case os.Getenv(MirrorEnv) != "":
		v.Mirror, v.MirrorSource = strings.TrimRight(os.Getenv(MirrorEnv), "/"), "environment "+MirrorEnv
	case fromFile != "":
		v.Mirror, v.MirrorSource = strings.TrimRight(fromFile, "/"), "file"
	default:
		if m := HostMirror("/etc/apt"); m != "" {
			v.Mirror, v.MirrorSource = m, "host apt sources"
		} else {
			v.Mirror, v.MirrorSource = DefaultMirror, "default"
		}
	}
}

// CheckMirror validates a mirror from any source; the builder calls it so a bad
// environment value is reported before any work.
func (v *Variant) CheckMirror() error {
	if msg := checkMirror(v.Mirror); msg != "" {
		return fmt.Errorf("mirror %q (from %s) %s", v.Mirror, v.MirrorSource, msg)
	}
	return v.CheckSecurityMirror()
}
