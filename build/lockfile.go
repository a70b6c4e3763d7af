package build

import (
	"context"

	"github.com/debian-atomic/builder/lockresolve"
	"github.com/debian-atomic/builder/variants"
)

// LockChange is how one variant's locked package set changed.
type LockChange = lockresolve.Change

// LockDriftError says the archive no longer has versions the lock names.
type LockDriftError = lockresolve.DriftError

// ensureLocked resolves the layers of vs the lock does not hold for their
// current inputs (every layer when force is set) and writes the lock.
func (s *Session) ensureLocked(ctx context.Context, vs []*variants.Variant, force bool) ([]LockChange, error) {
	return lockresolve.Ensure(ctx, lockresolve.Config{CacheDir: s.cfg.CacheDir, VariantsDir: s.cfg.VariantsDir, Runner: s.cfg.Runner, Log: s.cfg.Log},
		s.lock, vs, force)
}
