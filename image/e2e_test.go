package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/variants"
)

// End-to-end: build the real minimal variant, write its image, boot it with
// OVMF (no -kernel shortcut), log in on the serial console, upgrade inside
// the guest from a second disk, roll back. Root, network and minutes.
func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("DEBIAN_ATOMIC_E2E") == "0" || os.Getenv("DEBIAN_ATOMIC_BOOT") == "0" {
		t.Skip("boot tests skipped (-short, DEBIAN_ATOMIC_E2E=0 or DEBIAN_ATOMIC_BOOT=0)")
	}
	if os.Geteuid() != 0 {
		t.Skip("boot tests need root")
	}
}

const (
	testUser     = "tester"
	testPassword = "tester"
	bootTimeout  = 6 * time.Minute
)

// hostTmp is the machine's temporary folder, read before TestMain gives the
// process one of its own: console logs outlive the test there, and the
// package cache is the one the build package's tests fill.
var hostTmp = os.TempDir()

// consoleLog keeps the guest's console in a file the test names on failure.
func consoleLog(t *testing.T, name string) *os.File {
	f, err := os.Create(filepath.Join(hostTmp, "debian-atomic-"+name+".console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type bootTest struct {
	t    *testing.T
	cfg  build.Config
	vdir string
	img  Result
	work string
	log  *os.File
}

func (b *bootTest) boot(extra ...string) (*VM, *Shell, time.Duration) {
	b.t.Helper()
	start := time.Now()
	vm, err := Boot(context.Background(), VMOptions{Disk: b.img.Qcow2, ExtraDisks: extra, Work: b.work, Echo: b.log})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		if !vm.exited() {
			vm.Kill()
		}
	})
	sh, err := Login(vm, testUser, testPassword, bootTimeout)
	if err != nil {
		vm.Kill()
		b.t.Fatalf("%v (console in %s)", err, b.log.Name())
	}
	took := time.Since(start)
	if err := sh.Sudo(testPassword); err != nil {
		vm.Kill()
		b.t.Fatalf("%v (console in %s)", err, b.log.Name())
	}
	return vm, sh, took
}

func (b *bootTest) run(sh *Shell, cmd string) string {
	b.t.Helper()
	out, code, err := sh.Run(cmd, 5*time.Minute)
	if err != nil || code != 0 {
		b.t.Fatalf("%s: exit %d, %v\n%s\n(console in %s)", cmd, code, err, out, b.log.Name())
	}
	return out
}

func (b *bootTest) poweroff(vm *VM, sh *Shell) {
	b.t.Helper()
	sh.vm.Send("systemctl poweroff")
	if err := vm.Wait(3 * time.Minute); err != nil {
		b.t.Fatal(err)
	}
}

var bootedRE = regexp.MustCompile(`(?m)^\* \S+ ([0-9a-f]{64})\.\d+`)

// booted reads the booted deployment's commit from ostree admin status.
func (b *bootTest) booted(sh *Shell) string {
	b.t.Helper()
	st := b.run(sh, "ostree admin status")
	m := bootedRE.FindStringSubmatch(st)
	if m == nil {
		b.t.Fatalf("no booted deployment in:\n%s", st)
	}
	return m[1]
}

