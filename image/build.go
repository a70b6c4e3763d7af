package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/ostreeops"
)

// RootLabel is the root filesystem's label; kernel and GRUB find it by it.
const RootLabel = "atomic-root"

const (
	espMiB      = 64
	alignMiB    = 1
	typeESP     = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeRootX64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
)

// Options say what to put in the image and where.
type Options struct {
	Runner run.Runner
	Log    zerolog.Logger
	Repo   string // repository holding Ref
	// Published is the publish repository holding Ref's commit signed;
	// needed when the image's remote verifies signatures.
	Published  string
	Ref        string
	OSName     string
	KernelArgs []string // the variant's
	Config     Config
	Work       string // scratch folder, removed afterwards
	Out        string // output path without extension: Out.raw, Out.qcow2
	GrubDir    string // GRUB x86_64-efi modules; default /usr/lib/grub/x86_64-efi
}

// Result describes a written image.
type Result struct {
	Raw, Qcow2 string
	Commit     string
	RawBytes   int64 // allocated bytes of the sparse raw image
	Qcow2Bytes int64
	Duration   time.Duration
}

// Build writes a GPT disk: an EFI system partition holding GRUB, and a root
// filesystem holding an OSTree sysroot with Ref deployed. It uses no loop
// device: the filesystems are made from folders (mkfs -d, mtools) and
// copied into the disk file at their offsets.
func Build(ctx context.Context, o Options) (res Result, err error) {
	start := time.Now()
	if o.GrubDir == "" {
		o.GrubDir = "/usr/lib/grub/x86_64-efi"
	}
	if err := os.RemoveAll(o.Work); err != nil {
		return res, err
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return res, err
	}
	defer func() {
		unfreeze(o.Work)
		if rerr := os.RemoveAll(o.Work); rerr != nil && err == nil {
			err = rerr
		}
	}()
	sysroot := filepath.Join(o.Work, "sysroot")
	commit, err := o.deploy(ctx, sysroot)
	if err != nil {
		return res, err
	}
	res.Commit = commit
	o.Log.Info().Str("refspec", o.refspec()).Str("commit", commit).Bool("auto_update", o.Config.AutoUpdate).Msg("image: deployed; writing the disk")
	deploy, err := deploymentDir(sysroot, o.OSName, commit)
	if err != nil {
		return res, err
	}
	if err := o.assemble(ctx, sysroot, deploy); err != nil {
		return res, err
	}
	res.Raw, res.Qcow2 = o.Out+".raw", o.Out+".qcow2"
	res.RawBytes, res.Qcow2Bytes = allocated(res.Raw), allocated(res.Qcow2)
	res.Duration = time.Since(start)
	return res, nil
}

