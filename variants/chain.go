package variants

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// LoadChain loads a variant and, through inherits, every variant it builds
// on, to any depth. The result carries its parents and the settings it shares
// with them (suite, mirror, architecture, components, bootstrap tool).
func LoadChain(dir, name string) (*Variant, error) {
	var chain []*Variant
	var names []string
	seen := map[string]bool{}
	for cur := name; ; {
		names = append(names, cur)
		if seen[cur] {
			return nil, fmt.Errorf("inheritance cycle: %s: fix the inherits fields", strings.Join(names, " -> "))
		}
		seen[cur] = true
		v, err := Load(dir, cur)
		if err != nil {
			if len(chain) > 0 && errors.Is(err, os.ErrNotExist) {
				child := chain[len(chain)-1]
				return nil, fmt.Errorf("%s: field \"inherits\": variant %q does not exist (%s) in the chain %s",
					child.File, cur, filepath.Join(dir, cur+".yaml"), strings.Join(names, " -> "))
			}
			return nil, err
		}
		chain = append(chain, v)
		if v.Inherits == "" {
			break
		}
		cur = v.Inherits
	}
	for i := len(chain) - 2; i >= 0; i-- {
		chain[i].inherit(chain[i+1])
	}
	return chain[0], nil
}

// inherit takes the shared settings from p: the bootstrap's, the os name and
// kernel arguments unless set, and metadata under this variant's own.
func (v *Variant) inherit(p *Variant) {
	v.Parent = p
	v.Suite, v.Mirror, v.MirrorSource = p.Suite, p.Mirror, p.MirrorSource
	v.Architecture, v.Components, v.Bootstrap = p.Architecture, p.Components, p.Bootstrap
	v.Updates, v.SecurityMirror, v.SecurityMirrorSource = p.Updates, p.SecurityMirror, p.SecurityMirrorSource
	v.SystemMirror, v.SystemSecurityMirror = p.SystemMirror, p.SystemSecurityMirror
	if v.OSName == "" {
		v.OSName = p.OSName
	}
	args := append([]string(nil), p.KernelArgs...)
	for _, a := range v.KernelArgs {
		if !slices.Contains(args, a) {
			args = append(args, a)
		}
	}
	v.KernelArgs = args
	meta := map[string]string{}
	for k, val := range p.Metadata {
		meta[k] = val
	}
	for k, val := range v.Metadata {
		meta[k] = val
	}
	v.Metadata = meta
}

// Layers is the chain from the base variant down to v.
func (v *Variant) Layers() []*Variant {
	var out []*Variant
	for cur := v; cur != nil; cur = cur.Parent {
		out = append([]*Variant{cur}, out...)
	}
	return out
}

// Source is one extra apt source of a layer.
type Source struct {
	Trusted    bool
	URL        string
	Suite      string
	Components []string
}

var sourceSuiteRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$|^\./?$`)

// ParseSource reads "[trusted=yes] URL SUITE [COMPONENT...]", the one-line
// apt format without its leading "deb".
func ParseSource(s string) (Source, error) {
	f := strings.Fields(s)
	var src Source
	if len(f) > 0 && f[0] == "[trusted=yes]" {
		src.Trusted = true
		f = f[1:]
	}
	if len(f) < 2 {
		return src, errors.New(`is not an apt source: write "[trusted=yes] URL SUITE [COMPONENT...]", for example "file:///srv/repo ./"`)
	}
	if msg := checkMirror(f[0]); msg != "" {
		return src, fmt.Errorf("has a URL that %s", msg)
	}
	if !sourceSuiteRE.MatchString(f[1]) || strings.Contains(f[1], "..") {
		return src, fmt.Errorf("has an invalid suite %q", f[1])
	}
	for _, c := range f[2:] {
		if !componentRE.MatchString(c) {
			return src, fmt.Errorf("has an invalid component %q", c)
		}
	}
	if strings.HasSuffix(f[1], "/") && len(f) > 2 {
		return src, errors.New("is a flat repository (suite ending in /) and takes no components")
	}
	src.URL, src.Suite, src.Components = strings.TrimRight(f[0], "/"), f[1], f[2:]
	return src, nil
}

// Line is the source as a sources.list line, with the URL replaced by url.
func (s Source) Line(url string) string {
	opt := ""
	if s.Trusted {
		opt = "[trusted=yes] "
	}
	return strings.TrimSpace(fmt.Sprintf("deb %s%s %s %s", opt, url, s.Suite, strings.Join(s.Components, " ")))
}

// AllowedSecretPaths is every path the guard lets pass for v: its own
// allowed secrets and those of the layers under it, sorted.
func (v *Variant) AllowedSecretPaths() []string {
	var out []string
	for _, l := range v.Layers() {
		for p := range l.AllowedSecrets {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}
