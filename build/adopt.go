package build

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/overlay"
)

// A store commit copies every file it has not seen into the repository:
// for gnome's install, 2.3 GB written again while the next step waited
// for the result, and then the tree was swapped for a linked checkout of
// the result (so that the next store would read only what changed) and
// the old tree removed (12-13 s for gnome's beside plasma's). Adopting
// instead: ostree commits a tree of hard links to the tree's files with
// --consume, which renames each new file into its object rather than
// copying it, so the tree's own files become the objects: nothing is
// copied, and the tree is linked with no checkout and nothing to remove.
// Only where steps run on overlays, where nothing writes into a stored
// tree's files. Minimal's install by hand: 4.2 s against 13.4 s copied.

// notLinked is loose for a tree that is no linked checkout: a bootstrap, a
// copy. Steps run on an overlay only over a linked one.
const notLinked = -1

// linked reports whether the tree is a linked checkout (its files, but for
// what steps added since, hardlinks to stored objects).
func (b *variantBuild) linked() bool { return b.loose != notLinked }

// adoptMin is the loose bytes above which a stored tree is adopted: making
// a tree of links to gnome's 94,000 files and removing what ostree left
// take about a second, what ostree takes to hash a few hundred MB.
const adoptMin = 256 << 20

// canAdopt reports whether the tree, about to be stored while the next
// step runs on an overlay over it, is to be adopted: much of it is not the
// store's objects, and the work folder and the repository share a
// filesystem (neither a rename nor a hard link crosses one).
func (b *variantBuild) canAdopt(ctx context.Context) bool {
	if b.linked() && b.loose < adoptMin || !b.useOverlays(ctx) {
		return false
	}
	var work, repo syscall.Stat_t
	return syscall.Stat(b.work, &work) == nil && syscall.Stat(b.store.Path, &repo) == nil && work.Dev == repo.Dev
}

// linkFarm makes a tree of hard links to the tree's files, its folders
// copied with their owners, modes and xattrs (cp -a --link), for a
// consuming commit. It returns the farm's path, also on failure.
func (b *variantBuild) linkFarm(ctx context.Context) (string, error) {
	farm := filepath.Join(b.work, "farm")
	if err := removeTree(farm); err != nil {
		return farm, err
	}
	_, err := b.cfg.Runner.Run(ctx, run.Cmd{Args: []string{"cp", "-a", "--link", "--no-target-directory", b.tree, farm}, Quiet: true})
	return farm, err
}

// applyOverlay applies a step's overlay onto the tree; an adopted tree
// first gets a checkout's times.
func (b *variantBuild) applyOverlay(ovl *overlay.Overlay) error {
	added := treeSize(ovl.Upper)
	err := ovl.ApplyAfter(func() error {
		if !b.adopted {
			return nil
		}
		b.adopted = false
		return likeCheckout(b.tree)
	})
	if b.linked() {
		b.loose += added
	}
	b.holds = ""
	return err
}

// likeCheckout gives an adopted tree the times a linked checkout of its
// result has: regular files the store's mtime 0 (they are its objects now),
// folders and links the present. ostree keeps no times, so a step's tree
// would otherwise differ with the way it was made, and dracut copies times
// it finds older than SOURCE_DATE_EPOCH into the initramfs (an adopted
// /etc/ld.so.conf went in with dpkg's 2025-04-11 where a relinked one had 0).
func likeCheckout(root string) error {
	now := unix.NsecToTimespec(time.Now().UnixNano())
	zero := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {}}
	present := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, now}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := present
		if d.Type().IsRegular() {
			ts = zero
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}
