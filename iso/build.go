package iso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/iso/installer"
	"github.com/debian-atomic/builder/ostreeops"
)

// Options say what goes into the ISO.
type Options struct {
	Runner  run.Runner
	Log     zerolog.Logger
	Repo    string // repository holding LiveCommit
	Variant string // the variant installed
	// LiveCommit is the installer variant's commit: the live system.
	LiveCommit string
	Image      string          // the variant's raw disk image
	Info       installer.Image // what install.json says of it
	Work       string          // scratch folder, removed by Close
	// SourceDir is this module's root, where the installer program is
	// built from; default: found from this file's path.
	SourceDir string
}

// Staging is a prepared ISO tree: the live squashfs, kernel, initramfs
// and EFI image. Write makes ISOs from it (one per set of kernel
// arguments), Close removes it.
type Staging struct {
	o      Options
	stage  string
	efiImg string
	// Prepare's figures.
	Dracut, Squashfs time.Duration
}

// Result describes a written ISO.
type Result struct {
	Path     string
	Bytes    int64
	Duration time.Duration
}

// Prepare makes the live tree from LiveCommit, with the installer and the
// disk image in it, its initramfs, the squashfs and the EFI image. Every
// mount is undone and the tree removed on every path; the staging folder
// stays until Close.
func Prepare(ctx context.Context, o Options) (s *Staging, err error) {
	if o.SourceDir == "" {
		_, file, _, _ := runtime.Caller(0)
		o.SourceDir = filepath.Dir(filepath.Dir(file))
		if !filepath.IsAbs(file) { // built with -trimpath: run from the project
			o.SourceDir, _ = os.Getwd()
		}
	}
	if err := os.RemoveAll(o.Work); err != nil {
		return nil, err
	}
	s = &Staging{o: o, stage: filepath.Join(o.Work, "stage"), efiImg: filepath.Join(o.Work, "efi.img")}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	tree := filepath.Join(o.Work, "live")
	defer os.RemoveAll(tree)
	for _, d := range []string{s.stage, filepath.Join(s.stage, "live"), filepath.Join(s.stage, "LiveOS"), filepath.Join(s.stage, ".disk"), filepath.Join(s.stage, "boot/grub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
	}
	repo := ostreeops.Repo{Path: o.Repo, Runner: o.Runner}
	if err := repo.Checkout(ctx, o.LiveCommit, tree); err != nil {
		return s, fmt.Errorf("checking out the live system %s: %w", o.LiveCommit, err)
	}
	for _, f := range ESPFiles {
		if _, err := os.Stat(filepath.Join(tree, f.Src)); err != nil {
			return s, fmt.Errorf("the live system has no %s: its variant needs shim-signed and grub-efi-amd64-signed (minimal carries them)", f.Src)
		}
	}
	if _, err := os.Stat(filepath.Join(tree, "usr/lib/dracut/modules.d/90dmsquash-live")); err != nil {
		return s, errors.New("the live system has no dracut dmsquash-live module: its variant needs the package dracut-live (variants/installer.yaml has it)")
	}
	kver, err := kernelVersion(tree)
	if err != nil {
		return s, err
	}
	if err := s.liveTree(ctx, tree); err != nil {
		return s, err
	}
	start := time.Now()
	if err := s.initramfs(ctx, tree, kver); err != nil {
		return s, err
	}
	s.Dracut = time.Since(start)
	o.Log.Info().Dur("duration", s.Dracut).Str("kernel", kver).Msg("iso: live initramfs made (dracut, dmsquash-live)")
	if err := s.efi(ctx, tree); err != nil {
		return s, err
	}
	// The kernel and the initramfs are on the ISO for GRUB; the tree's
	// own copies are not needed in the live system.
	if err := os.Rename(filepath.Join(tree, "usr/lib/modules", kver, "vmlinuz"), filepath.Join(s.stage, kernelFile)); err != nil {
		return s, err
	}
	os.Remove(filepath.Join(tree, "usr/lib/modules", kver, "initramfs.img"))
	start = time.Now()
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: SquashfsArgs(tree, filepath.Join(s.stage, squashFile)), Quiet: true}); err != nil {
		return s, fmt.Errorf("compressing the live system: %w", err)
	}
	s.Squashfs = time.Since(start)
	o.Log.Info().Dur("duration", s.Squashfs).Int64("bytes", fileBytes(filepath.Join(s.stage, squashFile))).Msg("iso: live system and disk image compressed (squashfs)")
	return s, os.WriteFile(filepath.Join(s.stage, infoFile), []byte(infoText(o.Variant, o.Info.Commit)), 0o644)
}

// kernelVersion is the one kernel of the tree.
func kernelVersion(tree string) (string, error) {
	mods, _ := filepath.Glob(filepath.Join(tree, "usr/lib/modules/*/vmlinuz"))
	if len(mods) != 1 {
		return "", fmt.Errorf("the live system has %d kernels in usr/lib/modules; want one (linux-image-amd64)", len(mods))
	}
	return filepath.Base(filepath.Dir(mods[0])), nil
}

