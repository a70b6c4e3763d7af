package image

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/publish"
	"github.com/debian-atomic/builder/variants"
)

// ImagesEnv points at another folder of image settings (default images).
const ImagesEnv = "DEBIAN_ATOMIC_IMAGES"

// ForVariant builds the variant (cached steps are reused) and writes its
// disk image to .cache/images/NAME.{raw,qcow2}.
func ForVariant(ctx context.Context, cfg build.Config, imagesDir, name string) (Result, error) {
	v, err := variants.LoadChain(cfg.VariantsDir, name)
	if err != nil {
		return Result{}, err
	}
	ic, err := Load(imagesDir, name)
	if err != nil {
		return Result{}, err
	}
	published, err := defaultKey(cfg, &ic)
	if err != nil {
		return Result{}, err
	}
	if err := build.EnsureHost(ctx, cfg, hostRequirements(ic)); err != nil {
		return Result{}, err
	}
	if _, err := build.Variants(ctx, cfg, []string{name}); err != nil {
		return Result{}, err
	}
	if err := checkFits(ctx, cfg.Runner, cfg.RepoDir, v.Ref, ic, name); err != nil {
		return Result{}, err
	}
	// The image's scratch folder is in the work folder, which a build that
	// starts meanwhile would clean up: hold the lock as builds do.
	lock, err := build.LockCache(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer lock.Release()
	res, err := Build(ctx, Options{
		Runner: cfg.Runner, Log: cfg.Log, Repo: cfg.RepoDir, Ref: v.Ref, OSName: v.OSName,
		KernelArgs: v.KernelArgs, Config: ic, Published: published,
		Work: filepath.Join(cfg.CacheDir, "work", "image-"+name),
		Out:  filepath.Join(cfg.CacheDir, "images", name),
	})
	if err != nil {
		return res, err
	}
	cfg.Log.Info().Str("raw", res.Raw).Str("qcow2", res.Qcow2).Str("commit", res.Commit).
		Int64("raw_bytes", res.RawBytes).Int64("qcow2_bytes", res.Qcow2Bytes).Dur("duration", res.Duration).Msg("image written")
	return res, nil
}

// defaultKey gives a signed remote that names no gpg-key the public key
// `mage keygen` exported beside the publish repository, so that after
// keygen and publish an image needs no editing; it is checked here, before
// anything is built. It returns the publish repository, where a signed
// remote's image takes its commit (with the signature) from.
func defaultKey(cfg build.Config, c *Config) (string, error) {
	r := c.Remote
	if r == nil || r.Unsigned {
		return "", nil
	}
	s, err := publish.LoadSettings(cfg.VariantsDir)
	if err != nil {
		return "", err
	}
	if r.GPGKey != "" {
		return s.RepoDir(cfg), nil
	}
	path := filepath.Join(s.RepoDir(cfg), publish.KeyFileName)
	if msg := checkKeyFile(path); msg != "" {
		if s.Unsigned {
			msg += fmt.Sprintf("; %s publishes unsigned (signing: none): say so with unsigned: true in the remote", s.File)
		}
		return "", fmt.Errorf("%s:%d: field \"remote\": no gpg-key given, and the default one fails: %s; or name the key with gpg-key", c.file, c.remoteLine, msg)
	}
	r.GPGKey = path
	return s.RepoDir(cfg), nil
}

// hostRequirements are the tools an image build runs.
func hostRequirements(c Config) []build.Requirement {
	reqs := []build.Requirement{
		{Name: "grub-mkimage", Package: "grub-common"},
		{Name: "/usr/lib/grub/x86_64-efi/linux.mod", Package: "grub-efi-amd64-bin"},
		{Name: "mkfs.vfat", Package: "dosfstools"},
		{Name: "mcopy", Package: "mtools"},
		{Name: "sfdisk", Package: "fdisk"},
		{Name: "qemu-img", Package: "qemu-utils"},
		{Name: "mkfs.ext4", Package: "e2fsprogs"},
		{Name: "systemctl", Package: "systemd"}, // enables units in the deployment (--root)
	}
	if c.Filesystem == "btrfs" {
		reqs = append(reqs, build.Requirement{Name: "mkfs.btrfs", Package: "btrfs-progs"})
	}
	return reqs
}

// VMRequirements are the tools booting an image needs.
var VMRequirements = []build.Requirement{
	{Name: "qemu-system-x86_64", Package: "qemu-system-x86"},
	{Name: OVMFCode, Package: "ovmf"},
}
