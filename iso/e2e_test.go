package iso

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/image"
	"github.com/debian-atomic/builder/internal/e2etest/e2ebuild"
	"github.com/debian-atomic/builder/iso/installer"
	"github.com/debian-atomic/builder/ostreeops"
	"github.com/debian-atomic/builder/variants"
)

// BootEnv=0 skips the end-to-end test (builds, an ISO, three TCG boots
// under Secure Boot). CI runs it: mage test runs three packages at a time,
// so it starts beside the build and image packages, and its boots take
// turns with theirs on the VM lane.
const BootEnv = "DEBIAN_ATOMIC_ISO_BOOT"

// DialogEnv=0 skips the dialog's half (one more TCG boot).
const DialogEnv = "DEBIAN_ATOMIC_ISO_DIALOG"

// cacheEnv keeps the test's builds in a folder of one's own between runs
// (for working on the installer; the boots always start from blank disks).
const cacheEnv = "DEBIAN_ATOMIC_ISO_TEST_CACHE"

// reuseEnv (with cacheEnv) boots the ISOs the last run left there.
const reuseEnv = "DEBIAN_ATOMIC_ISO_TEST_REUSE"

const (
	bootTimeout = 15 * time.Minute
	// Writing a 4 GiB image under TCG on a busy machine.
	installTimeout = 20 * time.Minute
)

