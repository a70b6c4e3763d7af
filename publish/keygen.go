package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/variants"
)

// KeyInfo describes the signing key.
type KeyInfo struct {
	ID        string // fingerprint
	PublicKey string // exported public key (binary), <publish repo>/debian-atomic.gpg
	Home      string // GnuPG home holding the secret key
	Created   bool   // false when the key existed already
}

// keyUID names keys keygen makes.
const keyUID = "Debian Atomic publishing key <debian-atomic@localhost>"

// Keygen makes a signing key without a passphrase in the settings' GnuPG
// home, records its fingerprint there (KeyIDFileName) so that LoadSettings
// finds it with no editing, and exports the public key into the publish
// repository's folder. A key that exists already (the settings' key-id, or
// the one recorded) is kept and only exported again.
func Keygen(ctx context.Context, cfg build.Config, s *Settings) (KeyInfo, error) {
	if s.Unsigned {
		return KeyInfo{}, fmt.Errorf("%s says signing: none; remove that line to sign with the key keygen makes", s.File)
	}
	if err := build.EnsureHost(ctx, cfg, []build.Requirement{{Name: "gpg", Package: "gnupg"}}); err != nil {
		if _, lerr := exec.LookPath("gpg"); lerr != nil {
			return KeyInfo{}, err
		}
	}
	g := gpg{runner: cfg.Runner, home: s.Home(cfg)}
	info := KeyInfo{Home: g.home}
	if s.KeyID != "" {
		fpr, err := g.secretKey(ctx, s.KeyID)
		if err != nil {
			return info, fmt.Errorf("%s names key-id %s, which is not a secret key in %s (%v): import it there, or remove key-id so keygen makes one", s.File, s.KeyID, g.home, err)
		}
		info.ID = fpr
	} else if id, err := s.Key(cfg); err == nil {
		if fpr, err := g.secretKey(ctx, id); err == nil {
			info.ID = fpr
		}
	}
	if info.ID == "" {
		if err := os.MkdirAll(g.home, 0o700); err != nil {
			return info, err
		}
		os.Chmod(g.home, 0o700) // gpg warns about unsafe permissions otherwise
		before, _ := g.fingerprints(ctx)
		cfg.Log.Info().Str("home", g.home).Msg("making a GPG signing key (RSA 3072, no passphrase, no expiry)")
		if _, err := g.run(ctx, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", keyUID, "rsa3072", "sign", "never"); err != nil {
			return info, fmt.Errorf("making the signing key in %s: %w", g.home, err)
		}
		after, err := g.fingerprints(ctx)
		if err != nil {
			return info, err
		}
		for _, f := range after {
			if !contains(before, f) {
				info.ID = f
			}
		}
		if info.ID == "" {
			return info, fmt.Errorf("gpg made a key in %s but it is not listed", g.home)
		}
		if err := variants.WriteFileAtomic(filepath.Join(g.home, KeyIDFileName), []byte(info.ID+"\n"), 0o644); err != nil {
			return info, err
		}
		info.Created = true
	}
	path, _, err := exportKey(ctx, g, info.ID, s.RepoDir(cfg))
	info.PublicKey = path
	if s.ownHome() {
		g.stopAgent(ctx)
	}
	return info, err
}

// exportKey writes the public key into the publish folder unless it is
// there already; changed says whether the file was written.
func exportKey(ctx context.Context, g gpg, id, dir string) (path string, changed bool, err error) {
	path = filepath.Join(dir, KeyFileName)
	pub, err := g.run(ctx, "--export", id)
	if err != nil || len(pub) == 0 {
		return path, false, fmt.Errorf("exporting the public key %s from %s: %v", id, g.home, err)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, pub) {
		return path, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return path, false, err
	}
	return path, true, variants.WriteFileAtomic(path, pub, 0o644)
}

// gpg runs gpg on one GnuPG home, never the user's default one by accident.
type gpg struct {
	runner run.Runner
	home   string
}

func (g gpg) run(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"gpg", "--batch", "--no-tty", "--homedir", g.home}, args...)
	return g.runner.Run(ctx, run.Cmd{Args: full, Quiet: true})
}

// fingerprints lists the fingerprints of the home's secret primary keys.
func (g gpg) fingerprints(ctx context.Context, ids ...string) ([]string, error) {
	out, err := g.run(ctx, append([]string{"--with-colons", "--list-secret-keys"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var fprs []string
	primary := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		switch {
		case f[0] == "sec":
			primary = true
		case f[0] == "ssb":
			primary = false
		case f[0] == "fpr" && primary && len(f) > 9:
			fprs = append(fprs, f[9])
			primary = false
		}
	}
	return fprs, nil
}

// secretKey returns the fingerprint of the secret key id names.
func (g gpg) secretKey(ctx context.Context, id string) (string, error) {
	if _, err := os.Stat(g.home); err != nil {
		return "", fmt.Errorf("the GnuPG home %s does not exist", g.home)
	}
	fprs, err := g.fingerprints(ctx, id)
	if err != nil || len(fprs) == 0 {
		return "", errors.New("gpg lists no such secret key")
	}
	if len(fprs) > 1 {
		return "", fmt.Errorf("%s names %d keys; give the fingerprint", id, len(fprs))
	}
	return fprs[0], nil
}

// canSign proves the key signs without asking for a passphrase, before
// anything is written.
func (g gpg) canSign(ctx context.Context, id string) error {
	c := run.Cmd{Args: []string{"gpg", "--batch", "--no-tty", "--homedir", g.home, "--pinentry-mode", "error", "--local-user", id, "--detach-sign", "--output", "/dev/null"},
		Stdin: strings.NewReader("debian-atomic signing check " + time.Now().String()), Quiet: true}
	_, err := g.runner.Run(ctx, c)
	return err
}

// stopAgent ends the gpg-agent that gpg and ostree started for the
// builder's own home, so none outlives the command.
func (g gpg) stopAgent(ctx context.Context) {
	g.runner.Run(ctx, run.Cmd{Args: []string{"gpgconf", "--homedir", g.home, "--kill", "gpg-agent"}, Quiet: true})
}

// maxHomeLen is the longest GnuPG home whose agent sockets fit: a Unix
// socket path holds 108 bytes, and gpg-agent adds "/S.gpg-agent.browser".
const maxHomeLen = 107 - len("/S.gpg-agent.browser")

// shortHome returns home, or for a home too long for gpg-agent's sockets a
// short link to it in the temporary folder (the same name every time, from
// the path's hash), so gpg and ostree's gpgme put the sockets there. The
// link is reused, or replaced if it points elsewhere.
func shortHome(home string) (string, error) {
	if len(home) <= maxHomeLen {
		return home, nil
	}
	sum := sha256.Sum256([]byte(home))
	link := filepath.Join(os.TempDir(), "debian-atomic-gnupg-"+hex.EncodeToString(sum[:6]))
	if len(link) > maxHomeLen {
		link = filepath.Join("/tmp", filepath.Base(link))
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return home, err
	}
	if to, err := os.Readlink(link); err == nil && to == home {
		return link, nil
	}
	os.Remove(link)
	if err := os.Symlink(home, link); err != nil {
		return home, fmt.Errorf("the GnuPG home %s is too long for gpg-agent's socket (%d bytes, at most %d) and a short link to it failed: %w", home, len(home), maxHomeLen, err)
	}
	return link, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
