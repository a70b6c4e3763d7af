package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
	"github.com/rs/zerolog"
)

// The peer's recipe is minimal as a debos user would write it: every layer's
// packages without Recommends, the suites the variant follows, the same
// initramfs, the layout, one commit on the variant's ref.
func TestDebosRecipeIsTheVariant(t *testing.T) {
	t.Setenv("DEBIAN_ATOMIC_MIRROR", "http://deb.debian.org/debian")
	t.Setenv("DEBIAN_ATOMIC_SECURITY_MIRROR", "")
	v, err := variants.LoadChain(filepath.Join("..", "variants"), "gnome")
	if err != nil {
		t.Fatal(err)
	}
	files, err := debosRecipe(v)
	if err != nil {
		t.Fatal(err)
	}
	var recipe struct {
		Architecture string
		Actions      []map[string]any
	}
	if err := yaml.Unmarshal([]byte(files["recipe.yaml"]), &recipe); err != nil {
		t.Fatalf("%v\n%s", err, files["recipe.yaml"])
	}
	var kinds []string
	for _, a := range recipe.Actions {
		kinds = append(kinds, a["action"].(string))
	}
	if want := []string{"debootstrap", "overlay", "run", "apt", "run", "run", "run", "ostree-commit"}; !slices.Equal(kinds, want) {
		t.Fatalf("actions %v, want %v", kinds, want)
	}
	if recipe.Architecture != "amd64" || recipe.Actions[0]["suite"] != "trixie" || recipe.Actions[0]["variant"] != "minbase" {
		t.Errorf("debootstrap action: %v (architecture %s)", recipe.Actions[0], recipe.Architecture)
	}
	apt := recipe.Actions[3]
	var pkgs []string
	for _, p := range apt["packages"].([]any) {
		pkgs = append(pkgs, p.(string))
	}
	for _, want := range []string{"linux-image-amd64", "dracut", "ostree-boot", "gnome-core", "gdm3"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("apt action lacks %s (minimal's and gnome's packages): %v", want, pkgs)
		}
	}
	if apt["recommends"] != false {
		t.Errorf("Recommends should be off, as in the variant: %v", apt["recommends"])
	}
	if c := recipe.Actions[7]; c["branch"] != v.Ref || c["repository"] != "repo" {
		t.Errorf("ostree-commit: %v", c)
	}
	sources := files["overlay/etc/apt/sources.list.d/debian.sources"]
	for _, want := range []string{"trixie trixie-updates", "trixie-security", "http://deb.debian.org/debian-security"} {
		if !strings.Contains(sources, want) {
			t.Errorf("sources lack %q:\n%s", want, sources)
		}
	}
	if !strings.Contains(files["initramfs.sh"], "--add ostree") || !strings.Contains(files["layout.sh"], "mv etc usr/etc") {
		t.Error("the initramfs or layout script is not the builder's equivalent")
	}
}

// The peer for real, opt-in (it installs debos): minimal from its recipe to
// a commit that ostree can read, with the kernel and initramfs where the
// builder's commits have them.
func TestE2EDebosPeer(t *testing.T) {
	if os.Getenv("DEBIAN_ATOMIC_BENCH_PEERS") != "1" || os.Geteuid() != 0 {
		t.Skip("opt-in: DEBIAN_ATOMIC_BENCH_PEERS=1 as root installs debos and builds minimal with it (never in CI)")
	}
	root, _ := filepath.Abs("..")
	cfg := build.DefaultConfig(root, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	v, err := variants.LoadChain(cfg.VariantsDir, "minimal")
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureDebos(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now()
	if err := Debos(context.Background(), cfg, v, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("debos built minimal in %s", time.Since(start).Round(time.Second))
	repo := filepath.Join(dir, "out", "repo")
	out, err := exec.Command("ostree", "ls", "--repo="+repo, v.Ref, "/usr/lib/modules").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ls, err := exec.Command("ostree", "ls", "-R", "--repo="+repo, v.Ref, "/usr/lib/modules").CombinedOutput()
	if err != nil || !strings.Contains(string(ls), "/initramfs.img") || !strings.Contains(string(ls), "/vmlinuz") {
		t.Errorf("no kernel and initramfs in the commit (%v):\n%s", err, ls)
	}
	if out, err := exec.Command("ostree", "fsck", "--repo="+repo).CombinedOutput(); err != nil {
		t.Errorf("fsck: %v\n%s", err, out)
	}
}
