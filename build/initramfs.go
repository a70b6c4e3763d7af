package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/cpupin"
	"github.com/debian-atomic/builder/dracuttrace"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/treelayout"
)

// The initramfs is its own cached piece of work. dracut's output depends on
// more than its arguments: on which binaries, libraries, modules, udev rules
// and configuration files the tree has, and on which it lacks (a module's
// check() that finds no plymouth leaves plymouth out). So dracut runs under
// strace, and every path any of its processes looked up, opened, executed or
// listed becomes the manifest: the state each had (absent, a file's bytes and
// mode, a link's target, a folder's names), taken from the tree right after
// dracut. That covers the kernel modules it read, dracut's own modules and
// configuration, every file it copied and every file it looked for and did
// not find. A later tree reuses the image only when every path of the
// manifest has the same state in it; anything else runs dracut again. A
// trace is sound where a listing of the image (lsinitrd) is not: the image
// does not show what was missing.
//
// The slot an initramfs is filed under is its kernel, dracut's arguments and
// the epoch, per layer: a child (gnome) checks its own slot, then its
// parents' (minimal), so siblings do not evict each other's image.

// initramfsSchema: bump when what is traced or how states are taken changes.
const initramfsSchema = 2 // 2: a split chroot call no longer drops most of the trace

// StepInitramfs is the index kind of stored initramfs images.
const StepInitramfs = "initramfs"

// DracutCompress is how dracut compresses an initramfs. Without it dracut
// picks gzip -9 (or zstd -15 when it finds zstd), about half of its run for
// an archive of kernel modules that are compressed already: zstd -3 takes a
// fraction of a second and makes a smaller image than gzip -9, and the
// kernel unpacks it faster. Variants install zstd (minimal does); a tree
// without it gets dracut's default, and a warning.
const DracutCompress = "zstd -q -3 -T0"

func dracutArgs(kver string) []string {
	return []string{"dracut", "--force", "--no-hostonly", "--reproducible", "--compress", DracutCompress,
		"--add", "ostree", "--kver", kver, initramfsPath(kver)}
}

func initramfsPath(kver string) string { return dracuttrace.ImagePath(kver) }

