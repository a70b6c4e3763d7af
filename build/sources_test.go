package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/variants"
)

func TestSystemSourcesReplaceTheBootstrapsOwn(t *testing.T) {
	t.Setenv(variants.MirrorEnv, "http://127.0.0.1:3142/debian")
	t.Setenv(variants.SecurityMirrorEnv, "")
	vdir := t.TempDir()
	os.WriteFile(filepath.Join(vdir, "b.yaml"), []byte("name: b\nsuite: trixie\narchitecture: amd64\nos-name: debian\nref: t/b\npackages: [hello]\n"), 0o644)
	v, err := variants.LoadChain(vdir, "b")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb http://127.0.0.1:3142/debian trixie main\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/0000debian.sources"), []byte(v.BuildSources()), 0o644)
	if err := writeSystemSources(root, v); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "etc/apt/sources.list.d"))
	if len(entries) != 1 || entries[0].Name() != "debian.sources" || exists(filepath.Join(root, "etc/apt/sources.list")) {
		t.Errorf("left in etc/apt: sources.list %v, sources.list.d %v", exists(filepath.Join(root, "etc/apt/sources.list")), entries)
	}
	system, _ := os.ReadFile(filepath.Join(root, variants.SourcesFile))
	if string(system) != v.SystemSources() || strings.Contains(string(system), "127.0.0.1") {
		t.Errorf("system sources:\n%s", system)
	}

	// During a step apt reads the build's mirrors; afterwards the system's
	// file is back, byte for byte.
	c := &chroot{root: root, runner: newFakeRunner()}
	if moved, err := c.withBuildSources(context.Background(), v); err != nil || moved {
		t.Fatal(moved, err)
	}
	during, _ := os.ReadFile(filepath.Join(root, variants.SourcesFile))
	if !strings.Contains(string(during), "URIs: http://127.0.0.1:3142/debian\n") || !strings.Contains(string(during), "Suites: trixie-security\n") {
		t.Errorf("build sources during the step:\n%s", during)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(root, variants.SourcesFile)); string(after) != string(system) {
		t.Errorf("system sources not restored:\n%s", after)
	}
}

// A file: mirror is bind-mounted into the tree and read there; the lists a
// bootstrap left under its host path then do not apply.
func TestFileMirrorIsReadInsideTheTree(t *testing.T) {
	t.Setenv(variants.MirrorEnv, "")
	t.Setenv(variants.SecurityMirrorEnv, "")
	vdir := t.TempDir()
	os.WriteFile(filepath.Join(vdir, "b.yaml"), []byte("name: b\nsuite: trixie\narchitecture: amd64\nmirror: file:///srv/mirror/debian\nos-name: debian\nref: t/b\npackages: [hello]\n"), 0o644)
	v, err := variants.LoadChain(vdir, "b")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := writeSystemSources(root, v); err != nil {
		t.Fatal(err)
	}
	runner := newFakeRunner()
	c := &chroot{root: root, runner: runner}
	moved, err := c.withBuildSources(context.Background(), v)
	if err != nil || !moved {
		t.Fatalf("moved %v, %v", moved, err)
	}
	during, _ := os.ReadFile(filepath.Join(root, variants.SourcesFile))
	if !strings.Contains(string(during), "URIs: file:/run/debian-atomic/mirror-0\n") || !strings.Contains(string(during), "URIs: file:/run/debian-atomic/mirror-1\n") {
		t.Errorf("build sources:\n%s", during)
	}
	if runner.count("mount --bind /srv/mirror/debian ") != 1 || runner.count("mount --bind /srv/mirror/debian-security ") != 1 {
		t.Errorf("binds: %v", runner.calls)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(root, variants.SourcesFile)); string(after) != v.SystemSources() || len(runner.stillMounted()) != 0 {
		t.Errorf("after the step: %s, mounted %v", after, runner.stillMounted())
	}
}
