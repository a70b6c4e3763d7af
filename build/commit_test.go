package build

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/ostreeops"
)

// The output commit is a commit object over the stored postprocess tree in
// the one repository: the same root tree as the old copy into a second
// repository gave, its metadata, and the parent chain of the ref.
func TestOneRepositoryOutputCommit(t *testing.T) {
	e := newTestEnv(t, "hello")
	first := e.mustBuild()
	e.setPackages("hello", "zsh")
	second := e.mustBuild()
	ctx := context.Background()
	if n := e.runner.count("ostree --repo=" + e.cfg.RepoDir + " pull-local"); n != 0 {
		t.Errorf("the output commit pulled %d times: nothing should be copied", n)
	}
	repo := e.cfg.outRepo()
	if e.cfg.storeRepo().Path != repo.Path {
		t.Fatalf("step results in %s, refs in %s: want one repository", e.cfg.storeRepo().Path, repo.Path)
	}
	var pp string
	for _, s := range second.Steps {
		if s.Step == StepPostprocess {
			pp = s.Result
		}
	}
	stored, err := repo.RootTree(ctx, pp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := repo.RootTree(ctx, second.Commit)
	if err != nil {
		t.Fatal(err)
	}
	// Before: the postprocess tree was pulled into a separate output
	// repository and committed there. Do that once and compare digests.
	old := ostreeops.Repo{Path: filepath.Join(t.TempDir(), "out"), Runner: e.runner}
	if err := old.Init(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	if err := old.PullLocal(ctx, repo.Path, pp); err != nil {
		t.Fatal(err)
	}
	oc, err := old.Commit(ctx, ostreeops.CommitOptions{Branch: "test/t", TreeRef: pp, Subject: "old way"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := old.RootTree(ctx, oc)
	if got != stored || got != before {
		t.Errorf("root trees: output commit %s, stored postprocess tree %s, the old copy's commit %s: want one digest", got, stored, before)
	}
	meta := readMeta(ctx, repo, second.Commit, MetaRootTree, MetaInputKey, MetaVersion, MetaVariant)
	if meta[MetaRootTree] != got || meta[MetaInputKey] != string(second.Steps[len(second.Steps)-1].Key) || meta[MetaVersion] != second.Version || meta[MetaVariant] != "t" {
		t.Errorf("metadata %v (root tree %s, version %s)", meta, got, second.Version)
	}
	if pk, _ := repo.Metadata(ctx, second.Commit, MetaPackages); !strings.Contains(pk, "('zsh', '1.0-1', 'amd64')") {
		t.Errorf("package metadata: %s", pk)
	}
	if p := repo.Parent(ctx, second.Commit); p != first.Commit {
		t.Errorf("parent of the new commit %q, want %s", p, first.Commit)
	}
	if p := repo.Parent(ctx, first.Commit); p != "" {
		t.Errorf("the first commit has a parent %s", p)
	}
	if cur, _ := repo.RevParse(ctx, "test/t"); cur != second.Commit {
		t.Errorf("ref at %s, want %s", cur, second.Commit)
	}
	if out, err := exec.Command("ostree", "--repo="+repo.Path, "fsck", "--quiet").CombinedOutput(); err != nil {
		t.Errorf("fsck of the repository: %v\n%s", err, out)
	}
}