// initramfs makes /usr/lib/modules/KVER/initramfs.img in root: the stored
// image when its manifest matches the tree, else dracut's, then stored.
func (b *variantBuild) initramfs(ctx context.Context, root, kver string) error {
	if !exists(filepath.Join(root, "usr/lib/dracut/modules.d/98ostree")) {
		return fmt.Errorf("postprocess: the tree has a kernel but no dracut ostree module: add the packages dracut and ostree-boot to %s", b.v.File)
	}
	log := b.cfg.Log.With().Str("variant", b.v.Name).Str("step", StepPostprocess).Logger()
	if !exists(filepath.Join(root, "usr/bin/zstd")) {
		log.Warn().Msgf("postprocess: the tree has no zstd, so dracut compresses the initramfs with gzip (about 10 s more each time): add the package zstd to %s", b.v.File)
	}
	if b.cfg.NoInitramfsCache {
		return inChroot(ctx, b.cfg.Runner, root, func(c *chroot) error {
			if _, err := c.run(ctx, b.epochEnv(), dracutArgs(kver)...); err != nil {
				return fmt.Errorf("postprocess: dracut for kernel %s failed: %w", kver, err)
			}
			return nil
		})
	}
	if ok, err := b.reuseInitramfs(ctx, root, kver, log); err != nil || ok {
		return err
	}
	start := time.Now()
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	trace := filepath.Join(b.work, "dracut.trace")
	defer os.Remove(trace)
	marked, err := instrumentDracut(root, b.work)
	for _, dst := range marked {
		defer os.Remove(dst)
	}
	if err != nil {
		return err
	}
	err = inChroot(ctx, b.cfg.Runner, root, func(c *chroot) error {
		for _, p := range dracuttrace.Instrumented {
			if dst, ok := marked[p]; ok {
				if err := c.bindFile(ctx, dst, p); err != nil {
					return err
				}
			}
		}
		cpus, release := b.cpus.Take(b.cfg.cpus(), 1)
		defer release()
		args := slices.Concat(cpupin.Prefix(cpus), dracuttrace.StraceArgs(trace), []string{"chroot", root}, dracutArgs(kver))
		// The environment chroot.run gives every command in the tree.
		env := append([]string{"LC_ALL=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}, b.epochEnv()...)
		_, err := c.runner.Run(ctx, run.Cmd{Args: args, Env: env, OnlyEnv: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("postprocess: dracut for kernel %s failed: %w", kver, err)
	}
	built := time.Since(start)
	m, err := dracuttrace.FromTrace(trace, root, kver)
	if err != nil {
		// dracut's image is good; only its reuse is lost.
		log.Warn().Err(err).Msg("postprocess: the initramfs is not cached: dracut's trace could not be read")
		return nil
	}
	if err := b.storeInitramfs(ctx, root, kver, m, built); err != nil {
		return err
	}
	log.Info().Dur("duration", built).Int("paths", len(m.Paths)).Dur("manifest", time.Since(start)-built).
		Msg("postprocess: initramfs built and stored")
	return nil
}

// instrumentDracut writes marked copies of dracut's scripts (see
// dracuttrace.Instrument) into work, for the traced run to mount over the
// tree's (which stay as they are: they may be store objects), as tree path
// -> copy. A script that is not a plain file of the tree, or has nothing to
// mark, is left alone: its listings are then kept whole.
func instrumentDracut(root, work string) (map[string]string, error) {
	out := map[string]string{}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	for _, p := range dracuttrace.Instrumented {
		marked, ok, err := markedScript(root, realRoot, p)
		if err != nil {
			return out, err
		}
		if !ok {
			if p == dracuttrace.InitScript {
				return out, nil // the others call the markers it defines
			}
			continue
		}
		dst := filepath.Join(work, "marked-"+strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
		if err := os.WriteFile(dst, marked, 0o755); err != nil {
			return out, err
		}
		out[p] = dst
	}
	return out, nil
}

// markedScript is the marked copy of the tree's script p, when p is a
// plain file reached without a link (a mount follows links) and marks apply.
func markedScript(root, realRoot, p string) ([]byte, bool, error) {
	orig := filepath.Join(root, p)
	if fi, err := os.Lstat(orig); err != nil || !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	if real, err := filepath.EvalSymlinks(orig); err != nil || real != filepath.Join(realRoot, p) {
		return nil, false, nil
	}
	data, err := os.ReadFile(orig)
	if err != nil {
		return nil, false, err
	}
	marked, ok := dracuttrace.Instrument(p, data)
	return marked, ok, nil
}

// initramfsSlot is where the image for kver made in layer's postprocess is filed.
func (b *variantBuild) initramfsSlot(kver, layer string) *cache.Preimage {
	return cache.NewPreimage(StepInitramfs, initramfsSchema).
		Add("kernel", kver).
		AddList("dracut", dracutArgs(kver)).
		Add("source-date-epoch", epoch(b.lock)).
		Add("layer", layer)
}

// reuseInitramfs writes a stored image whose manifest matches root.
func (b *variantBuild) reuseInitramfs(ctx context.Context, root, kver string, log logger) (bool, error) {
	layers := b.v.Layers()
	for i := len(layers) - 1; i >= 0; i-- {
		key := b.initramfsSlot(kver, layers[i].Name).Sum()
		e, ok, _ := b.idx.Lookup(key, b.validStored)
		if !ok {
			continue
		}
		data, err := b.store.Cat(ctx, e.Result, "/manifest.json")
		if err != nil {
			continue
		}
		var m dracuttrace.Manifest
		if err := json.Unmarshal(data, &m); err != nil || m.Kernel != kver {
			continue
		}
		if why := m.Differs(root); why != "" {
			log.Info().Str("from", layers[i].Name).Str("reason", why).Msg("postprocess: the stored initramfs does not fit this tree; running dracut")
			continue
		}
		img, err := b.store.Cat(ctx, e.Result, "/initramfs.img")
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, initramfsPath(kver)), img, m.Mode.Perm()); err != nil {
			return false, err
		}
		log.Info().Str("from", layers[i].Name).Str("commit", short(e.Result)).Int("paths", len(m.Paths)).
			Msg("postprocess: initramfs reused, its manifest matches the tree")
		return true, nil
	}
	return false, nil
}

// storeInitramfs commits the image and its manifest and files them under
// this layer's slot.
func (b *variantBuild) storeInitramfs(ctx context.Context, root, kver string, m *dracuttrace.Manifest, d time.Duration) error {
	dir, err := os.MkdirTemp(b.work, "initramfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(root, initramfsPath(kver))
	fi, err := os.Stat(img)
	if err != nil {
		return fmt.Errorf("postprocess: dracut made no image: %w", err)
	}
	m.Mode = fi.Mode().Perm()
	if err := treelayout.CopyFile(img, filepath.Join(dir, "initramfs.img")); err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
		return err
	}
	pre := b.initramfsSlot(kver, b.v.Name)
	key := pre.Sum()
	commit, err := b.store.Commit(ctx, ostreeops.CommitOptions{
		Branch: "cache/" + StepInitramfs + "/" + string(key), Tree: dir, Parent: "none",
		Timestamp: "1970-01-01T00:00:00Z", NoBindings: true, NoFsync: true,
	})
	if err != nil {
		return fmt.Errorf("postprocess: storing the initramfs: %w", err)
	}
	return b.idx.Put(key, cache.Entry{Kind: StepInitramfs, Variant: b.v.Name, Result: commit,
		Size: b.store.CommitSize(commit), TreeSize: fi.Size(), Created: time.Now(), Duration: d},
		b.v.Name, StepInitramfs, pre.Fields())
}
