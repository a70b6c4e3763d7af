package build

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Archive problems give one message that names the URL and what failed, and
// change nothing.
func TestE2EArchiveErrors(t *testing.T) {
	e2e(t)
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	cases := map[string]struct {
		suite, mirror string
		want          []string
	}{
		"unknown suite":      {"nosuchsuite", "http://deb.debian.org/debian", []string{"http://deb.debian.org/debian nosuchsuite", "does not have a Release file"}},
		"unreachable mirror": {"trixie", "http://127.0.0.1:9/debian", []string{"http://127.0.0.1:9/debian", "Connection refused"}},
		"mirror answers 404": {"trixie", notFound.URL + "/debian", []string{notFound.URL + "/debian trixie Release", "404  Not Found"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			vdir := t.TempDir()
			body := "name: bad\nsuite: " + c.suite + "\nmirror: " + c.mirror + "\narchitecture: amd64\nos-name: debian\nref: test/bad\npackages: [hello]\n"
			os.WriteFile(filepath.Join(vdir, "bad.yaml"), []byte(body), 0o644)
			cfg := e2eConfig(t, vdir)
			_, err := Variants(context.Background(), cfg, []string{"bad"})
			if err == nil {
				t.Fatal("built from a broken archive")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message does not mention %q:\n%v", w, err)
				}
			}
			if exists(filepath.Join(vdir, "variants.lock")) {
				t.Error("a lock was written from a failed resolution")
			}
			if out := cfg.outRepo(); out.Exists() {
				if _, ok := out.RevParse(context.Background(), "test/bad"); ok {
					t.Error("a ref was made")
				}
			}
		})
	}
}

// A package the archive does not have is named with apt's reason; no commit.
func TestE2EUnknownPackage(t *testing.T) {
	e2e(t)
	vdir := copyVariant(t, "tiny", func(s string) string {
		return strings.Replace(s, "  - hello\n", "  - hello\n  - no-such-package-here\n", 1)
	})
	cfg := e2eConfig(t, vdir)
	_, err := Variants(context.Background(), cfg, []string{"tiny"})
	if err == nil || !strings.Contains(err.Error(), "no-such-package-here") || !strings.Contains(err.Error(), "Unable to locate package") {
		t.Fatalf("got %v", err)
	}
}
