package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/internal/e2etest/e2ebuild"
	"github.com/debian-atomic/builder/publish"
	"github.com/debian-atomic/builder/variants"
)

// End-to-end: build the real minimal variant, publish it signed, write its
// image, boot it with OVMF (no -kernel shortcut), log in on the serial
// console, upgrade inside the guest over HTTP from the published
// repository, roll back. Root, network and minutes.
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
	// TCG on a shared, busy machine: a CI boot took over 10 minutes with the
	// guest kernel reporting soft lockups (its processors starved).
	bootTimeout = 15 * time.Minute
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
	t        *testing.T
	cfg      build.Config
	vdir     string
	img      Result
	work     string
	log      *os.File
	forwards []GuestForward
	// disk is what boots (default: the image's qcow2); secureBoot boots
	// Secure Boot firmware with Microsoft's keys.
	disk       string
	secureBoot bool
}

func (b *bootTest) boot() (*VM, *Shell, time.Duration) {
	b.t.Helper()
	disk := b.disk
	if disk == "" {
		disk = b.img.Qcow2
	}
	boot := func() (*VM, error) {
		vm, err := Boot(context.Background(), VMOptions{Disk: disk, Work: b.work, Echo: b.log, Restrict: true, Forwards: b.forwards, SecureBoot: b.secureBoot, Lane: HostLane})
		if err == nil {
			b.t.Cleanup(vm.Kill)
		}
		return vm, err
	}
	vm, sh, err := LoginRetrying(context.Background(), boot, testUser, testPassword, bootTimeout, func(err error, trouble string) {
		b.t.Logf("the boot reached no login (%v) and its kernel reported %q: booting again, once (console in %s)", err, trouble, b.log.Name())
	})
	if err != nil {
		b.t.Fatalf("%v (console in %s)", err, b.log.Name())
	}
	took := time.Since(vm.Started)
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
	// A staged deployment is written while shutting down (TCG: minutes).
	if err := vm.Wait(5 * time.Minute); err != nil {
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

// The guest reaches the host's loopback server at this address of QEMU's
// user-mode network (testdata/images/minimal.yaml names it as the remote).
const (
	guestRepoAddr = "10.0.2.100:80"
	guestRepoURL  = "http://10.0.2.100/"
	minimalRef    = "debian/13/x86_64/minimal"
)

// TestE2EBootUpgradeRollback is the update stream, end to end: the minimal
// image knows its remote (GPG-verified) and has the upgrade timer; the
// guest, cut off from everything but one forwarded port, stages an upgrade
// published over HTTP as a static delta, boots into it with /etc and /var
// kept, rolls back, and refuses a repository signed by another key.
func TestE2EBootUpgradeRollback(t *testing.T) {
	e2e(t)
	if _, err := os.Stat(OVMFCode); err != nil {
		t.Skip("ovmf is not installed")
	}
	for _, tool := range []string{"gpg", "nc.openbsd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (gnupg, netcat-openbsd)", tool)
		}
	}
	t.Parallel() // beside the btrfs test: builds overlap, the VM lane keeps boots one at a time
	total := time.Now()
	dir, vdir, cfg := minimalProject(t)
	log := cfg.Log
	b := &bootTest{t: t, cfg: cfg, vdir: vdir, work: filepath.Join(dir, "vm"), log: consoleLog(t, "minimal")}
	ctx := context.Background()

	// Publishing: a throwaway key in a temporary GnuPG home, named by the
	// settings file beside the variants; the repository is CACHE/publish.
	// (Short paths: gpg-agent's socket lives in the home and a socket path
	// has at most 107 bytes.)
	home := gnupgHome(t, "gnupg-")
	os.WriteFile(filepath.Join(vdir, publish.SettingsFile), []byte("gnupg-home: "+home+"\nkeep: 5\n"), 0o644)
	settings, err := publish.LoadSettings(vdir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := publish.Keygen(ctx, cfg, settings)
	if err != nil {
		t.Fatal(err)
	}
	reps, err := e2ebuild.Variants(t, ctx, cfg, "minimal")
	if err != nil {
		t.Fatal(err)
	}
	first := reps[0].Commit
	pub, err := publish.Publish(ctx, cfg, settings, []string{"minimal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first publish: %s", pub.Duration.Round(time.Millisecond))

	// One loopback server: the publish repository at /, a repository of
	// the same commits signed by another key at /other/.
	other := &publish.Settings{GnuPGHome: gnupgHome(t, "gnupg-other-"), Repo: filepath.Join(dir, "publish-other"), Keep: 5}
	srv := publish.NewServer(settings.RepoDir(cfg), log)
	srvOther := publish.NewServer(other.Repo, log)
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	mux.Handle("/other/", http.StripPrefix("/other", srvOther.Handler()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	b.forwards = []GuestForward{{Guest: guestRepoAddr, Host: ln.Addr().String()}}

	// The image's remote names no key: it is the one keygen exported.
	b.img, err = ForVariant(ctx, cfg, filepath.Join("..", "testdata", "images"), "minimal")
	if err != nil {
		t.Fatal(err)
	}
	if b.img.Commit != first {
		t.Fatalf("the image holds %s, the build made %s", b.img.Commit, first)
	}
	t.Logf("image: %s in %s; raw %d MiB allocated, qcow2 %d MiB", b.img.Raw, b.img.Duration.Round(time.Second), b.img.RawBytes>>20, b.img.Qcow2Bytes>>20)
	// The machine boots from the raw image copied into a 20 GiB sparse disk,
	// as onto a bigger drive: the root grows at first boot. Under Secure Boot
	// only with DEBIAN_ATOMIC_SECUREBOOT_BOOT=1: on this busy 2-core machine,
	// under TCG, the Secure Boot firmware's boots stalled after udev's device
	// scan (idle guest, no login in 20 minutes, with one or two processors)
	// while the same image boots without it; the refusal of an unsigned GRUB
	// below runs always.
	b.disk, b.secureBoot = filepath.Join(dir, "grown.raw"), os.Getenv("DEBIAN_ATOMIC_SECUREBOOT_BOOT") == "1"
	copySparse(t, b.img.Raw, b.disk)
	if err := os.Truncate(b.disk, 20<<30); err != nil {
		t.Fatal(err)
	}
	// A copy whose signed GRUB is replaced by an unsigned one: shim refuses it.
	unsigned := filepath.Join(dir, "unsigned.raw")
	copySparse(t, b.img.Raw, unsigned)
	os.Remove(b.img.Raw) // the tests boot the copies and the qcow2; keep the disk space
	refuseUnsigned(t, unsigned, filepath.Join(dir, "vm-unsigned"))
	os.Remove(unsigned)

	// A copy of the image as written, booted last: a second machine from the
	// same image must make host keys of its own.
	fresh := filepath.Join(dir, "fresh.qcow2")
	if out, err := exec.Command("cp", "--sparse=always", b.img.Qcow2, fresh).CombinedOutput(); err != nil {
		t.Fatalf("copying the image: %v\n%s", err, out)
	}

	// First boot: the commit we built, no failed units, sshd with host keys
	// made at first boot, the remote and the timer in place.
	vm, sh, took := b.boot()
	firstBoot := took
	t.Logf("first boot to a login prompt and a shell, Secure Boot %v, 20 GiB disk: %s (%s)", b.secureBoot, took.Round(time.Second), vm.Accel)
	if got := b.booted(sh); got != b.img.Commit {
		t.Fatalf("booted %s, built %s", got, b.img.Commit)
	}
	if b.secureBoot {
		if out := b.run(sh, "mokutil --sb-state"); !strings.Contains(out, "SecureBoot enabled") {
			t.Errorf("mokutil --sb-state: %q", out)
		}
	}
	grown := b.rootSize(sh)
	t.Logf("root after the first boot: %s", grown)
	state, _, _ := sh.Run("systemctl is-system-running --wait", 3*time.Minute)
	if !strings.HasSuffix(strings.TrimSpace(state), "running") {
		failed, _, _ := sh.Run("systemctl --failed --no-legend", time.Minute)
		t.Errorf("system state %q; failed units:\n%s", state, failed)
	}
	// systemd's own tmpfiles lines for /home, /root and /srv (links into
	// /var here) name the folders in /var, and a locale is set.
	if out, _, _ := sh.Run("journalctl -b -o cat -t systemd-tmpfiles --no-pager | grep 'is not a directory'", time.Minute); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-tmpfiles at boot:\n%s", out)
	}
	if out := b.run(sh, "grep ^LANG= /etc/default/locale"); out != "LANG=C.UTF-8" {
		t.Errorf("/etc/default/locale sets %q", out)
	}
	if out, code, _ := sh.Run("systemctl is-active ssh.service && test -s /etc/ssh/ssh_host_ed25519_key && test -s /etc/ssh/ssh_host_ed25519_key.pub", time.Minute); code != 0 {
		st, _, _ := sh.Run("ls -l /etc/ssh; systemctl status --no-pager ssh.service", time.Minute)
		t.Errorf("sshd is not active with host keys (%s):\n%s", out, st)
	}
	firstKey := b.run(sh, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
	if out := b.run(sh, "ostree remote show-url debian"); !strings.HasSuffix(out, guestRepoURL) {
		t.Errorf("the guest's remote: %q", out)
	}
	if out := b.run(sh, "cat /ostree/deploy/debian/deploy/"+first+".0.origin"); !strings.Contains(out, "refspec=debian:"+minimalRef) {
		t.Errorf("the origin does not follow the remote:\n%s", out)
	}
	if out := b.run(sh, "systemctl is-enabled "+UpgradeTimer+"; systemctl is-active "+UpgradeTimer); out != "enabled\nactive" {
		t.Errorf("the upgrade timer is not enabled and active: %q", out)
	}
	b.run(sh, "systemctl cat ostree-finalize-staged.service >/dev/null")
	// The ESP's loader is the deployment's already: the update service ran and did nothing.
	if out := b.run(sh, "systemctl show -p Result --value "+UpdateESPService+"; journalctl -b -u "+UpdateESPService+" -o cat --no-pager"); !strings.HasPrefix(out, "success") || !strings.Contains(out, "nothing to do") {
		t.Errorf("%s on first boot:\n%s", UpdateESPService, out)
	}
	// The network comes up (DHCP) and reaches the forwarded port; nothing is new yet.
	b.run(sh, "for i in $(seq 60); do curl -sfo /dev/null "+guestRepoURL+"config && break; sleep 2; done; curl -sfo /dev/null "+guestRepoURL+"config")
	if out := b.run(sh, "ostree admin upgrade"); !strings.Contains(out, "No update available") {
		t.Errorf("upgrade with nothing published: %q", out)
	}
	b.run(sh, "echo kept > /etc/debian-atomic-test && mkdir -p /var/lib/debian-atomic-test && echo kept > /var/lib/debian-atomic-test/file && sync")
	b.poweroff(vm, sh)

	// Upgrade: one more package, a new commit, published with a static
	// delta; the same commits signed by another key at /other/.
	body, _ := os.ReadFile(filepath.Join(vdir, "minimal.yaml"))
	os.WriteFile(filepath.Join(vdir, "minimal.yaml"), []byte(strings.Replace(string(body), "packages:\n", "packages:\n  - tree\n", 1)), 0o644)
	// tree (one program, no library) is nothing dracut looks at: the
	// upgraded commit boots the initramfs stored by the first build,
	// without dracut running again. (A package that adds a library to
	// /usr/lib/x86_64-linux-gnu, as tmux does, reruns dracut: dracut globs
	// that folder, so its listing is in the manifest.)
	var upgradeLog bytes.Buffer
	ucfg := cfg
	ucfg.Log = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), &upgradeLog)).Level(zerolog.InfoLevel)
	reps, err = e2ebuild.Variants(t, ctx, ucfg, "minimal")
	if err != nil {
		t.Fatal(err)
	}
	// The one repository (step results, the initramfs, both commits) is sound.
	if out, err := exec.Command("ostree", "--repo="+cfg.RepoDir, "fsck", "--quiet").CombinedOutput(); err != nil {
		t.Errorf("ostree fsck of %s: %v\n%s", cfg.RepoDir, err, out)
	}
	if !strings.Contains(upgradeLog.String(), "postprocess: initramfs reused") {
		t.Errorf("the upgraded commit's initramfs was not the stored one: dracut ran again (see the log for the path that differed)")
	}
	newCommit := reps[0].Commit
	if newCommit == b.img.Commit {
		t.Fatal("adding a package made no new commit")
	}
	pub, err = publish.Publish(ctx, cfg, settings, []string{"minimal"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pub.Refs {
		t.Logf("second publish: %s -> %s in %s; delta %s: %d KiB, the full commit %d MiB", short(r.Old), short(r.New), pub.Duration.Round(time.Millisecond), r.Delta, r.DeltaSize>>10, r.CommitSize>>20)
	}
	if _, err := publish.Keygen(ctx, cfg, other); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(ctx, cfg, other, []string{"minimal"}); err != nil {
		t.Fatal(err)
	}
	b.fullPull(ln.Addr().String(), key.PublicKey, srv)

	vm, sh, took = b.boot()
	t.Logf("second boot: %s", took.Round(time.Second))
	// The second boot grows nothing: same partition table, same filesystem.
	if again := b.rootSize(sh); again != grown {
		t.Errorf("the second boot changed the root: %s, then %s", grown, again)
	}
	// A repository signed by another key is refused.
	b.run(sh, `ostree --repo=/ostree/repo config set 'remote "debian".url' `+guestRepoURL+"other/")
	out, code, _ := sh.Run("ostree admin upgrade 2>&1", 5*time.Minute)
	if code == 0 || !regexp.MustCompile(`(?i)gpg|signature|keyring`).MatchString(out) {
		t.Errorf("an upgrade from a repository signed by another key: exit %d\n%s", code, out)
	} else {
		t.Logf("signed by another key, refused: %s", lastLine(out))
	}
	if len(srvOther.Requests()) == 0 {
		t.Error("the refusal came without asking the other repository")
	}
	b.run(sh, `ostree --repo=/ostree/repo config set 'remote "debian".url' `+guestRepoURL)
	b.run(sh, "curl -sfo /dev/null "+guestRepoURL+"config")
	// The timer's service stages the upgrade, pulled over HTTP with GPG.
	srv.Reset()
	pull := time.Now()
	b.run(sh, "systemctl start "+UpgradeService)
	pullTook := time.Since(pull)
	reqs := srv.Requests()
	var bytes int64
	// A delta pull: the superblock (with its parts), the commit's signature,
	// and at most a few "fallback" objects the delta leaves loose (large
	// changed files such as the initramfs); never a walk of the tree.
	var deltas, trees, files int
	var fileBytes int64
	for _, r := range reqs {
		bytes += r.Bytes
		switch {
		case strings.HasPrefix(r.Path, "/deltas/"):
			deltas++
		case strings.HasSuffix(r.Path, ".dirtree") || strings.HasSuffix(r.Path, ".dirmeta"):
			trees++
		case strings.HasSuffix(r.Path, ".filez"):
			files++
			fileBytes += r.Bytes
		}
	}
	t.Logf("guest upgrade (%s, staged): %s, %d HTTP requests, %d KiB; %d under deltas/, %d loose file objects (%d KiB, the delta's fallbacks), %d trees",
		UpgradeService, pullTook.Round(100*time.Millisecond), len(reqs), bytes>>10, deltas, files, fileBytes>>10, trees)
	if deltas == 0 || trees > 0 || files > 3 {
		t.Errorf("the upgrade did not pull the static delta:\n%v", reqs)
	}
	if out := b.run(sh, "ostree admin status"); !strings.Contains(out, "staged") || !strings.Contains(out, newCommit) {
		t.Errorf("no staged deployment of %s:\n%s", newCommit, out)
	}
	// ostree's own report reaches the journal: both signatures checked.
	journal, _, _ := sh.Run("journalctl -b -u "+UpgradeService+" --no-pager -o cat", time.Minute)
	t.Logf("the service's journal:\n%s", journal)
	if !strings.Contains(journal, "GPG: summary+commit") {
		t.Error("the service's journal does not say the summary and the commit were verified")
	}
	b.poweroff(vm, sh)

	vm, sh, _ = b.boot()
	if got := b.booted(sh); got != newCommit {
		t.Fatalf("after the upgrade booted %s, want %s", got, newCommit)
	}
	b.run(sh, "command -v tree")
	if out := b.run(sh, "cat /etc/debian-atomic-test /var/lib/debian-atomic-test/file"); strings.Count(out, "kept") != 2 {
		t.Errorf("files under /etc and /var did not survive the upgrade: %q", out)
	}
	// One menu entry per deployment, made by the machine's own ostree.
	if out, code, _ := sh.Run(`test "$(grep -c 'ostree=/ostree/boot' /boot/loader/grub.cfg)" -eq 2`, time.Minute); code != 0 {
		cfg, _, _ := sh.Run("cat /boot/loader/grub.cfg", time.Minute)
		t.Errorf("the staged deploy did not put both commits into grub.cfg (%s):\n%s", out, cfg)
	}

	// Rollback: the previous deployment becomes the default.
	b.run(sh, "ostree admin set-default 1") // trixie's ostree 2025.2 has no rollback subcommand
	b.poweroff(vm, sh)
	vm, sh, _ = b.boot()
	if got := b.booted(sh); got != b.img.Commit {
		t.Fatalf("after the rollback booted %s, want the first commit %s", got, b.img.Commit)
	}
	// Across upgrade and rollback the machine kept its own host key.
	if got := b.run(sh, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"); got != firstKey {
		t.Errorf("the host key changed across upgrade and rollback: %q, then %q", firstKey, got)
	}
	b.poweroff(vm, sh)

	// A fresh copy of the same image: another machine, another host key;
	// booted without Secure Boot, for the boot time figure.
	secureFirst := b.secureBoot
	b.disk, b.secureBoot = fresh, false
	vm, sh, took = b.boot()
	t.Logf("first boot to a login prompt and a shell: Secure Boot %v, 20 GiB disk %s; no Secure Boot, 6 GiB qcow2 %s", secureFirst, firstBoot.Round(time.Second), took.Round(time.Second))
	if got := b.run(sh, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"); got == firstKey {
		t.Errorf("two machines from the same image share the host key %s", got)
	} else {
		t.Logf("host keys of two machines from one image: %s / %s", strings.TrimSpace(firstKey), strings.TrimSpace(got))
	}
	b.poweroff(vm, sh)
	t.Logf("boot, upgrade and rollback tests: %s", time.Since(total).Round(time.Second))
}

// fullPull measures, on the host, what a pull of the published ref into an
// empty repository costs over the same server: the figure the guest's
// delta pull compares with.
func (b *bootTest) fullPull(addr, key string, srv *publish.Server) {
	b.t.Helper()
	repo := filepath.Join(b.t.TempDir(), "client")
	run := func(args ...string) {
		if out, err := exec.Command("ostree", append([]string{"--repo=" + repo}, args...)...).CombinedOutput(); err != nil {
			b.t.Fatalf("ostree %v: %v\n%s", args, err, out)
		}
	}
	run("init", "--mode=bare-user")
	run("remote", "add", "--gpg-import="+key, "--set=gpg-verify-summary=true", "debian", "http://"+addr+"/")
	srv.Reset()
	start := time.Now()
	run("pull", "debian", minimalRef)
	took := time.Since(start)
	var bytes int64
	reqs := srv.Requests()
	for _, r := range reqs {
		bytes += r.Bytes
	}
	b.t.Logf("full pull on the host over loopback: %s, %d HTTP requests, %d MiB", took.Round(100*time.Millisecond), len(reqs), bytes>>20)
	srv.Reset()
}

// minimalProject is a folder with a copy of minimal's variant file and
// the lock, a build configuration for it with its cache and repository
// inside, and the package cache the build package's tests fill.
func minimalProject(t *testing.T) (dir, vdir string, cfg build.Config) {
	t.Helper()
	dir = t.TempDir()
	vdir = filepath.Join(dir, "variants")
	os.MkdirAll(vdir, 0o755)
	for _, f := range []string{"minimal.yaml", variants.LockFile} {
		data, err := os.ReadFile(filepath.Join("..", "variants", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(vdir, f), data, 0o644)
	}
	cfg = build.DefaultConfig(dir, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	cfg.VariantsDir, cfg.CacheDir, cfg.RepoDir = vdir, filepath.Join(dir, "cache"), filepath.Join(dir, "repo")
	cfg.DebsDir = filepath.Join(hostTmp, "debian-atomic-e2e-debs")
	return dir, vdir, cfg
}

// gnupgHome is a temporary GnuPG home with a short path, removed (its agent
// stopped) afterwards.
func gnupgHome(t *testing.T, prefix string) string {
	home, err := os.MkdirTemp(hostTmp, "debian-atomic-"+prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	return home
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

var sizeLineRE = regexp.MustCompile(`^part (\d+) fs (\d+)\n`)

// rootSize checks that the root partition and filesystem fill the 20 GiB
// disk and returns them with the partition table, to compare boots.
func (b *bootTest) rootSize(sh *Shell) string {
	b.t.Helper()
	out := b.run(sh, "echo part $(lsblk -bdno SIZE /dev/disk/by-label/"+RootLabel+") fs $(df -B1 --output=size /sysroot | tail -1); sfdisk -d /dev/vda; systemctl show -p Result --value systemd-repart.service systemd-growfs-root.service")
	m := sizeLineRE.FindStringSubmatch(out + "\n")
	if m == nil {
		b.t.Fatalf("root size: %q", out)
	}
	part, _ := strconv.ParseInt(m[1], 10, 64)
	fs, _ := strconv.ParseInt(m[2], 10, 64)
	if part < 19<<30+512<<20 || fs < 19<<30 {
		j, _, _ := sh.Run("journalctl -b -u systemd-repart.service -u systemd-growfs-root.service -o cat --no-pager", time.Minute)
		b.t.Errorf("the root did not grow to the 20 GiB disk: partition %d MiB, filesystem %d MiB\n%s\n%s", part>>20, fs>>20, out, j)
	}
	return out
}

func copySparse(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", src, err, out)
	}
}

// refuseUnsigned puts an unsigned GRUB (grub-mkimage on the host) in place
// of the signed one on a copy of the image and boots it under Secure Boot:
// shim must refuse it, and no kernel starts.
func refuseUnsigned(t *testing.T, disk, work string) {
	t.Helper()
	efi := filepath.Join(work, "grubx64.efi")
	os.MkdirAll(work, 0o755)
	if out, err := exec.Command("grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/debian", "-o", efi, "normal", "configfile", "part_gpt", "fat").CombinedOutput(); err != nil {
		t.Fatalf("grub-mkimage: %v\n%s", err, out)
	}
	// mtools reaches the ESP inside the disk file at its offset.
	if out, err := exec.Command("mcopy", "-o", "-i", disk+fmt.Sprintf("@@%dM", alignMiB), efi, "::/EFI/BOOT/grubx64.efi").CombinedOutput(); err != nil {
		t.Fatalf("replacing GRUB: %v\n%s", err, out)
	}
	log := consoleLog(t, "minimal-unsigned-grub")
	vm, err := Boot(context.Background(), VMOptions{Disk: disk, Work: work, Echo: log, Restrict: true, SecureBoot: true, Lane: HostLane})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	refusal := regexp.MustCompile(`(?i)security violation|access denied|verification failed`)
	got, err := vm.Expect(refusal, 5*time.Minute)
	if err != nil {
		t.Fatalf("no refusal of the unsigned GRUB under Secure Boot: %v (console in %s)", err, log.Name())
	}
	// Give a GRUB that was wrongly let through time to print its menu or start Linux.
	time.Sleep(20 * time.Second)
	if out := vm.Output(); strings.Contains(out, "Linux version") || strings.Contains(out, "GNU GRUB") {
		t.Fatalf("the unsigned GRUB ran under Secure Boot (console in %s)", log.Name())
	}
	t.Logf("unsigned GRUB under Secure Boot: refused after %s: %q", time.Since(vm.Started).Round(time.Second), refusal.FindString(got))
}
