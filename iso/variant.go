package iso

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/image"
	"github.com/debian-atomic/builder/iso/installer"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// LiveVariant is the variant the ISO's live system is built from.
const LiveVariant = "installer"

// HostRequirements are the tools an ISO build runs besides an image's.
var HostRequirements = []build.Requirement{
	{Name: "xorriso", Package: "xorriso"},
	{Name: "mksquashfs", Package: "squashfs-tools"},
	{Name: "mkfs.vfat", Package: "dosfstools"},
	{Name: "mcopy", Package: "mtools"},
	{Name: "chroot", Package: "coreutils"},
	{Name: "mount", Package: "mount"},
}

// Path is where ForVariant writes NAME's ISO.
func Path(cfg build.Config, name string) string {
	return filepath.Join(cfg.CacheDir, "iso", name+".iso")
}

// Made is what ForVariant made.
type Made struct {
	Result
	Image      image.Result
	LiveCommit string
	Dracut     time.Duration
	Squashfs   time.Duration
}

// ForVariant builds variant name's disk image (images/NAME.yaml, as `mage
// image:variant` does) and the installer variant, and writes the ISO to
// Path(cfg, name), with extra kernel arguments on its menu entry.
func ForVariant(ctx context.Context, cfg build.Config, imagesDir, name string, extra []string) (Made, error) {
	var m Made
	if err := CheckKernelArgs(extra); err != nil {
		return m, err
	}
	if _, err := variants.LoadChain(cfg.VariantsDir, LiveVariant); err != nil {
		return m, err
	}
	if err := build.EnsureHost(ctx, cfg, HostRequirements); err != nil {
		return m, err
	}
	img, err := image.ForVariant(ctx, cfg, imagesDir, name)
	if err != nil {
		return m, err
	}
	m.Image = img
	reps, err := build.Variants(ctx, cfg, []string{LiveVariant})
	if err != nil {
		return m, err
	}
	m.LiveCommit = reps[0].Commit
	// The staging folder is in the work folder, which a build that starts
	// meanwhile would clean up: hold the lock as builds do.
	lock, err := build.LockCache(ctx, cfg)
	if err != nil {
		return m, err
	}
	defer lock.Release()
	repo := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
	version, _ := repo.Metadata(ctx, img.Commit, "version")
	version = strings.Trim(version, "'")
	s, err := Prepare(ctx, Options{
		Runner: cfg.Runner, Log: cfg.Log, Repo: cfg.RepoDir, Variant: name, LiveCommit: m.LiveCommit,
		Image: img.Raw, Info: installer.Image{Variant: name, Commit: img.Commit, Version: version, Bytes: fileBytes(img.Raw)},
		Work: filepath.Join(cfg.CacheDir, "work", "iso-"+name),
	})
	if err != nil {
		return m, err
	}
	defer s.Close()
	m.Dracut, m.Squashfs = s.Dracut, s.Squashfs
	m.Result, err = s.Write(ctx, Path(cfg, name), extra)
	if err != nil {
		return m, err
	}
	cfg.Log.Info().Str("iso", m.Path).Int64("bytes", m.Bytes).Str("commit", img.Commit).Str("live_commit", m.LiveCommit).Msg("installer ISO written")
	return m, nil
}
