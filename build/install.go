package build

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/debian-atomic/builder/variants"
)

// aptEnv is the environment of apt inside the tree. INITRD=No makes the
// kernel's dracut hook skip its initramfs: postprocess builds the one that
// boots, with the ostree module, once.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true", "INITRD=No"}

// aptInstallArgs is the apt-get command line for the variant's packages.
func aptInstallArgs(v *variants.Variant) []string {
	rec := "false"
	if v.Recommends {
		rec = "true"
	}
	args := []string{"apt-get", "install", "-y", "-q",
		"-o", "APT::Install-Recommends=" + rec,
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
		"-o", "Dpkg::Use-Pty=0",
		"--"}
	return append(args, v.Packages...)
}

// install installs the variant's packages with apt inside root.
func (b *variantBuild) install(ctx context.Context, root string) (err error) {
	c, err := enterChroot(ctx, b.cfg.Runner, root)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := c.blockServices(); err != nil {
		return err
	}
	if err := c.withHostResolver(); err != nil {
		return err
	}
	if err := os.MkdirAll(b.cfg.DebsDir, 0o755); err != nil {
		return err
	}
	// The shared package cache: each .deb is downloaded once for every build.
	if err := c.bind(ctx, b.cfg.DebsDir, "var/cache/apt/archives"); err != nil {
		return err
	}
	if _, err := c.run(ctx, aptEnv, "apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("apt-get update from %s failed: %w", b.v.Mirror, err)
	}
	if _, err := c.run(ctx, aptEnv, aptInstallArgs(b.v)...); err != nil {
		return fmt.Errorf("installing the packages of %s failed%s: %w", b.v.File, unknownPackages(err.Error()), err)
	}
	return nil
}

var unableToLocate = regexp.MustCompile(`E: (?:Unable to locate package|Package '?)([a-z0-9+.-]+)`)

// unknownPackages names the packages apt could not find, for the message.
func unknownPackages(out string) string {
	var names []string
	for _, m := range unableToLocate.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (the archive has no package %s: fix the packages list)", strings.Join(names, ", "))
}

// installedPackages reads a dpkg status file: name, version, architecture of
// every installed package, sorted by name.
func installedPackages(status []byte) [][3]string {
	var out [][3]string
	for _, stanza := range strings.Split(string(status), "\n\n") {
		var name, ver, arch, st string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Package":
				name = v
			case "Version":
				ver = v
			case "Architecture":
				arch = v
			case "Status":
				st = v
			}
		}
		if name != "" && strings.HasSuffix(st, " installed") {
			out = append(out, [3]string{name, ver, arch})
		}
	}
	sortPackages(out)
	return out
}

func sortPackages(p [][3]string) {
	slices.SortFunc(p, func(a, b [3]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[2], b[2]))
	})
}

// dpkgStatusPath is where postprocess leaves the dpkg database.
const dpkgDatabase = "usr/share/dpkg/database"

func dpkgStatus(root string) string { return filepath.Join(root, dpkgDatabase, "status") }