func TestE2EBootUpgradeRollback(t *testing.T) {
	e2e(t)
	if _, err := os.Stat(OVMFCode); err != nil {
		t.Skip("ovmf is not installed")
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
	cfg := build.DefaultConfig(dir, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	cfg.VariantsDir, cfg.CacheDir, cfg.RepoDir = vdir, filepath.Join(dir, "cache"), filepath.Join(dir, "repo")
	cfg.DebsDir = filepath.Join(hostTmp, "debian-atomic-e2e-debs")
	b := &bootTest{t: t, cfg: cfg, vdir: vdir, work: filepath.Join(dir, "vm"), log: consoleLog(t, "minimal")}
	ctx := context.Background()

	var err error
	b.img, err = ForVariant(ctx, cfg, filepath.Join("..", "testdata", "images"), "minimal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image: %s in %s; raw %d MiB allocated, qcow2 %d MiB", b.img.Raw, b.img.Duration.Round(time.Second), b.img.RawBytes>>20, b.img.Qcow2Bytes>>20)
	os.Remove(b.img.Raw) // the tests boot the qcow2; keep the disk space

	// First boot: the commit we built, no failed units.
	vm, sh, took := b.boot()
	t.Logf("first boot to a login prompt and a shell: %s (%s)", took.Round(time.Second), vm.Accel)
	if got := b.booted(sh); got != b.img.Commit {
		t.Fatalf("booted %s, built %s", got, b.img.Commit)
	}
	state, _, _ := sh.Run("systemctl is-system-running --wait", 3*time.Minute)
	if !strings.HasSuffix(strings.TrimSpace(state), "running") {
		failed, _, _ := sh.Run("systemctl --failed --no-legend", time.Minute)
		t.Errorf("system state %q; failed units:\n%s", state, failed)
	}
	b.run(sh, "echo kept > /etc/debian-atomic-test && mkdir -p /var/lib/debian-atomic-test && echo kept > /var/lib/debian-atomic-test/file && sync")
	b.poweroff(vm, sh)

	// Upgrade: one more package, a new commit, pulled in the guest from a second disk.
	body, _ := os.ReadFile(filepath.Join(vdir, "minimal.yaml"))
	os.WriteFile(filepath.Join(vdir, "minimal.yaml"), []byte(strings.Replace(string(body), "packages:\n", "packages:\n  - tmux\n", 1)), 0o644)
	reps, err := build.Variants(ctx, cfg, []string{"minimal"})
	if err != nil {
		t.Fatal(err)
	}
	newCommit := reps[0].Commit
	if newCommit == b.img.Commit {
		t.Fatal("adding a package made no new commit")
	}
	upgradeDisk := b.repoDisk(dir, "debian/13/x86_64/minimal")
	vm, sh, took = b.boot(upgradeDisk)
	t.Logf("second boot: %s", took.Round(time.Second))
	b.run(sh, "mkdir -p /run/upgrade && mount -o ro /dev/vdb /run/upgrade")
	b.run(sh, "ostree pull-local /run/upgrade debian/13/x86_64/minimal")
	b.run(sh, "OSTREE_DEBUG_GRUB2=1 ostree admin deploy debian/13/x86_64/minimal")
	// One menu entry per deployment, made by the machine's own ostree.
	if out, code, _ := sh.Run(`test "$(grep -c 'ostree=/ostree/boot' /boot/loader/grub.cfg)" -eq 2`, time.Minute); code != 0 {
		cfg, _, _ := sh.Run("cat /boot/loader/grub.cfg", time.Minute)
		t.Fatalf("the deploy did not put the new commit into grub.cfg (%s):\n%s", out, cfg)
	}
	b.poweroff(vm, sh)

	vm, sh, _ = b.boot()
	if got := b.booted(sh); got != newCommit {
		t.Fatalf("after the upgrade booted %s, want %s", got, newCommit)
	}
	b.run(sh, "command -v tmux")
	if out := b.run(sh, "cat /etc/debian-atomic-test /var/lib/debian-atomic-test/file"); strings.Count(out, "kept") != 2 {
		t.Errorf("files under /etc and /var did not survive the upgrade: %q", out)
	}

	// Rollback: the previous deployment becomes the default.
	b.run(sh, "ostree admin rollback || ostree admin set-default 1")
	b.poweroff(vm, sh)
	vm, sh, _ = b.boot()
	if got := b.booted(sh); got != b.img.Commit {
		t.Fatalf("after the rollback booted %s, want the first commit %s", got, b.img.Commit)
	}
	b.poweroff(vm, sh)
	t.Logf("boot, upgrade and rollback tests: %s", time.Since(total).Round(time.Second))
}

// repoDisk makes a raw ext4 disk holding an OSTree repository with ref, for
// the guest to pull from (mkfs -d: no loop device).
func (b *bootTest) repoDisk(dir, ref string) string {
	b.t.Helper()
	repo := filepath.Join(dir, "upgrade-repo")
	disk := filepath.Join(dir, "upgrade.img")
	for _, c := range [][]string{
		{"ostree", "--repo=" + repo, "init", "--mode=bare"},
		{"ostree", "--repo=" + repo, "pull-local", b.cfg.RepoDir, ref},
		{"mkfs.ext4", "-q", "-F", "-d", repo, disk, "3G"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			b.t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	return disk
}
