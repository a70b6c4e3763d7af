package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

// TestE2EBtrfsBootDeployRollback boots the minimal image with a btrfs root
// under Secure Boot from a 20 GiB disk: the root grows; a new deployment
// made in the guest (the same commit with one more kernel argument, so no
// second build is needed) boots, and a rollback boots the first one again.
// The upgrade over HTTP is TestE2EBootUpgradeRollback's (ext4); what
// differs on btrfs is the filesystem GRUB, the initramfs and growfs read.
// Cost: a minimal build, an image, three boots under Secure Boot: 9m55s
// on an idle machine (first boot to a shell 1m19s), 15m56s in a CI run.
// Opt-in (DEBIAN_ATOMIC_BTRFS_BOOT=1): beside the installer ISO's test in
// that CI run, the ext4 test's upgraded boot was starved (no login in 15
// minutes, guest soft lockups), so CI keeps one QEMU lane.
func TestE2EBtrfsBootDeployRollback(t *testing.T) {
	e2e(t)
	if os.Getenv("DEBIAN_ATOMIC_BTRFS_BOOT") != "1" {
		t.Skip("the btrfs boot test is opt-in: DEBIAN_ATOMIC_BTRFS_BOOT=1 (a build and three Secure Boot boots, 10-16 minutes)")
	}
	if _, err := os.Stat(OVMFCodeSecure); err != nil {
		t.Skip("ovmf is not installed")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs is not installed (btrfs-progs)")
	}
	total := time.Now()
	dir := t.TempDir()
	vdir := filepath.Join(dir, "variants")
	os.MkdirAll(vdir, 0o755)
	for _, f := range []string{"minimal.yaml", variants.LockFile} {
		if data, err := os.ReadFile(filepath.Join("..", "variants", f)); err == nil {
			os.WriteFile(filepath.Join(vdir, f), data, 0o644)
		}
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	cfg := build.DefaultConfig(dir, log)
	cfg.VariantsDir, cfg.CacheDir, cfg.RepoDir = vdir, filepath.Join(dir, "cache"), filepath.Join(dir, "repo")
	cfg.DebsDir = filepath.Join(hostTmp, "debian-atomic-e2e-debs")
	img, err := ForVariant(context.Background(), cfg, filepath.Join("..", "testdata", "images-btrfs"), "minimal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("btrfs image: %s in %s; raw %d MiB allocated", img.Raw, img.Duration.Round(time.Second), img.RawBytes>>20)
	disk := filepath.Join(dir, "btrfs.raw")
	copySparse(t, img.Raw, disk)
	os.Remove(img.Raw)
	os.Remove(img.Qcow2)
	if err := os.Truncate(disk, 20<<30); err != nil {
		t.Fatal(err)
	}
	b := &bootTest{t: t, cfg: cfg, vdir: vdir, img: img, work: filepath.Join(dir, "vm"), log: consoleLog(t, "minimal-btrfs"), disk: disk, secureBoot: true}

	vm, sh, took := b.boot()
	t.Logf("btrfs, Secure Boot, 20 GiB disk: first boot to a shell in %s", took.Round(time.Second))
	if got := b.booted(sh); got != img.Commit {
		t.Fatalf("booted %s, built %s", got, img.Commit)
	}
	if out := b.run(sh, "findmnt -no FSTYPE /sysroot"); out != "btrfs" {
		t.Fatalf("the root is %q, not btrfs", out)
	}
	grown := b.rootSize(sh)
	if out := b.run(sh, "mokutil --sb-state"); !strings.Contains(out, "SecureBoot enabled") {
		t.Errorf("mokutil --sb-state: %q", out)
	}
	b.run(sh, "ostree admin deploy --karg-append=debian-atomic.test=deployed "+img.Commit)
	b.poweroff(vm, sh)

	vm, sh, _ = b.boot()
	if out := b.run(sh, "cat /proc/cmdline"); !strings.Contains(out, "debian-atomic.test=deployed") {
		t.Fatalf("the new deployment did not boot: %s", out)
	}
	if again := b.rootSize(sh); again != grown {
		t.Errorf("the second boot changed the root: %s, then %s", grown, again)
	}
	b.run(sh, "ostree admin set-default 1") // trixie's ostree 2025.2 has no rollback subcommand
	b.poweroff(vm, sh)

	vm, sh, _ = b.boot()
	if out := b.run(sh, "cat /proc/cmdline"); strings.Contains(out, "debian-atomic.test=deployed") {
		t.Fatalf("the rollback did not boot the first deployment: %s", out)
	}
	b.poweroff(vm, sh)
	t.Logf("btrfs boot, deploy and rollback test: %s", time.Since(total).Round(time.Second))
}
