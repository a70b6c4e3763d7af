package publish

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/debian-atomic/builder/build"
)

// Signer is the project's signing key, checked to sign unattended: what
// Publish signs with, for others that sign with the same key (the remote
// step cache). Close it when done.
type Signer struct {
	ID   string // fingerprint
	Home string // GnuPG home holding the secret key
	g    gpg
	own  bool
}

// Signer finds the settings' signing key and proves it signs without a
// passphrase prompt; the error says what to do.
func (s *Settings) Signer(ctx context.Context, cfg build.Config) (*Signer, error) {
	if s.Unsigned {
		return nil, fmt.Errorf("%s says signing: none, and this needs a signing key: remove that line and run `go run mage.go keygen`", s.File)
	}
	if _, err := exec.LookPath("gpg"); err != nil {
		return nil, errors.New("gpg is missing: install gnupg (apt-get install --no-install-recommends gnupg)")
	}
	id, err := s.Key(cfg)
	if err != nil {
		return nil, err
	}
	k := &Signer{g: gpg{runner: cfg.Runner, home: s.Home(cfg)}, own: s.ownHome()}
	k.Home = k.g.home
	if k.ID, err = k.g.secretKey(ctx, id); err != nil {
		return nil, fmt.Errorf("the signing key %s is not in %s (%v): run `go run mage.go keygen`, or set key-id and gnupg-home in %s", id, k.Home, err, SettingsFile)
	}
	if err := k.g.canSign(ctx, k.ID); err != nil {
		k.Close(ctx)
		return nil, fmt.Errorf("the key %s in %s cannot sign without a passphrase prompt (%v): signing runs unattended", k.ID, k.Home, err)
	}
	return k, nil
}

// ExportPublic writes the public key as KeyFileName into dir (unless it is
// there already) and returns its path.
func (k *Signer) ExportPublic(ctx context.Context, dir string) (string, error) {
	path, _, err := exportKey(ctx, k.g, k.ID, dir)
	return path, err
}

// Close stops the gpg-agent of the builder's own GnuPG home.
func (k *Signer) Close(ctx context.Context) {
	if k.own {
		k.g.stopAgent(context.WithoutCancel(ctx))
	}
}
