package build

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/debian-atomic/builder/lockresolve"
	"github.com/debian-atomic/builder/treelayout"
	"github.com/debian-atomic/builder/variants"
)

// aptEnv is the environment of apt inside the tree. INITRD=No makes the
// kernel's dracut hook skip its initramfs: postprocess builds the one that
// boots, with the ostree module, once.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true", "INITRD=No"}

// aptInstallArgs is the apt-get command line for a layer: exact versions
// from the lock ("name version arch" entries).
func aptInstallArgs(recommends bool, locked []string) []string {
	args := []string{"apt-get", "install", "-y", "-q",
		"-o", "APT::Install-Recommends=" + boolString(recommends),
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
		// A work tree needs no durability (its result is what gets stored):
		// dpkg's fsync of every unpacked file only costs time, so skip it as
		// mmdebstrap does.
		"-o", "Dpkg::Options::=--force-unsafe-io",
		"-o", "Dpkg::Use-Pty=0", "--allow-downgrades",
		"--"}
	for _, e := range locked {
		f := strings.Fields(e)
		if len(f) != 3 {
			continue
		}
		name := f[0]
		if f[2] != "all" {
			name += ":" + f[2]
		}
		args = append(args, name+"="+f[1])
	}
	return args
}

// install adds a layer's locked packages with apt inside root; with only
// set, just those (an incremental install on the layer's previous result).
func (b *variantBuild) install(ctx context.Context, root string, layer *variants.Variant, only []string) error {
	locked := b.lock.Variants[layer.Name].Packages
	if only != nil {
		locked = only
		if len(only) == 0 {
			return writeFiles(root, layer) // only files changed: no apt, no network
		}
	}
	// apt's package folder for this install: hard links to the shared cache.
	private := filepath.Join(b.work, "debs")
	if err := errors.Join(inChroot(ctx, b.cfg.Runner, root, func(c *chroot) error {
		return b.installIn(ctx, c, layer, locked, private)
	}), os.RemoveAll(private)); err != nil {
		return err
	}
	return writeFiles(root, layer)
}

// writeFiles writes a layer's files into its tree, after its packages so
// that they win over a package's copy. os.Root keeps every path, and any
// symbolic link on the way, inside the tree.
func writeFiles(root string, layer *variants.Variant) error {
	if len(layer.Files) == 0 {
		return nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, p := range slices.Sorted(maps.Keys(layer.Files)) {
		rel := strings.TrimPrefix(p, "/")
		err := r.MkdirAll(filepath.Dir(rel), 0o755)
		if err == nil {
			err = r.WriteFile(rel, []byte(layer.Files[p]), 0o644)
		}
		if err == nil {
			err = r.Chmod(rel, 0o644) // a package's file keeps its mode otherwise
		}
		if err != nil {
			return fmt.Errorf("writing %s (field \"files\" of %s): %w", p, layer.File, err)
		}
	}
	return nil
}

// installIn runs apt in a prepared tree.
func (b *variantBuild) installIn(ctx context.Context, c *chroot, layer *variants.Variant, locked []string, private string) error {
	if err := c.blockServices(); err != nil {
		return err
	}
	if err := c.withHostResolver(); err != nil {
		return err
	}
	moved, err := c.withBuildSources(ctx, b.v)
	if err != nil {
		return err
	}
	sources := sourcesUpTo(layer)
	if err := c.withSources(ctx, sources); err != nil {
		return err
	}
	if !b.freshLists || len(sources) > 0 || moved {
		if _, err := c.run(ctx, append(b.epochEnv(), aptEnv...), "apt-get", "update", "-q", "--error-on=any"); err != nil {
			return fmt.Errorf("apt-get update from %s failed: %w", b.v.Mirror, err)
		}
	}
	if len(locked) > 0 {
		if err := b.aptInstall(ctx, c, private, aptInstallArgs(layer.Recommends, locked), locked); err != nil {
			return aptFailed("installing the packages of "+layer.File, err)
		}
	}
	return dropAptCaches(c.root)
}

// aptCaches are apt's binary caches of the package lists and the dpkg
// status. apt remakes them whenever they are missing or stale, postprocess
// removes /var/cache/apt anyway, and they differ in every layer (they hold
// its status) and in every run: kept, they were most of the bytes a remote
// cache sent for a child layer (44.6 of 44.6 MB... see remotecache's figures).
var aptCaches = []string{"var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin"}

// dropAptCaches removes apt's binary caches from an installed tree, so a
// layer's stored result holds only what its packages changed.
func dropAptCaches(root string) error {
	for _, p := range aptCaches {
		if err := os.Remove(filepath.Join(root, p)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing apt's cache %s: %w", p, err)
		}
	}
	return nil
}

// withBuildSources points the tree's apt at the mirrors this build reads
// for the step: the committed debian.sources names the system's mirrors,
// and the build may read others (DEBIAN_ATOMIC_MIRROR, the host's mirror, a
// file: mirror bind-mounted into the tree). The system's file is put back
// on every exit path; when the mirrors are the same nothing changes. moved
// says a file: mirror is read at another path than the bootstrap's, so the
// package lists it left do not apply.
func (c *chroot) withBuildSources(ctx context.Context, v *variants.Variant) (moved bool, err error) {
	urls := []string{v.Mirror, v.SecurityMirror}
	for i, u := range urls {
		if !strings.HasPrefix(u, "file://") || i == 1 && !v.Follows(variants.PocketSecurity) {
			continue
		}
		inside := fmt.Sprintf("run/debian-atomic/mirror-%d", i)
		if err := c.bind(ctx, strings.TrimPrefix(u, "file://"), inside); err != nil {
			return false, fmt.Errorf("making %s visible in the tree: %w", u, err)
		}
		urls[i], moved = "file:/"+inside, true
	}
	text := v.DebianSources(urls[0], urls[1], variants.DebianKeyring)
	path := filepath.Join(c.root, variants.SourcesFile)
	old, err := os.ReadFile(path)
	if err == nil && string(old) == text {
		return moved, nil
	}
	had := err == nil
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return moved, err
	}
	os.Remove(path) // never write through a link in the tree
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return moved, err
	}
	c.undo = append(c.undo, func() error {
		if had {
			os.Remove(path)
			return os.WriteFile(path, old, 0o644)
		}
		return os.Remove(path)
	})
	return moved, nil
}

var versionNotFound = regexp.MustCompile(`Version '([^']+)' for '([^']+)' was not found`)

// aptFailed is apt's failure of what, with what the user should do. A
// locked version the archive no longer has is a *LockDriftError in the
// chain, for callers that re-lock (the end-to-end tests, when Debian
// replaced a package since the lock was committed).
func aptFailed(what string, err error) error {
	if m := versionNotFound.FindAllStringSubmatch(err.Error(), -1); len(m) > 0 {
		var missing []string
		for _, x := range m {
			missing = append(missing, x[2]+" "+x[1])
		}
		return fmt.Errorf("%s failed: %w: %w", what, &LockDriftError{Missing: missing}, err)
	}
	return fmt.Errorf("%s failed%s: %w", what, lockresolve.UnknownPackages(err.Error()), err)
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
const dpkgDatabase = treelayout.DpkgDatabase

func dpkgStatus(root string) string { return filepath.Join(root, dpkgDatabase, "status") }
