package publish

// STUB: signatures of the package's API, committed first so other packages
// can code against them; the bodies are being written.

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
)

// Env moves the publish repository (default CACHE/publish).
const Env = "DEBIAN_ATOMIC_PUBLISH"

// KeyFileName is the public key exported beside the repository's files
// (<publish repo>/debian-atomic.gpg, a binary keyring for
// `ostree remote add --gpg-import`).
const KeyFileName = "debian-atomic.gpg"

// Settings are variants/publish.yaml, validated, with defaults applied.
type Settings struct {
	File      string // the settings file ("" when it does not exist)
	KeyID     string // GPG key id or fingerprint; "" until keygen made one
	GnuPGHome string // absolute; default CACHE/gnupg ("" here means that default)
	Unsigned  bool   // `signing: none` in the file, in those words
	Keep      int    // commits kept per ref, newest included (default 10)
	Repo      string // publish repository; "" means DEBIAN_ATOMIC_PUBLISH or CACHE/publish
}

// LoadSettings reads variantsDir/publish.yaml; a missing file gives the
// defaults (signing with the key `mage keygen` makes).
func LoadSettings(variantsDir string) (*Settings, error) { return nil, errors.New("stub") }

// RepoDir is where s publishes for cfg: DEBIAN_ATOMIC_PUBLISH, the settings'
// repo, or CACHE/publish.
func (s *Settings) RepoDir(cfg build.Config) string { return "" }

// Home is the GnuPG home used for cfg.
func (s *Settings) Home(cfg build.Config) string { return "" }

// KeyInfo describes the signing key.
type KeyInfo struct {
	ID        string // fingerprint
	PublicKey string // exported public key (binary), <publish repo>/debian-atomic.gpg
	Home      string // GnuPG home holding the secret key
	Created   bool   // false when the key existed already
}

// Keygen makes a signing key without passphrase in the settings' GnuPG home
// (unless one is configured and present), records its id where LoadSettings
// finds it, and exports the public key beside the published repository.
func Keygen(ctx context.Context, cfg build.Config, s *Settings) (KeyInfo, error) {
	return KeyInfo{}, errors.New("stub")
}

// RefReport is what publishing did to one ref.
type RefReport struct {
	Variant    string
	Ref        string
	Old        string // previously published commit, "" for none
	New        string // published commit now
	NewCommit  bool   // false: nothing new for this ref
	Delta      string // "FROM-TO" of the delta made, "" for none
	DeltaSize  int64  // bytes of the static delta
	CommitSize int64  // bytes of every object of the commit (a full pull)
	Pruned     []string
	Duration   time.Duration
}

// Report is one publish run.
type Report struct {
	Repo      string
	Refs      []RefReport
	Signed    bool
	Summary   bool // the summary was regenerated
	KeyFile   string
	Duration  time.Duration
	PrunedDel []string // deltas deleted
}

// Publish brings the built refs of names (every variant with a built ref
// when empty) into the publish repository, holding the build lock.
func Publish(ctx context.Context, cfg build.Config, s *Settings, names []string) (Report, error) {
	return Report{}, errors.New("stub")
}

// Request is one request the server answered.
type Request struct {
	Method string
	Path   string
	Status int
	Bytes  int64
}

// Server serves a publish repository as static files and records requests.
type Server struct{}

// NewServer serves dir; log gets one line per request.
func NewServer(dir string, log zerolog.Logger) *Server { return &Server{} }

// Handler is the file server with request logging.
func (s *Server) Handler() http.Handler { return nil }

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request { return nil }

// Reset forgets the recorded requests.
func (s *Server) Reset() {}

// Start listens on addr (e.g. "127.0.0.1:0") and returns the base URL.
func (s *Server) Start(addr string) (string, error) { return "", errors.New("stub") }

// Close stops the listener started by Start.
func (s *Server) Close() error { return nil }

// Serve serves dir on addr until ctx ends.
func Serve(ctx context.Context, dir, addr string, log zerolog.Logger) error {
	return errors.New("stub")
}