// liveTree turns the commit's tree into a root that boots as it is: /etc
// back from /usr/etc, the installer and its units, the disk image.
func (s *Staging) liveTree(ctx context.Context, tree string) error {
	o := s.o
	etc := filepath.Join(tree, "etc")
	if entries, _ := os.ReadDir(etc); len(entries) == 0 {
		os.Remove(etc)
		if err := os.Rename(filepath.Join(tree, "usr/etc"), etc); err != nil {
			return fmt.Errorf("the live system's /etc: %w", err)
		}
	}
	for _, d := range []string{"var/tmp", "tmp"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
		os.Chmod(filepath.Join(tree, d), 0o1777)
	}
	if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte("debian-atomic-installer\n"), 0o644); err != nil {
		return err
	}
	bin := filepath.Join(tree, InstallerBin)
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: []string{"go", "build", "-trimpath", "-o", bin, "./iso/installer/cmd/debian-atomic-install"},
		Env: []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}, Dir: o.SourceDir, Quiet: true}); err != nil {
		return fmt.Errorf("building the installer program: %w", err)
	}
	units := filepath.Join(etc, "systemd/system")
	if err := os.MkdirAll(filepath.Join(units, "multi-user.target.wants"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(units, installUnit), []byte(unitText), 0o644); err != nil {
		return err
	}
	for name, target := range LiveLinks() {
		p := filepath.Join(units, name)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	dir := filepath.Join(tree, ImageDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	info := o.Info
	info.File = o.Variant + ".raw"
	if err := linkOrCopy(ctx, o.Runner, o.Image, filepath.Join(dir, info.File)); err != nil {
		return err
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "install.json"), append(data, '\n'), 0o644)
}

// linkOrCopy puts the (sparse) image into the tree: a hard link when both
// are on one filesystem (nothing writes it), else a sparse copy.
func linkOrCopy(ctx context.Context, r run.Runner, src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	_, err := r.Run(ctx, run.Cmd{Args: []string{"cp", "--sparse=always", src, dst}, Quiet: true})
	return err
}

// initramfs runs the tree's own dracut in it, with /proc, /sys and /dev
// mounted for the time of the command and unmounted on every path.
func (s *Staging) initramfs(ctx context.Context, tree, kver string) (err error) {
	r := s.o.Runner
	mounts := [][]string{
		{"mount", "-t", "proc", "proc", filepath.Join(tree, "proc")},
		{"mount", "-t", "sysfs", "sysfs", filepath.Join(tree, "sys")},
		{"mount", "--bind", "/dev", filepath.Join(tree, "dev")},
	}
	var done []string
	defer func() {
		// A cancelled build still unmounts: a fresh context.
		for i := len(done) - 1; i >= 0; i-- {
			if _, uerr := r.Run(context.Background(), run.Cmd{Args: []string{"umount", done[i]}, Quiet: true}); uerr != nil {
				r.Run(context.Background(), run.Cmd{Args: []string{"umount", "-l", done[i]}, Quiet: true})
				if err == nil {
					err = uerr
				}
			}
		}
	}()
	for _, m := range mounts {
		if err := os.MkdirAll(m[len(m)-1], 0o755); err != nil {
			return err
		}
		if _, err := r.Run(ctx, run.Cmd{Args: m, Quiet: true}); err != nil {
			return err
		}
		done = append(done, m[len(m)-1])
	}
	out := "/tmp/debian-atomic-live-initrd.img"
	args := append([]string{"chroot", tree}, DracutArgs(kver, out)...)
	if _, err := r.Run(ctx, run.Cmd{Args: args, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SOURCE_DATE_EPOCH=0", "LANG=C.UTF-8"}, OnlyEnv: true}); err != nil {
		return fmt.Errorf("making the live initramfs: %w", err)
	}
	return os.Rename(filepath.Join(tree, out), filepath.Join(s.stage, initrdFile))
}

// efi makes the El Torito EFI image (also the USB stick's ESP) from the
// live tree's signed shim, MokManager and CD GRUB.
func (s *Staging) efi(ctx context.Context, tree string) error {
	var total int64
	for _, f := range ESPFiles {
		total += fileBytes(filepath.Join(tree, f.Src))
	}
	cmds := [][]string{
		{"mkfs.vfat", "-C", "-n", "ISOEFI", s.efiImg, fmt.Sprint(ESPKiB(total))},
		{"mmd", "-i", s.efiImg, "::/EFI", "::/EFI/BOOT"},
	}
	for _, f := range ESPFiles {
		cmds = append(cmds, []string{"mcopy", "-i", s.efiImg, filepath.Join(tree, f.Src), "::/" + f.Dst})
	}
	for _, c := range cmds {
		if _, err := s.o.Runner.Run(ctx, run.Cmd{Args: c, Quiet: true}); err != nil {
			return fmt.Errorf("making the ISO's EFI image: %w", err)
		}
	}
	return nil
}

// Write makes the ISO at out with extra kernel arguments (e.g. the
// unattended installer's), written beside and renamed into place.
func (s *Staging) Write(ctx context.Context, out string, extra []string) (Result, error) {
	start := time.Now()
	if err := CheckKernelArgs(extra); err != nil {
		return Result{}, err
	}
	label := Label(s.o.Variant)
	title := fmt.Sprintf("Install Debian Atomic %s (erases the disk you choose)", s.o.Variant)
	if err := os.WriteFile(filepath.Join(s.stage, grubCfg), []byte(GrubConfig(title, KernelArgs(label, extra))), 0o644); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Result{}, err
	}
	tmp := out + ".part"
	os.Remove(tmp)
	if _, err := s.o.Runner.Run(ctx, run.Cmd{Args: XorrisoArgs(tmp, label, s.efiImg, s.stage), Quiet: true}); err != nil {
		os.Remove(tmp)
		return Result{}, fmt.Errorf("writing the ISO: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return Result{}, err
	}
	return Result{Path: out, Bytes: fileBytes(out), Duration: time.Since(start)}, nil
}

// Close removes the staging folder.
func (s *Staging) Close() error {
	if s == nil {
		return nil
	}
	return os.RemoveAll(s.o.Work)
}

func fileBytes(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}
