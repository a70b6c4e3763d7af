package pipeline

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// actionlintVersion is pinned: the Go module proxy serves it, so CI needs
// nothing but Go to lint the workflow.
const actionlintVersion = "v1.7.12"

const root = ".."

func TestGitHubWorkflowPassesActionlint(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: actionlint is fetched through the Go module proxy")
	}
	cmd := exec.Command("go", "run", "github.com/rhysd/actionlint/cmd/actionlint@"+actionlintVersion, "-no-color", ".github/workflows/build.yml")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint %s: %v\n%s", actionlintVersion, err, out)
	}
}

// mageTarget finds `mage TARGET` and `mage.go TARGET` in a command line.
var mageTarget = regexp.MustCompile(`(?:^|[\s;(])mage(?:\.go)?\s+([A-Za-z][\w:]*)`)

// targets lists the magefile's targets as `mage -l` prints them.
func targets(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "run", "mage.go", "-l")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run mage.go -l: %v\n%s", err, out)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "  ") && len(f) > 0 {
			names = append(names, strings.ToLower(strings.TrimSuffix(f[0], "*")))
		}
	}
	if !slices.Contains(names, "build:minimal") || !slices.Contains(names, "cache:push") {
		t.Fatalf("mage -l printed no targets I know:\n%s", out)
	}
	return names
}

// scripts collects every string under a script, before_script or
// after_script key of a GitLab CI document (anchors resolved).
func scripts(n *yaml.Node, in bool, out *[]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			scripts(c, in, out)
		}
	case yaml.AliasNode:
		scripts(n.Alias, in, out)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			scripts(n.Content[i+1], in || k == "script" || k == "before_script" || k == "after_script", out)
		}
	case yaml.ScalarNode:
		if in {
			*out = append(*out, n.Value)
		}
	}
}

func TestGitLabCIParsesAndNamesOnlyExistingTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: mage -l compiles the magefile")
	}
	data, err := os.ReadFile(filepath.Join(root, ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf(".gitlab-ci.yml: %v", err)
	}
	var ci struct {
		Stages []string `yaml:"stages"`
	}
	type job struct {
		Stage    string    `yaml:"stage"`
		Script   yaml.Node `yaml:"script"` // nested lists (anchors) are flattened by GitLab
		Parallel struct {
			Matrix []map[string][]string `yaml:"matrix"`
		} `yaml:"parallel"`
	}
	var top map[string]yaml.Node
	if err := doc.Decode(&ci); err != nil {
		t.Fatal(err)
	}
	if err := doc.Decode(&top); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]job{}
	for name, n := range top {
		if n.Kind != yaml.MappingNode || strings.HasPrefix(name, ".") || name == "default" || name == "variables" {
			continue
		}
		var j job
		if err := n.Decode(&j); err != nil {
			t.Fatalf(".gitlab-ci.yml job %s: %v", name, err)
		}
		if len(j.Script.Content) == 0 {
			t.Errorf("job %s has no script", name)
		}
		jobs[name] = j
	}
	for name, j := range jobs {
		if j.Stage != "" && !slices.Contains(ci.Stages, j.Stage) {
			t.Errorf("job %s: stage %q is not among %v", name, j.Stage, ci.Stages)
		}
		for _, m := range j.Parallel.Matrix {
			for _, v := range m["VARIANT"] {
				if _, err := os.Stat(filepath.Join(root, "variants", v+".yaml")); err != nil {
					t.Errorf("job %s builds variant %s, which has no variants/%s.yaml", name, v, v)
				}
			}
		}
	}
	for _, want := range []string{"update", "base", "desktop", "publish"} {
		if _, ok := jobs[want]; !ok {
			t.Errorf(".gitlab-ci.yml has no %s job", want)
		}
	}
	var lines []string
	scripts(&doc, false, &lines)
	// The shared steps script and the GitHub workflow name targets too.
	for _, f := range []string{".ci/pipeline", ".github/workflows/build.yml"} {
		body, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(body))
	}
	known := targets(t)
	named := 0
	for _, l := range strings.Split(strings.Join(lines, "\n"), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "#") || strings.Contains(l, "usage:") {
			continue // comments and the usage message
		}
		for _, m := range mageTarget.FindAllStringSubmatch(l, -1) {
			named++
			if !slices.Contains(known, strings.ToLower(m[1])) {
				t.Errorf("the pipeline runs `mage %s`, which `mage -l` does not list (%v)", m[1], known)
			}
		}
	}
	if named < 8 {
		t.Errorf("found only %d mage targets in the pipeline files", named)
	}
}
