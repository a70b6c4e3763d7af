package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

// debos is the peer the report compares with (`--peers`): the recipe a debos
// user would write for the same commit. debos has no cache, so every run
// bootstraps, downloads and installs everything again; that is the point of
// the comparison. It runs without fakemachine (debos's VM needs KVM, which
// these machines lack), as root on the host, as debos's own docs allow.

// debosLayout is the OSTree layout as a debos user scripts it: the kernel
// into its modules folder, the package database and /etc under /usr, the
// state folders into /var, and /var kept aside for tmpfiles.d. It runs on
// the host with debos's ROOTDIR.
const debosLayout = `#!/bin/sh
set -eu
cd "$ROOTDIR"
k=$(ls usr/lib/modules)
mv "boot/vmlinuz-$k" "usr/lib/modules/$k/vmlinuz"
rm -rf boot/* vmlinuz* initrd.img* var/cache/apt var/lib/apt/lists var/log etc/hostname
: > etc/machine-id
mkdir -p usr/share/dpkg
mv var/lib/dpkg ` + treelayout.DpkgDatabase + `
ln -s ../../` + treelayout.DpkgDatabase + ` var/lib/dpkg
for d in home opt srv mnt; do mv "$d" "var/$d"; ln -s "var/$d" "$d"; done
mv root var/roothome && ln -s var/roothome root
mv usr/local var/usrlocal && ln -s ../var/usrlocal usr/local
mkdir -p usr/share/factory
mv var usr/share/factory/var && mkdir var
mv etc usr/etc
mkdir -p sysroot && ln -s sysroot/ostree ostree
`

// debosInitramfs builds the same initramfs the builder does, in the tree.
const debosInitramfs = `#!/bin/sh
set -eu
k=$(ls /usr/lib/modules)
dracut --force --no-hostonly --reproducible --compress "` + build.DracutCompress + `" --add ostree --kver "$k" "/usr/lib/modules/$k/initramfs.img"
`

type debosAction map[string]any

// debosRecipe is v (a variant with its parents) as a debos recipe and the
// files beside it, by name relative to the recipe's folder.
func debosRecipe(v *variants.Variant) (map[string]string, error) {
	var pkgs []string
	for _, l := range v.Layers() {
		pkgs = append(pkgs, l.Packages...)
	}
	actions := []debosAction{
		{"action": "debootstrap", "suite": v.Suite, "components": v.Components, "mirror": v.Mirror, "variant": "minbase"},
		// The suites the variant follows (updates, security), as the builder's sources.
		{"action": "overlay", "description": "apt sources", "source": "overlay"},
		{"action": "run", "chroot": true, "command": "rm -f /etc/apt/sources.list"},
		{"action": "apt", "recommends": v.Recommends, "packages": pkgs},
		{"action": "run", "chroot": true, "script": "initramfs.sh"},
		{"action": "run", "script": "layout.sh"},
		{"action": "run", "command": "ostree init --repo=$ARTIFACTDIR/repo --mode=bare"},
		{"action": "ostree-commit", "repository": "repo", "branch": v.Ref, "subject": v.Name + " (debos)"},
	}
	recipe, err := yaml.Marshal(map[string]any{"architecture": v.Architecture, "actions": actions})
	if err != nil {
		return nil, err
	}
	// debos runs the recipe through text/template: nothing here may look like an action of it.
	if strings.Contains(string(recipe), "{{") {
		return nil, fmt.Errorf("variant %s: the debos recipe would hold a template action", v.Name)
	}
	return map[string]string{
		"recipe.yaml":  string(recipe),
		"layout.sh":    debosLayout,
		"initramfs.sh": debosInitramfs,
		"overlay/etc/apt/sources.list.d/debian.sources": v.BuildSources(),
	}, nil
}

// EnsureDebos installs debos when it is missing (apt-get
// --no-install-recommends, logged; never in CI), before anything is timed.
func EnsureDebos(ctx context.Context, cfg build.Config) error {
	return build.EnsureHost(ctx, cfg, []build.Requirement{{Name: "debos", Package: "debos"}})
}

// Debos builds v with debos in dir (removed by the caller).
func Debos(ctx context.Context, cfg build.Config, v *variants.Variant, dir string) error {
	files, err := debosRecipe(v)
	if err != nil {
		return err
	}
	for name, text := range files {
		p := filepath.Join(dir, "recipe", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			return err
		}
	}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	_, err = cfg.Runner.Run(ctx, run.Cmd{Args: []string{"debos", "--disable-fakemachine", "--artifactdir", out,
		filepath.Join(dir, "recipe", "recipe.yaml")}, Dir: dir})
	if err != nil {
		return fmt.Errorf("debos on %s: %w", v.Name, err)
	}
	return nil
}