// deploy makes the OSTree sysroot in path: the remote (if any), Ref
// deployed with the origin upgrades follow, the machine's /etc (fstab,
// network, upgrade timer, users) and the first grub.cfg. It returns the
// deployed commit.
func (o Options) deploy(ctx context.Context, path string) (string, error) {
	sysroot := ostreeops.Sysroot{Path: path, Runner: o.Runner}
	if err := os.MkdirAll(sysroot.Path, 0o755); err != nil {
		return "", err
	}
	if err := sysroot.Init(ctx, o.OSName); err != nil {
		return "", fmt.Errorf("initialising the sysroot: %w", err)
	}
	// Kernel paths in boot entries carry /boot: /boot is not a partition of its own.
	if err := sysroot.SetConfig(ctx, "sysroot.bootprefix", "true"); err != nil {
		return "", err
	}
	if o.Config.Remote != nil {
		if err := o.addRemote(ctx, sysroot.Repo().Path); err != nil {
			return "", err
		}
	}
	commit, err := o.pull(ctx, sysroot.Repo().Path)
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", o.Ref, err)
	}
	kargs := append([]string{"root=LABEL=" + RootLabel}, o.KernelArgs...)
	kargs = append(kargs, o.Config.KernelArgs...)
	// The origin records the refspec: REMOTE:REF makes `ostree admin
	// upgrade` on the machine pull from the remote.
	if err := sysroot.Deploy(ctx, o.OSName, o.refspec(), dedupe(kargs)); err != nil {
		return "", fmt.Errorf("deploying %s: %w", o.Ref, err)
	}
	// From now on the machine's own ostree keeps grub.cfg current: its grub2
	// backend runs grub-mkconfig with ostree-boot's 15_ostree at every deploy.
	if err := sysroot.SetConfig(ctx, "sysroot.bootloader", "grub2"); err != nil {
		return "", err
	}
	deploy, err := deploymentDir(sysroot.Path, o.OSName, commit)
	if err != nil {
		return "", err
	}
	grow := canGrow(deploy)
	if grow {
		if err := writeRepart(deploy); err != nil {
			return "", err
		}
	} else {
		o.Log.Warn().Msg("image: no systemd-repart in the commit; the root keeps the image's size on bigger disks")
	}
	if err := writeFstab(deploy, o.Config.Filesystem, grow); err != nil {
		return "", err
	}
	if signedChain(deploy) != nil {
		if err := o.writeUpdateESP(ctx, deploy); err != nil {
			return "", fmt.Errorf("installing the ESP update service: %w", err)
		}
	}
	if dhcp, err := o.ensureNetwork(ctx, deploy); err != nil {
		return "", fmt.Errorf("configuring the network: %w", err)
	} else if dhcp {
		o.Log.Info().Msg("image: no network manager in the commit; wired interfaces get DHCP from systemd-networkd")
	}
	if o.Config.AutoUpdate {
		if err := o.writeUpgradeTimer(ctx, deploy); err != nil {
			return "", fmt.Errorf("installing the upgrade timer: %w", err)
		}
	}
	varDir := filepath.Join(sysroot.Path, "ostree", "deploy", o.OSName, "var")
	for _, u := range o.Config.Users {
		if err := addUser(deploy, varDir, u); err != nil {
			return "", fmt.Errorf("adding user %s: %w", u.Name, err)
		}
	}
	if a := o.Config.Autologin; a != nil {
		dm, session, err := writeAutologin(deploy, *a)
		if err != nil {
			return "", err
		}
		o.Log.Info().Str("user", a.User).Str("display_manager", dm).Str("session", session).Msg("image: automatic login")
	}
	if wrote, err := writeDesktopSettings(deploy); err != nil {
		return "", err
	} else if wrote {
		o.Log.Info().Msg("image: gnome-shell may take 10 minutes to start (software rendering)")
	}
	return commit, writeGrubConfig(sysroot.Path)
}

func dedupe(l []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// deploymentDir is the checkout ostree made for commit.
func deploymentDir(sysroot, osName, commit string) (string, error) {
	d := filepath.Join(sysroot, "ostree", "deploy", osName, "deploy", commit+".0")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("no deployment of %s: %w", commit, err)
	}
	return d, nil
}

func writeFstab(deploy, fs string, grow bool) error {
	pass := "1"
	if fs == "btrfs" {
		pass = "0"
	}
	opts := "defaults"
	if grow {
		opts += ",x-systemd.growfs" // after systemd-repart grew the partition
	}
	line := fmt.Sprintf("LABEL=%s / %s %s 0 %s\n", RootLabel, fs, opts, pass)
	return os.WriteFile(filepath.Join(deploy, "etc/fstab"), []byte("# Made by debian-atomic\n"+line), 0o644)
}

