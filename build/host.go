package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// Requirement is something on the host a build runs or reads.
type Requirement struct {
	Name    string // command, or an absolute file path
	Package string // Debian package that provides it
}

// requirements lists what building v needs on the host.
func requirements(v *variants.Variant) []Requirement {
	return []Requirement{
		{v.Bootstrap, v.Bootstrap},
		{"ostree", "ostree"},
		{"apt-get", "apt"},
		{"chroot", "coreutils"},
		{"strace", "strace"},      // traces dracut: the initramfs manifest
		{"taskset", "util-linux"}, // keeps strace and dracut on one CPU
		{"mount", "mount"},
		{"umount", "mount"},
		{"/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"},
	}
}

// HostChecker makes sure the host can build, and reports tool versions.
type HostChecker interface {
	Ensure(ctx context.Context, reqs []Requirement) error
	ToolVersion(ctx context.Context, tool string) (string, error)
}

// realHost checks the machine the builder runs on.
type realHost struct {
	runner   run.Runner
	log      func(msg string)
	versions map[string]string
	cacheDir string // where version answers are kept between runs
	euid     int    // the builder's effective user, a field so tests can be "not root"
}

func newRealHost(cfg Config) *realHost {
	return &realHost{runner: cfg.Runner, versions: map[string]string{}, cacheDir: cfg.CacheDir, euid: os.Geteuid(),
		log: func(m string) { cfg.Log.Warn().Msg(m) }}
}

// ErrNotRoot is returned before any work when the builder is not root.
var ErrNotRoot = errors.New("building needs root (debootstrap/mmdebstrap, chroot and mounts): run it as root, for example `sudo go run mage.go build:minimal`")

func missing(reqs []Requirement) (names, pkgs []string) {
	seen := map[string]bool{}
	for _, r := range reqs {
		var err error
		if strings.HasPrefix(r.Name, "/") {
			_, err = os.Stat(r.Name)
		} else {
			_, err = exec.LookPath(r.Name)
		}
		if err != nil {
			names = append(names, r.Name)
			if !seen[r.Package] {
				pkgs = append(pkgs, r.Package)
				seen[r.Package] = true
			}
		}
	}
	return names, pkgs
}

// Ensure installs missing tools with apt-get when it can (root on a Debian or
// Ubuntu host) and otherwise fails with one message that lists them all.
func (h *realHost) Ensure(ctx context.Context, reqs []Requirement) error {
	if h.euid != 0 {
		return ErrNotRoot
	}
	names, pkgs := missing(reqs)
	if len(names) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing host tools: %s; install the packages %s (this host has no apt-get)",
			strings.Join(names, ", "), strings.Join(pkgs, " "))
	}
	h.log(fmt.Sprintf("installing missing host tools with apt-get: %s", strings.Join(pkgs, " ")))
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := h.runner.Run(ctx, run.Cmd{Args: []string{"apt-get", "update", "-q"}, Env: env}); err != nil {
		return fmt.Errorf("missing host tools %s, and apt-get update failed: %w", strings.Join(names, ", "), err)
	}
	// No Recommends: some bring systemd-resolved, which takes over the host's resolv.conf.
	args := append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, pkgs...)
	if _, err := h.runner.Run(ctx, run.Cmd{Args: args, Env: env}); err != nil {
		return fmt.Errorf("missing host tools %s, and installing %s failed: %w", strings.Join(names, ", "), strings.Join(pkgs, " "), err)
	}
	if names, pkgs := missing(reqs); len(names) > 0 {
		return fmt.Errorf("still missing after apt-get install: %s (packages %s)", strings.Join(names, ", "), strings.Join(pkgs, " "))
	}
	return nil
}

// ToolVersion returns a tool's version line, cached for the process.
func (h *realHost) ToolVersion(ctx context.Context, tool string) (string, error) {
	if v, ok := h.versions[tool]; ok {
		return v, nil
	}
	stamp := toolStamp(tool)
	kept := readToolVersions(h.cacheDir)
	if k, ok := kept[tool]; ok && stamp != "" && k.Stamp == stamp {
		h.versions[tool] = k.Version
		return k.Version, nil
	}
	var v string
	var err error
	if tool == "ostree" {
		v, err = ostreeops.Version(ctx, h.runner)
	} else {
		var out []byte
		out, err = h.runner.Run(ctx, run.Cmd{Args: []string{tool, "--version"}, Quiet: true})
		v = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the version of %s: %w", tool, err)
	}
	h.versions[tool] = v
	if stamp != "" {
		kept[tool] = toolVersion{Stamp: stamp, Version: v}
		writeToolVersions(h.cacheDir, kept)
	}
	return v, nil
}

// EnsureHost checks (and, as root with apt-get, installs) host tools beyond
// those of building a variant: images and VMs.
func EnsureHost(ctx context.Context, cfg Config, reqs []Requirement) error {
	h := cfg.Host
	if h == nil {
		h = newRealHost(cfg)
	}
	return h.Ensure(ctx, reqs)
}
