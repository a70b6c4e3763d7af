package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// notLinked is loose for a tree that is no linked checkout: a bootstrap, a
// copy. Steps run on an overlay only over a linked one.
const notLinked = -1

// linked reports whether the tree is a linked checkout (its files, but for
// what steps added since, hardlinks to stored objects).
func (b *variantBuild) linked() bool { return b.loose != notLinked }

// relinkMin is the loose bytes above which a stored tree is relinked
// before the next store: a linked checkout of gnome's 94,000 files and
// removing the old tree take a few seconds, what ostree takes to hash a
// few hundred MB again.
const relinkMin = 256 << 20

// wantsRelink reports whether the tree, once stored, is to be relinked
// before the next step's changes are applied to it.
func (b *variantBuild) wantsRelink() bool { return !b.linked() || b.loose >= relinkMin }

// applyOverlay applies a step's overlay onto the tree. When the tree holds
// a stored result much of which is not its objects, it is relinked first.
func (b *variantBuild) applyOverlay(ctx context.Context, ovl *overlay, log logger) error {
	added := treeSize(ovl.upper)
	relink := b.holds != "" && b.wantsRelink()
	err := ovl.applyAfter(func() error {
		if relink {
			return b.relink(ctx, log)
		}
		return nil
	})
	if b.linked() {
		b.loose += added
	}
	b.holds = ""
	return err
}

// relink replaces the tree, just stored as b.holds, by a linked checkout
// of that commit: the same tree, but its files are the stored objects, so
// the next store reads only what the next step changed instead of hashing
// every file again (a cold build's install result, a new layer's files).
// The checkout is the one made ahead while the step ran, when there is
// one; then only two renames and a removal are left on the critical path.
func (b *variantBuild) relink(ctx context.Context, log logger) error {
	start := time.Now()
	linked, err := b.takeAhead(b.holds)
	if linked == "" {
		if err != nil {
			log.Info().Err(err).Msg("the checkout made ahead is not usable; checking out again")
		}
		linked = filepath.Join(b.work, "relinked")
		if err := b.store.CheckoutLinked(ctx, b.holds, linked); err != nil {
			if ctx.Err() != nil {
				return errors.Join(ctx.Err(), removeTree(linked))
			}
			log.Info().Err(err).Msg("a linked checkout failed; the next store reads the whole tree")
			return removeTree(linked)
		}
	}
	if err := b.discard(b.tree); err != nil {
		return errors.Join(err, removeTree(linked))
	}
	if err := os.Rename(linked, b.tree); err != nil {
		return err
	}
	b.loose = 0
	log.Debug().Dur("duration", time.Since(start)).Msg("the stored tree relinked to its objects")
	return nil
}

// discard removes a tree in the background: unlinking the few hundred MB
// a step just wrote takes a second or more (1.4 s for minimal's install),
// which the next step need not wait for. waitDiscarded joins the removals.
func (b *variantBuild) discard(dir string) error {
	trash := filepath.Join(b.work, fmt.Sprintf("discarded-%d", len(b.discarded)))
	if err := os.Rename(dir, trash); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- removeTree(trash) }()
	b.discarded = append(b.discarded, done)
	return nil
}

// waitDiscarded waits for the trees being removed; every exit of a build,
// and the output commit (whose sync must not write them out), pass here.
func (b *variantBuild) waitDiscarded() error {
	var errs []error
	for _, done := range b.discarded {
		errs = append(errs, <-done)
	}
	b.discarded = b.discarded[:0]
	return errors.Join(errs...)
}

// ahead is a linked checkout of a just-stored result, made in the
// background while the next step still runs on its overlay: on two cores
// it overlaps apt or dracut instead of following them.
type ahead struct {
	commit, dir string
	done        chan struct{}
	err         error // set before done closes
}

// checkoutAhead starts the linked checkout of commit that relink will
// want, replacing one made before (for another commit, so unused). It
// runs under ctx: an interrupt stops it with the build.
func (b *variantBuild) checkoutAhead(ctx context.Context, commit string) {
	b.dropAhead()
	a := &ahead{commit: commit, dir: filepath.Join(b.work, "ahead-"+short(commit)), done: make(chan struct{})}
	b.ahead = a
	go func() {
		defer close(a.done)
		a.err = b.store.CheckoutLinked(ctx, commit, a.dir)
	}()
}

// takeAhead waits for the checkout made ahead of commit and hands its
// folder over ("" when there is none for commit, or it failed).
func (b *variantBuild) takeAhead(commit string) (string, error) {
	a := b.ahead
	if a == nil || a.commit != commit {
		return "", b.dropAhead()
	}
	<-a.done
	b.ahead = nil
	if a.err != nil {
		return "", errors.Join(a.err, removeTree(a.dir))
	}
	return a.dir, nil
}

// dropAhead waits for a checkout made ahead and removes it; every exit of
// a build passes here, so no checkout outlives it.
func (b *variantBuild) dropAhead() error {
	a := b.ahead
	if a == nil {
		return nil
	}
	<-a.done
	b.ahead = nil
	return removeTree(a.dir)
}