// TestE2EInstallerISO: the ISO of minimal, then (1) unattended from a
// CD-ROM with debian-atomic.install.disk=/dev/vda onto a blank 20 GiB
// disk, which is then booted alone: logged in, ostree admin status shows
// minimal's commit, the root filled the disk; (2) the dialog driven over
// the serial console, the ISO attached as a disk (a USB stick): choosing
// the stick itself is refused (its filesystem is mounted), then the blank
// disk is chosen, confirmed and written, and after the restart it holds
// the image byte for byte (the same writer as (1), whose disk booted).
func TestE2EInstallerISO(t *testing.T) {
	if testing.Short() || os.Getenv("DEBIAN_ATOMIC_E2E") == "0" || os.Getenv("DEBIAN_ATOMIC_BOOT") == "0" {
		t.Skip("boot tests skipped (-short, DEBIAN_ATOMIC_E2E=0 or DEBIAN_ATOMIC_BOOT=0)")
	}
	if os.Geteuid() != 0 {
		t.Skip("boot tests need root")
	}
	if os.Getenv(BootEnv) == "0" {
		t.Skipf("%s=0: the installer ISO test is skipped", BootEnv)
	}
	if _, err := os.Stat(image.OVMFCodeSecure); err != nil {
		t.Skip("ovmf is not installed")
	}
	total := time.Now()
	dir := os.Getenv(cacheEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	vdir := filepath.Join(dir, "variants")
	os.MkdirAll(vdir, 0o755)
	for _, f := range []string{"minimal.yaml", "installer.yaml", variants.LockFile} {
		data, err := os.ReadFile(filepath.Join("..", "variants", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(vdir, f), data, 0o644)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	cfg := build.DefaultConfig(dir, log)
	cfg.VariantsDir, cfg.CacheDir, cfg.RepoDir = vdir, filepath.Join(dir, "cache"), filepath.Join(dir, "repo")
	cfg.DebsDir = filepath.Join(os.TempDir(), "debian-atomic-e2e-debs")
	ctx := context.Background()
	if err := build.EnsureHost(ctx, cfg, append(HostRequirements, image.VMRequirements...)); err != nil {
		t.Fatal(err)
	}
	var commit, live, raw string
	interactive, auto := Result{Path: filepath.Join(dir, "minimal.iso")}, Result{Path: filepath.Join(dir, "minimal-auto.iso")}
	if os.Getenv(cacheEnv) != "" && os.Getenv(reuseEnv) == "1" && exists(interactive.Path) && exists(auto.Path) {
		// Working on the boots: the ISOs of the last run, their commits from the refs.
		repo := ostreeops.Repo{Path: cfg.RepoDir, Runner: cfg.Runner}
		commit, _ = repo.RevParse(ctx, "debian/13/x86_64/minimal")
		live, _ = repo.RevParse(ctx, "debian/13/x86_64/installer")
		raw = filepath.Join(cfg.CacheDir, "images", "minimal.raw")
		t.Logf("reusing %s and %s", interactive.Path, auto.Path)
	} else {
		commit, live, raw = makeISOs(t, ctx, cfg, dir, &interactive, &auto, total)
	}
	checkESP(t, cfg, auto.Path, live)
	img := struct{ Commit string }{commit}

	t.Run("unattended", func(t *testing.T) {
		disk := blankDisk(t, dir, "disk-auto.raw")
		con := consoleLog(t, "iso-unattended")
		var vm *image.VM
		for try := 1; ; try++ {
			var err error
			vm, err = image.BootDrives(ctx, image.VMOptions{Disk: disk, Work: filepath.Join(dir, "vm-auto"), Echo: con, SecureBoot: true, Lane: image.HostLane},
				image.Drives{CDROM: auto.Path, NoReboot: true})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Kill()
			_, err = vm.Expect(regexp.MustCompile(`debian-atomic-install: installed minimal commit `+img.Commit[:12]+` onto /dev/vda`), installTimeout)
			if err == nil {
				break
			}
			vm.Kill()
			if again(t, try, err, vm, con) {
				continue
			}
			t.Fatalf("%v (console in %s)", err, con.Name())
		}
		if err := vm.Wait(5 * time.Minute); err != nil {
			t.Fatalf("%v (console in %s)", err, con.Name())
		}
		installed := time.Since(vm.Started)
		t.Logf("figures: unattended, ISO boot to installed and powered off: %s", installed.Round(time.Second))
		secureBooted(t, vm, con.Name())
		bootInstalled(t, dir, disk, img.Commit, "auto", installed)
	})

	t.Run("interactive", func(t *testing.T) {
		if os.Getenv(DialogEnv) == "0" {
			t.Skipf("%s=0: the dialog's half is skipped", DialogEnv)
		}
		disk := blankDisk(t, dir, "disk-dialog.raw")
		con := consoleLog(t, "iso-dialog")
		// The ISO as a read-only disk, as a USB stick: the hybrid GPT's ESP boots.
		vm, err := image.BootDrives(ctx, image.VMOptions{Disk: disk, ExtraDisks: []string{interactive.Path}, Work: filepath.Join(dir, "vm-dialog"), Echo: con, SecureBoot: true, Lane: image.HostLane},
			image.Drives{NoReboot: true})
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Kill()
		fail := func(err error) { t.Helper(); t.Fatalf("%v (console in %s)", err, con.Name()) }
		list, err := vm.Expect(regexp.MustCompile(`Install to which disk\? Type its number`), installTimeout)
		if err != nil {
			fail(err)
		}
		number := func(dev string) string {
			m := regexp.MustCompile(`(\d+)\) `+dev+` `).FindAllStringSubmatch(list, -1)
			if m == nil {
				fail(fmt.Errorf("%s is not in the disk list:\n%s", dev, list))
			}
			return m[len(m)-1][1]
		}
		vm.Send(number("/dev/vdb"))
		if _, err := vm.Expect(regexp.MustCompile(`/dev/vdb holds mounted or active storage \(/dev/vdb1? is mounted on `), time.Minute); err != nil {
			fail(err)
		}
		vm.Send(number("/dev/vda"))
		if _, err := vm.Expect(regexp.MustCompile(`Everything on /dev/vda \(20\.0 GiB, virtio disk\) will be erased`), time.Minute); err != nil {
			fail(err)
		}
		vm.Send("yes")
		if _, err := vm.Expect(regexp.MustCompile(`press Enter to restart`), installTimeout); err != nil {
			fail(err)
		}
		vm.Send("")
		if err := vm.Wait(5 * time.Minute); err != nil {
			fail(err)
		}
		t.Logf("figures: dialog, ISO boot to installed and rebooted: %s", time.Since(vm.Started).Round(time.Second))
		secureBooted(t, vm, con.Name())
		// The unattended half booted a disk this writer made; here the
		// dialog's choice is what is proven: the chosen disk holds the image.
		if err := sameStart(raw, disk); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("figures: whole test %s", time.Since(total).Round(time.Second))
}

// again says whether a failed first boot is booted once more: when the
// guest kernel reported the emulator's or the host's trouble, not the image's.
func again(t *testing.T, try int, err error, vm *image.VM, con *os.File) bool {
	t.Helper()
	trouble := image.EmulatorTrouble(vm.Output())
	if trouble == "" || try > 1 {
		return false
	}
	t.Logf("the boot failed (%v) and its kernel reported %q: booting again, once (console in %s)", err, trouble, con.Name())
	return true
}

// secureBooted checks the guest kernel's own report: shim, the signed GRUB
// and the signed kernel started under the enforcing firmware.
func secureBooted(t *testing.T, vm *image.VM, console string) {
	t.Helper()
	if !strings.Contains(vm.Output(), "secureboot: Secure boot enabled") {
		t.Errorf("the kernel did not report Secure Boot enabled (console in %s)", console)
	}
}

func blankDisk(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	os.Remove(p)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(20 << 30); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// bootInstalled boots the installed disk alone, with fresh firmware
// variables (no boot entry: the removable-media path), logs in and checks
// the deployment and the root's size.
func bootInstalled(t *testing.T, dir, disk, commit, name string, installed time.Duration) {
	t.Helper()
	con := consoleLog(t, "iso-installed-"+name)
	os.RemoveAll(filepath.Join(dir, "vm-installed-"+name))
	boot := func() (*image.VM, error) {
		vm, err := image.Boot(context.Background(), image.VMOptions{Disk: disk, Work: filepath.Join(dir, "vm-installed-"+name), Echo: con, SecureBoot: true, Lane: image.HostLane})
		if err == nil {
			t.Cleanup(vm.Kill)
		}
		return vm, err
	}
	vm, sh, err := image.LoginRetrying(context.Background(), boot, "tester", "tester", bootTimeout, func(err error, trouble string) {
		t.Logf("the boot failed (%v) and its kernel reported %q: booting again, once (console in %s)", err, trouble, con.Name())
	})
	if err != nil {
		t.Fatalf("%v (console in %s)", err, con.Name())
	}
	secureBooted(t, vm, con.Name())
	t.Logf("figures: installed disk boot to login %s; ISO boot to a logged-in installed machine %s (without waiting for the VM lane)", time.Since(vm.Started).Round(time.Second), (installed + time.Since(vm.Started)).Round(time.Second))
	if err := sh.Sudo("tester"); err != nil {
		t.Fatal(err)
	}
	out, code, err := sh.Run("ostree admin status", 5*time.Minute)
	if err != nil || code != 0 || !regexp.MustCompile(`(?m)^\* \S+ `+commit+`\.0`).MatchString(out) {
		t.Fatalf("ostree admin status (exit %d, %v) does not show %s booted:\n%s", code, err, commit, out)
	}
	out, code, err = sh.Run("df -B1 --output=size /sysroot | tail -n 1", time.Minute)
	size, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || code != 0 || size < 19<<30 {
		t.Fatalf("the root did not grow to the 20 GiB disk: %q bytes (exit %d, %v)", out, code, err)
	}
	t.Logf("root filesystem %.1f GiB", float64(size)/(1<<30))
	vm.Send("systemctl poweroff")
	vm.Wait(5 * time.Minute)
}

// checkESP reads the ISO's EFI partition (the El Torito image) and checks it
// carries the live commit's signed shim and signed CD GRUB, byte for byte,
// each with an Authenticode signature.
func checkESP(t *testing.T, cfg build.Config, isoPath, live string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", isoPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Partitiontable struct {
			Partitions []struct {
				Start int64
				Type  string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	var offset int64 = -1
	for _, p := range table.Partitiontable.Partitions {
		if p.Type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
			offset = p.Start * 512
		}
	}
	if offset < 0 {
		t.Fatalf("the ISO's partition table has no EFI system partition:\n%s", out)
	}
	repo := ostreeops.Repo{Path: cfg.RepoDir, Runner: run.Exec{}}
	for _, f := range ESPFiles[:2] {
		got, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", isoPath, offset), "::/"+f.Dst).Output()
		if err != nil {
			t.Fatalf("reading %s from the ISO's ESP: %v", f.Dst, err)
		}
		want, err := repo.Cat(context.Background(), live, "/"+f.Src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the ISO's %s is not the live commit's %s", f.Dst, f.Src)
		}
		pf, err := pe.NewFile(bytes.NewReader(got))
		if err != nil {
			t.Fatalf("%s: %v", f.Dst, err)
		}
		oh, ok := pf.OptionalHeader.(*pe.OptionalHeader64)
		if !ok || oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].Size == 0 {
			t.Errorf("%s carries no Authenticode signature", f.Dst)
		}
	}
}

func consoleLog(t *testing.T, name string) *os.File {
	f, err := os.Create(filepath.Join(os.TempDir(), "debian-atomic-"+name+".console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// makeISOs builds minimal's image and the installer variant, and writes the
// dialog's ISO and the unattended one from one staging folder.
func makeISOs(t *testing.T, ctx context.Context, cfg build.Config, dir string, interactive, auto *Result, total time.Time) (commit, live, raw string) {
	t.Helper()
	log := cfg.Log
	// Built first, for a lock the archive moved past (see e2ebuild.Variants).
	if _, err := e2ebuild.Variants(t, ctx, cfg, "minimal", LiveVariant); err != nil {
		t.Fatal(err)
	}
	img, err := image.ForVariant(ctx, cfg, "testdata/images", "minimal")
	if err != nil {
		t.Fatal(err)
	}
	reps, err := build.Variants(ctx, cfg, []string{LiveVariant})
	if err != nil {
		t.Fatal(err)
	}
	live = reps[0].Commit
	built := time.Since(total)
	st, _ := os.Stat(img.Raw)
	s, err := Prepare(ctx, Options{Runner: cfg.Runner, Log: log, Repo: cfg.RepoDir, Variant: "minimal", LiveCommit: live, Image: img.Raw,
		Info: installer.Image{Variant: "minimal", Commit: img.Commit, Bytes: st.Size()}, Work: filepath.Join(dir, "iso-work")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	*interactive, err = s.Write(ctx, interactive.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	*auto, err = s.Write(ctx, auto.Path, []string{installer.ArgDisk + "=/dev/vda"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: builds and image %s; ISO %.1f MiB (dracut %s, squashfs %s, xorriso %s)", built.Round(time.Second),
		float64(interactive.Bytes)/(1<<20), s.Dracut.Round(time.Second), s.Squashfs.Round(time.Second), interactive.Duration.Round(time.Second))
	return img.Commit, live, img.Raw
}

// sameStart says whether disk begins with image's bytes: what the
// installer wrote before the first boot grows anything.
func sameStart(image, disk string) error {
	a, err := os.Open(image)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := os.Open(disk)
	if err != nil {
		return err
	}
	defer b.Close()
	x, y := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); ; off += int64(len(x)) {
		n, err := io.ReadFull(a, x)
		if n == 0 {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("reading the image %s: %w", image, err)
		}
		if m, _ := io.ReadFull(b, y[:n]); m != n || !bytes.Equal(x[:n], y[:n]) {
			return fmt.Errorf("%s differs from the image %s in the 4 MiB at %d: the dialog did not write the image onto the disk it chose", disk, image, off)
		}
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image %s: %w", image, err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
