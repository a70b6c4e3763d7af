package build

import (
	"context"
	"fmt"
	"time"

	"github.com/debian-atomic/builder/treelayout"
)

// Postprocess makes an installed tree deployable and bootable by OSTree; see
// ../shared/notes/ostree-layout.md. Bump postprocessSchema whenever what it
// does changes, so cached results are not reused.
const postprocessSchema = 7 // 3: machine secrets stripped, the guard, SOURCE_DATE_EPOCH; 4: initramfs reused by manifest, folder moves as renames; 5: tmpfiles lines retargeted into /var, a default locale; 6: xattrs kept; 7: the initramfs compressed with zstd -3

// postprocess runs the layout changes and builds the initramfs.
func (b *variantBuild) postprocess(ctx context.Context, root string) error {
	kver, err := treelayout.Kernel(root)
	if err != nil {
		return err
	}
	start := time.Now()
	if kver != "" {
		if err := b.initramfs(ctx, root, kver); err != nil {
			return err
		}
		if err := treelayout.MoveKernel(root, kver); err != nil {
			return err
		}
	}
	initramfsDone := time.Now()
	defer func() {
		b.cfg.Log.Info().Str("variant", b.v.Name).Str("step", StepPostprocess).
			Dur("initramfs", initramfsDone.Sub(start)).Dur("layout", time.Since(initramfsDone)).
			Msg("postprocess: where the time went")
	}()
	if err := treelayout.CleanLeftovers(root); err != nil {
		return fmt.Errorf("postprocess: %w", err)
	}
	removed, err := stripMachineSecrets(root)
	if err != nil {
		return fmt.Errorf("postprocess: removing machine-unique files: %w", err)
	}
	if len(removed) > 0 {
		b.cfg.Log.Info().Str("variant", b.v.Name).Strs("removed", removed).
			Msg("postprocess: removed machine-unique keys and secrets; each machine makes its own at boot")
	}
	if err := treelayout.Apply(root); err != nil {
		return fmt.Errorf("postprocess: %w", err)
	}
	// The guard: the stored tree is what every commit of it ships.
	return b.guardSecrets(root)
}
