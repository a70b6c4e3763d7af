package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debian-atomic/builder/internal/e2etest/e2ebuild"
	"github.com/debian-atomic/builder/publish"
)

// TestE2EBtrfsBootDeployRollback boots the minimal image with a btrfs root
// under Secure Boot from a 20 GiB disk: the root grows; then a new kernel
// arrives as an update and boots under Secure Boot too. The update is
// minimal rebuilt with Debian's other signed kernel flavour
// (linux-image-cloud-amd64 for linux-image-amd64: a new version string, a
// new vmlinuz and initramfs under a new /boot/ostree folder, as a kernel
// security update brings), published unsigned to a loopback server and
// pulled and deployed in the guest; a rollback boots the first kernel
// again. The signed update over a timer is TestE2EBootUpgradeRollback's
// (ext4); what differs on btrfs is the filesystem GRUB, the initramfs and
// growfs read. Cost: two minimal builds, an image, three boots under Secure
// Boot (the deploy-only version took 9m55s on an idle machine, 15m56s in
// CI). DEBIAN_ATOMIC_BTRFS_BOOT=0 skips it.
func TestE2EBtrfsBootDeployRollback(t *testing.T) {
	e2e(t)
	if os.Getenv("DEBIAN_ATOMIC_BTRFS_BOOT") == "0" {
		t.Skip("DEBIAN_ATOMIC_BTRFS_BOOT=0")
	}
	if _, err := os.Stat(OVMFCodeSecure); err != nil {
		t.Skip("ovmf is not installed")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs is not installed (btrfs-progs)")
	}
	t.Parallel() // its builds run while the ext4 test boots: the VM lane keeps boots one at a time
	total := time.Now()
	dir, vdir, cfg := minimalProject(t)
	log := cfg.Log
	// Built first, for a lock the archive moved past (see e2ebuild.Variants).
	if _, err := e2ebuild.Variants(t, context.Background(), cfg, "minimal"); err != nil {
		t.Fatal(err)
	}
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
	// Published before the update is built, so the update is a static delta.
	pubSettings := &publish.Settings{Unsigned: true, Repo: filepath.Join(dir, "publish"), Keep: 5}
	if _, err := publish.Publish(context.Background(), cfg, pubSettings, []string{"minimal"}); err != nil {
		t.Fatal(err)
	}
	srv := publish.NewServer(pubSettings.Repo, log)
	if _, err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	b := &bootTest{t: t, cfg: cfg, vdir: vdir, img: img, work: filepath.Join(dir, "vm"), log: consoleLog(t, "minimal-btrfs"), disk: disk, secureBoot: true,
		forwards: []GuestForward{{Guest: guestRepoAddr, Host: srv.Addr()}}}

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
	firstKernel := b.run(sh, "uname -r")
	b.poweroff(vm, sh)

	// The update: another signed kernel. The guest was off meanwhile, so
	// the lane let the other boot tests run.
	body, _ := os.ReadFile(filepath.Join(vdir, "minimal.yaml"))
	if !strings.Contains(string(body), "  - linux-image-amd64\n") {
		t.Fatal("variants/minimal.yaml no longer names linux-image-amd64")
	}
	os.WriteFile(filepath.Join(vdir, "minimal.yaml"), []byte(strings.Replace(string(body), "  - linux-image-amd64\n", "  - linux-image-cloud-amd64\n", 1)), 0o644)
	reps, err := e2ebuild.Variants(t, context.Background(), cfg, "minimal")
	if err != nil {
		t.Fatal(err)
	}
	update := reps[0].Commit
	pub, err := publish.Publish(context.Background(), cfg, pubSettings, []string{"minimal"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pub.Refs {
		t.Logf("the kernel update published: %s -> %s, delta %s: %d KiB", short(r.Old), short(r.New), r.Delta, r.DeltaSize>>10)
	}

	vm, sh, _ = b.boot()
	b.run(sh, "for i in $(seq 60); do curl -sfo /dev/null "+guestRepoURL+"config && break; sleep 2; done")
	b.run(sh, "ostree remote add --no-gpg-verify test "+guestRepoURL)
	b.run(sh, "ostree pull test:"+minimalRef)
	b.run(sh, "ostree admin deploy --karg-append=debian-atomic.test=deployed test:"+minimalRef)
	b.poweroff(vm, sh)

	vm, sh, took = b.boot()
	t.Logf("the new kernel's deployment, Secure Boot: boot to a shell in %s", took.Round(time.Second))
	if got := b.booted(sh); got != update {
		t.Fatalf("after the deploy booted %s, want the update %s", got, update)
	}
	newKernel := b.run(sh, "uname -r")
	if newKernel == firstKernel || !strings.HasSuffix(newKernel, "-cloud-amd64") {
		t.Fatalf("the update's kernel did not boot: %q, first %q", newKernel, firstKernel)
	}
	if out := b.run(sh, "mokutil --sb-state"); !strings.Contains(out, "SecureBoot enabled") {
		t.Errorf("the new kernel under %q", out)
	}
	if out := b.run(sh, "cat /proc/cmdline"); !strings.Contains(out, "debian-atomic.test=deployed") {
		t.Errorf("the deployment's kernel arguments: %s", out)
	}
	t.Logf("kernel %s, then %s, both under Secure Boot", firstKernel, newKernel)
	if again := b.rootSize(sh); again != grown {
		t.Errorf("the second boot changed the root: %s, then %s", grown, again)
	}
	b.run(sh, "ostree admin set-default 1") // trixie's ostree 2025.2 has no rollback subcommand
	b.poweroff(vm, sh)

	vm, sh, _ = b.boot()
	if got := b.run(sh, "uname -r"); got != firstKernel {
		t.Fatalf("the rollback did not boot the first kernel: %s", got)
	}
	if got := b.booted(sh); got != img.Commit {
		t.Fatalf("after the rollback booted %s, want %s", got, img.Commit)
	}
	b.poweroff(vm, sh)
	t.Logf("btrfs boot, kernel update and rollback under Secure Boot: %s", time.Since(total).Round(time.Second))
}
