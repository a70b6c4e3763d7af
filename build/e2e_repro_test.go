package build

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/debian-atomic/builder/ostreeops"
)

// rootTree reads the root tree checksum a commit records, and checks that it
// is the commit's own.
func rootTree(t *testing.T, cfg Config, commit string) string {
	t.Helper()
	repo := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
	meta := readMeta(context.Background(), repo, commit, MetaRootTree)[MetaRootTree]
	got, err := repo.RootTree(context.Background(), commit)
	if err != nil {
		t.Fatal(err)
	}
	if meta != got {
		t.Fatalf("commit %s records root tree %q, has %s", commit, meta, got)
	}
	return got
}

// sameTree fails with the files that differ when two builds of the same lock
// (in caches a and b) made different trees.
func sameTree(t *testing.T, a Config, ca string, b Config, cb string) {
	t.Helper()
	ta, tb := rootTree(t, a, ca), rootTree(t, b, cb)
	if ta == tb {
		t.Logf("reproducible: both builds have root tree %s", ta)
		return
	}
	ostreeOut(t, a.RepoDir, "pull-local", b.RepoDir, cb)
	t.Errorf("two builds of the same lock differ (root trees %s and %s); files:\n%s", ta, tb, ostreeOut(t, a.RepoDir, "diff", ca, cb))
}

// noSecrets checks a commit ships no SSH host key and no private key.
func noSecrets(t *testing.T, cfg Config, commit string) {
	t.Helper()
	all := ostreeOut(t, cfg.RepoDir, "ls", "-R", commit)
	for _, l := range strings.Split(all, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		p := f[4]
		if strings.Contains(p, "/ssh_host_") || strings.HasPrefix(p, "/usr/etc/ssl/private/") && f[0][0] == '-' ||
			strings.HasSuffix(p, "/random-seed") || strings.HasSuffix(p, "/credential.secret") || strings.HasSuffix(p, "/passwords.dat") {
			t.Errorf("the commit ships %s", p)
		}
	}
}

// Two cold builds of the tiny variant in separate caches, one after the
// other, make the same tree.
func TestE2EReproducibleSmallVariant(t *testing.T) {
	e2e(t)
	vdir := copyVariant(t, "tiny", func(s string) string { return s })
	a, b := e2eConfig(t, vdir), e2eConfig(t, vdir)
	ra := buildOne(t, a, "tiny")
	rb := buildOne(t, b, "tiny")
	if rb.Ran() != len(Steps) {
		t.Fatalf("the second cache was not cold: ran %d steps", rb.Ran())
	}
	sameTree(t, a, ra.Commit, b, rb.Commit)
	noSecrets(t, a, ra.Commit)
}

// reproduceMinimal builds minimal again, cold, in its own cache and later
// than the first build, and compares the trees (TestE2EMinimalDeploys).
func reproduceMinimal(t *testing.T, first Config, commit string, began time.Time) {
	t.Helper()
	second := e2eConfig(t, first.VariantsDir)
	rep := buildOne(t, second, "minimal")
	if rep.Ran() != len(Steps) {
		t.Fatalf("the second cache was not cold: ran %d steps", rep.Ran())
	}
	t.Logf("second cold build of minimal, %s after the first began", time.Since(began).Round(time.Second))
	sameTree(t, first, commit, second, rep.Commit)
}
