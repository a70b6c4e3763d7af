package variants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds the variant parser arbitrary files. It must never panic,
// and whatever it accepts must be safe to put on a command line.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "variants*", "*.yaml"))
	seeds = append(seeds, "minimal.yaml", "gnome.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name: x\nsuite: trixie\narchitecture: amd64\npackages: [a1]\nos-name: d\nref: a/b\n"))
	f.Add([]byte("name: x\ninherits: y\nref: a\npackages: [a1]\nsources: ['[trusted=yes] file:///r ./']\n"))
	f.Add([]byte("name: x\nsuite: trixie\narchitecture: amd64\npackages: [a1]\nos-name: d\nref: a/b\nupdates: [security]\nsecurity-mirror: http://s/x\nmirror: http://m/y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Setenv(MirrorEnv, "")
		v, err := Parse("x.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, p := range v.Packages {
			if !packageRE.MatchString(p) {
				t.Fatalf("accepted package %q", p)
			}
		}
		if checkRef(v.Ref) != "" || strings.Contains(v.Ref, "..") {
			t.Fatalf("accepted ref %q", v.Ref)
		}
		for _, k := range v.KernelArgs {
			if strings.ContainsAny(k, " \t\n;$`'\"\\|&<>()") {
				t.Fatalf("accepted kernel argument %q", k)
			}
		}
		for _, s := range v.Sources {
			if _, err := ParseSource(s); err != nil {
				t.Fatalf("accepted source %q: %v", s, err)
			}
		}
		// The suites and URLs go into apt sources files, one field a line.
		for _, p := range v.Updates {
			if p != PocketUpdates && p != PocketSecurity {
				t.Fatalf("accepted pocket %q", p)
			}
		}
		if v.Inherits == "" && v.Follows(PocketSecurity) && checkMirror(v.SystemSecurityMirror) != "" {
			t.Fatalf("accepted security mirror %q", v.SystemSecurityMirror)
		}
		if v.Inherits == "" && checkMirror(v.SystemMirror) != "" {
			t.Fatalf("accepted mirror %q", v.SystemMirror)
		}
	})
}