// addUser writes an account into the deployment's /etc and its home into
// the stateroot's /var, as useradd would on the running system.
func addUser(deploy, varDir string, u User) error {
	etc := filepath.Join(deploy, "etc")
	passwd, err := os.ReadFile(filepath.Join(etc, "passwd"))
	if err != nil {
		return err
	}
	uid := 1000
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 {
			if f[0] == u.Name {
				return fmt.Errorf("user %s exists in the commit already", u.Name)
			}
			if n, err := strconv.Atoi(f[2]); err == nil && n >= uid && n < 60000 {
				uid = n + 1
			}
		}
	}
	home := "/var/home/" + u.Name
	hash := u.PasswordHash
	if hash == "" {
		hash = "!" // locked: SSH keys only
	}
	days := time.Now().Unix() / 86400
	appendLine := func(file, line string) error {
		f, err := os.OpenFile(filepath.Join(etc, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(line + "\n")
		return err
	}
	steps := []struct{ file, line string }{
		{"passwd", fmt.Sprintf("%s:x:%d:%d::%s:/bin/bash", u.Name, uid, uid, home)},
		{"shadow", fmt.Sprintf("%s:%s:%d:0:99999:7:::", u.Name, hash, days)},
		{"group", fmt.Sprintf("%s:x:%d:", u.Name, uid)},
		{"gshadow", fmt.Sprintf("%s:!::", u.Name)},
	}
	for _, s := range steps {
		if err := appendLine(s.file, s.line); err != nil {
			return err
		}
	}
	groups := u.Groups
	if groups == nil {
		groups = []string{"sudo"}
	}
	for _, g := range groups {
		if err := addToGroup(etc, g, u.Name); err != nil {
			return err
		}
	}
	h := filepath.Join(varDir, "home", u.Name)
	if err := os.MkdirAll(filepath.Join(h, ".ssh"), 0o700); err != nil {
		return err
	}
	if len(u.SSHKeys) > 0 {
		if err := os.WriteFile(filepath.Join(h, ".ssh/authorized_keys"), []byte(strings.Join(u.SSHKeys, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Dir(h), 0o755)
	return filepath.Walk(h, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// addToGroup adds user to group in group and gshadow.
func addToGroup(etc, group, user string) error {
	for _, file := range []string{"group", "gshadow"} {
		path := filepath.Join(etc, file)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		found := false
		for i, l := range lines {
			f := strings.Split(l, ":")
			if len(f) == 4 && f[0] == group {
				found = true
				if f[3] == "" {
					f[3] = user
				} else {
					f[3] += "," + user
				}
				lines[i] = strings.Join(f, ":")
			}
		}
		if !found {
			return fmt.Errorf("group %s does not exist in the commit", group)
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bootEntry is one Boot Loader Spec entry.
type bootEntry struct {
	title, linux, initrd, options string
	version                       int
}

// writeGrubConfig turns the Boot Loader Spec entries ostree wrote into the
// first grub.cfg, as 15_ostree does on the running machine.
func writeGrubConfig(sysroot string) error {
	loader := filepath.Join(sysroot, "boot", "loader")
	files, _ := filepath.Glob(filepath.Join(loader, "entries", "*.conf"))
	var entries []bootEntry
	for _, f := range files {
		e, err := readEntry(f)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return errors.New("ostree wrote no boot entry")
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].version > entries[j].version })
	var b strings.Builder
	b.WriteString("# Written by debian-atomic from the Boot Loader Spec entries; ostree's grub2\n# backend regenerates it at every deploy.\nset timeout=1\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "menuentry '%s' {\n  linux %s %s\n  initrd %s\n}\n", strings.ReplaceAll(e.title, "'", ""), e.linux, e.options, e.initrd)
	}
	if err := os.WriteFile(filepath.Join(loader, "grub.cfg"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// Where grub-mkconfig users and ostree's autodetection look for it.
	grub := filepath.Join(sysroot, "boot", "grub")
	if err := os.MkdirAll(grub, 0o755); err != nil {
		return err
	}
	os.Remove(filepath.Join(grub, "grub.cfg"))
	return os.Symlink("../loader/grub.cfg", filepath.Join(grub, "grub.cfg"))
}

func readEntry(path string) (bootEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return bootEntry{}, err
	}
	defer f.Close()
	var e bootEntry
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), " ")
		v = strings.TrimSpace(v)
		switch k {
		case "title":
			e.title = v
		case "linux":
			e.linux = v
		case "initrd":
			e.initrd = v
		case "options":
			e.options = v
		case "version":
			e.version, _ = strconv.Atoi(v)
		}
	}
	if e.linux == "" {
		return e, fmt.Errorf("boot entry %s has no kernel", path)
	}
	// /boot is a folder of the root filesystem, which is GRUB's root: paths
	// need the prefix unless ostree wrote it (sysroot.bootprefix).
	for _, p := range []*string{&e.linux, &e.initrd} {
		if *p != "" && !strings.HasPrefix(*p, "/boot/") {
			*p = "/boot" + *p
		}
	}
	return e, nil
}

// embeddedGrub is built into BOOTX64.EFI: it finds the root filesystem by
// label and reads the grub.cfg ostree keeps. ostree's grub2 generator writes
// linux16/initrd16 (or linuxefi/initrdefi) commands, which Debian's EFI GRUB
// does not have: functions map them to linux and initrd.
var embeddedGrub = `search --no-floppy --label --set=root ` + RootLabel + `
set prefix=($root)/boot/grub
function linux16 { linux "$@"; }
function initrd16 { initrd "$@"; }
function linuxefi { linux "$@"; }
function initrdefi { initrd "$@"; }
source ($root)/boot/loader/grub.cfg
`

var grubModules = []string{"part_gpt", "ext2", "btrfs", "fat", "normal", "linux", "configfile", "search",
	"search_label", "all_video", "gzio", "echo", "test", "boot", "serial", "terminal"}

// assemble makes the ESP and root filesystems as files and writes them
// into a GPT disk file, then converts it to qcow2.
func (o Options) assemble(ctx context.Context, sysroot, deploy string) error {
	w := o.Work
	cfg := filepath.Join(w, "embedded.cfg")
	if err := os.WriteFile(cfg, []byte(embeddedGrub), 0o644); err != nil {
		return err
	}
	esp := filepath.Join(w, "esp.img")
	cmds := [][]string{
		{"mkfs.vfat", "-C", "-n", "EFI", esp, strconv.Itoa(espMiB * 1024)},
		{"mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"},
	}
	if chain := signedChain(deploy); chain != nil {
		// Secure Boot: Debian's signed shim and GRUB from the tree; the
		// signed GRUB is monolithic and reads its grub.cfg from the ESP.
		versions, err := loaderVersions(ctx, o.Runner, deploy)
		if err != nil {
			return err
		}
		stamp := filepath.Join(w, "versions")
		if err := os.WriteFile(stamp, []byte(versions+"\n"), 0o644); err != nil {
			return err
		}
		cmds = append(cmds, []string{"mmd", "-i", esp, "::/EFI/debian"},
			[]string{"mcopy", "-i", esp, cfg, "::/" + espGrubCfg},
			[]string{"mcopy", "-i", esp, stamp, "::/EFI/debian/versions"})
		for _, f := range chain {
			cmds = append(cmds, []string{"mcopy", "-i", esp, filepath.Join(deploy, f.src), "::/" + f.dst})
		}
		o.Log.Info().Str("shim_grub", versions).Msg("image: Debian's signed shim and GRUB on the ESP (Secure Boot)")
	} else {
		o.Log.Warn().Msg("image: no signed shim and GRUB in the commit (packages shim-signed, grub-efi-amd64-signed): an unsigned GRUB boots with Secure Boot off only")
		efi := filepath.Join(w, "BOOTX64.EFI")
		cmds = append(cmds, append([]string{"grub-mkimage", "-O", "x86_64-efi", "-d", o.GrubDir, "-c", cfg, "-p", "/boot/grub", "-o", efi}, grubModules...),
			[]string{"mcopy", "-i", esp, efi, "::/EFI/BOOT/BOOTX64.EFI"})
	}
	rootMiB := o.Config.SizeMiB() - espMiB - 3*alignMiB
	rootImg := filepath.Join(w, "root.img")
	switch o.Config.Filesystem {
	case "btrfs":
		cmds = append(cmds, []string{"truncate", "-s", fmt.Sprintf("%dM", rootMiB), rootImg},
			[]string{"mkfs.btrfs", "-q", "-L", RootLabel, "--rootdir", sysroot, rootImg})
	default:
		cmds = append(cmds, []string{"mkfs.ext4", "-q", "-F", "-L", RootLabel, "-d", sysroot, rootImg, fmt.Sprintf("%dM", rootMiB)})
	}
	for _, c := range cmds {
		if _, err := o.Runner.Run(ctx, run.Cmd{Args: c, Quiet: true}); err != nil {
			return err
		}
	}
	// The disk is made in the work folder and renamed into place last, so a
	// failed or interrupted build keeps the previous image.
	raw := filepath.Join(w, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(o.Config.SizeMiB()) << 20); err != nil {
		f.Close()
		return err
	}
	f.Close()
	espStart, rootStart := alignMiB, alignMiB+espMiB+alignMiB
	table := fmt.Sprintf("label: gpt\nstart=%dMiB, size=%dMiB, type=%s, name=\"EFI\"\nstart=%dMiB, size=%dMiB, type=%s, name=\"root\"\n",
		espStart, espMiB, typeESP, rootStart, rootMiB, typeRootX64)
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: []string{"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw}, Stdin: strings.NewReader(table), Quiet: true}); err != nil {
		return fmt.Errorf("partitioning %s: %w", raw, err)
	}
	if err := copyAt(esp, raw, int64(espStart)<<20); err != nil {
		return err
	}
	if err := copyAt(rootImg, raw, int64(rootStart)<<20); err != nil {
		return err
	}
	qcow := filepath.Join(w, "disk.qcow2")
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: []string{"qemu-img", "convert", "-O", "qcow2", raw, qcow}, Quiet: true}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return err
	}
	if err := os.Rename(raw, o.Out+".raw"); err != nil {
		return err
	}
	return os.Rename(qcow, o.Out+".qcow2")
}

// copyAt writes src into dst at offset, skipping zero blocks so the disk
// file stays sparse (dd conv=notrunc,sparse).
func copyAt(src, dst string, offset int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	pos := offset
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, werr := out.WriteAt(buf[:n], pos); werr != nil {
					return werr
				}
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Sync()
		}
		if err != nil {
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// unfreeze clears the immutable flag ostree sets on deployments, so the
// scratch folder can be removed.
func unfreeze(dir string) {
	dirs, _ := filepath.Glob(filepath.Join(dir, "sysroot/ostree/deploy/*/deploy/*.0"))
	for _, d := range dirs {
		clearImmutable(d)
	}
}
