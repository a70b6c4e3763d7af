package variants

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Pockets a base variant may follow besides its suite (field updates):
// SUITE-updates on the mirror (point-release fixes published between point
// releases) and SUITE-security on the security archive (Debian's DSAs).
const (
	PocketUpdates  = "updates"
	PocketSecurity = "security"
)

// DefaultPockets is what a base variant without an updates field follows.
var DefaultPockets = []string{PocketUpdates, PocketSecurity}

// noPocketSuites have neither -updates nor -security suites: a variant on
// them follows nothing more by default, and may not ask to.
var noPocketSuites = []string{"sid", "unstable", "experimental", "rc-buggy"}

// DebianKeyring verifies the Debian archive and its security archive, on the
// host (the resolver, mmdebstrap, debootstrap) and in the tree (apt there):
// debian-archive-keyring ships it in both.
const DebianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// SecurityMirrorEnv overrides every variant's security mirror for the build.
const SecurityMirrorEnv = "DEBIAN_ATOMIC_SECURITY_MIRROR"

// SourcesFile is the one apt sources file of a committed system.
const SourcesFile = "etc/apt/sources.list.d/debian.sources"

// Follows reports whether the variant's base follows pocket p.
func (v *Variant) Follows(p string) bool { return slices.Contains(v.Updates, p) }

// MainSuites are the suites read from the main mirror: the suite and, when
// followed, SUITE-updates.
func (v *Variant) MainSuites() []string {
	out := []string{v.Suite}
	if v.Follows(PocketUpdates) {
		out = append(out, v.Suite+"-updates")
	}
	return out
}

// SecuritySuite is SUITE-security when followed, else "".
func (v *Variant) SecuritySuite() string {
	if v.Follows(PocketSecurity) {
		return v.Suite + "-security"
	}
	return ""
}

// Suites is every suite the variant installs from, main suite first.
func (v *Variant) Suites() []string {
	out := v.MainSuites()
	if s := v.SecuritySuite(); s != "" {
		out = append(out, s)
	}
	return out
}

// DebianSources is the deb822 apt sources text for the variant's suites with
// the given archive and security archive URLs, verified with keyring (the
// Debian archive keyring; tests sign a local archive with their own).
func (v *Variant) DebianSources(mirror, security, keyring string) string {
	var b strings.Builder
	stanza := func(uri string, suites []string) {
		fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: %s\n",
			uri, strings.Join(suites, " "), strings.Join(v.Components, " "), keyring)
	}
	stanza(mirror, v.MainSuites())
	if s := v.SecuritySuite(); s != "" {
		b.WriteString("\n")
		stanza(security, []string{s})
	}
	return b.String()
}

// SystemSources is the committed system's /etc/apt/sources.list.d/
// debian.sources: the mirrors the variant file names, else Debian's own
// (deb.debian.org). Build-time mirrors (environment, host) are not in it: a
// proxy or a local mirror of the build machine means nothing on a deployed one.
func (v *Variant) SystemSources() string {
	return v.DebianSources(v.SystemMirror, v.SystemSecurityMirror, DebianKeyring)
}

// BuildSources is the same suites at the mirrors this build fetches from.
func (v *Variant) BuildSources() string {
	return v.DebianSources(v.Mirror, v.SecurityMirror, DebianKeyring)
}

// securityCounterpart derives the security archive that goes with a Debian
// mirror: http://deb.debian.org/debian -> http://deb.debian.org/debian-security
// (also right for proxies of it, such as apt-cacher-ng's). "" when the URL
// does not end in /debian.
func securityCounterpart(mirror string) string {
	m := strings.TrimRight(mirror, "/")
	if !strings.HasSuffix(m, "/debian") || checkMirror(m) != "" {
		return ""
	}
	return m + "-security"
}

// resolveSecurity sets the security mirrors, for the build and for the
// committed system. Precedence for the build: environment, file, the host's
// security source when the mirror is the host's, the mirror's counterpart.
func (v *Variant) resolveSecurity(fromFile, mirrorFromFile string) {
	v.SystemMirror = DefaultMirror
	if mirrorFromFile != "" {
		v.SystemMirror = strings.TrimRight(mirrorFromFile, "/")
	}
	v.SystemSecurityMirror = securityCounterpart(v.SystemMirror)
	if fromFile != "" {
		v.SystemSecurityMirror = strings.TrimRight(fromFile, "/")
	}
	switch {
	case os.Getenv(SecurityMirrorEnv) != "":
		v.SecurityMirror, v.SecurityMirrorSource = strings.TrimRight(os.Getenv(SecurityMirrorEnv), "/"), "environment "+SecurityMirrorEnv
	case fromFile != "":
		v.SecurityMirror, v.SecurityMirrorSource = strings.TrimRight(fromFile, "/"), "file"
	case v.MirrorSource == "host apt sources" && HostSecurityMirror("/etc/apt") != "":
		v.SecurityMirror, v.SecurityMirrorSource = HostSecurityMirror("/etc/apt"), "host apt sources"
	default:
		v.SecurityMirror, v.SecurityMirrorSource = securityCounterpart(v.Mirror), "derived from the mirror "+v.Mirror
	}
}

// validatePockets checks updates and the security mirrors of a base variant.
func (v *Variant) validatePockets(bad func(field, format string, args ...any), lines map[string]int) {
	// The file's mirror goes into the system's sources even when the
	// environment overrides it for the build (validate checks it otherwise).
	if _, set := lines["mirror"]; set && v.MirrorSource != "file" {
		if msg := checkMirror(v.SystemMirror); msg != "" {
			bad("mirror", "%q %s", v.SystemMirror, msg)
		}
	}
	seen := map[string]bool{}
	for _, p := range v.Updates {
		switch {
		case p != PocketUpdates && p != PocketSecurity:
			bad("updates", "%q is not known: list %s (SUITE-updates) and/or %s (SUITE-security), or [] for the suite alone", p, PocketUpdates, PocketSecurity)
		case seen[p]:
			bad("updates", "%q is listed twice", p)
		}
		seen[p] = true
	}
	if slices.Contains(noPocketSuites, v.Suite) && len(v.Updates) > 0 {
		bad("updates", "suite %s has no -updates or -security suites: write updates: []", v.Suite)
	}
	if !v.Follows(PocketSecurity) {
		return
	}
	if _, set := lines["security-mirror"]; set {
		if msg := checkMirror(v.SystemSecurityMirror); msg != "" {
			bad("security-mirror", "%q %s", v.SystemSecurityMirror, msg)
		}
		return
	}
	if v.SystemSecurityMirror == "" {
		field := "mirror"
		if _, set := lines["mirror"]; !set {
			field = "updates"
		}
		bad(field, "the security archive of mirror %s cannot be derived (only a URL ending in /debian has one, at /debian-security): set security-mirror, or leave security out of updates", v.SystemMirror)
	}
}

// CheckSecurityMirror validates the build's security mirror from any source,
// as CheckMirror does the mirror.
func (v *Variant) CheckSecurityMirror() error {
	if !v.Follows(PocketSecurity) {
		return nil
	}
	if v.SecurityMirror == "" {
		return fmt.Errorf("the security archive of mirror %s (from %s) cannot be derived: set %s, or security-mirror in %s",
			v.Mirror, v.MirrorSource, SecurityMirrorEnv, v.Layers()[0].File)
	}
	if msg := checkMirror(v.SecurityMirror); msg != "" {
		return fmt.Errorf("security mirror %q (from %s) %s", v.SecurityMirror, v.SecurityMirrorSource, msg)
	}
	return nil
}
