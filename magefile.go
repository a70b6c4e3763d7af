//go:build mage

// Targets of the Debian Atomic builder. The logic lives in ordinary packages
// (build, variants, cache, ostreeops) that tests import; these stay thin.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/debian-atomic/builder/bench"
	"github.com/debian-atomic/builder/build"
	"github.com/debian-atomic/builder/desktopcheck"
	"github.com/debian-atomic/builder/image"
	"github.com/debian-atomic/builder/iso"
	"github.com/debian-atomic/builder/publish"
	"github.com/debian-atomic/builder/remotecache"
	"github.com/debian-atomic/builder/testrun"
)

// Build builds variants into the output repository.
type Build mg.Namespace

// Minimal builds the default variant (variants/minimal.yaml): Debian trixie as a bootable OSTree commit.
func (Build) Minimal(ctx context.Context) error {
	return buildVariants(ctx, "minimal")
}

// Gnome builds the GNOME desktop variant (variants/gnome.yaml), a Silverblue counterpart, on top of minimal.
func (Build) Gnome(ctx context.Context) error {
	return buildVariants(ctx, "gnome")
}

// Plasma builds the KDE Plasma desktop variant (variants/plasma.yaml), a Kinoite counterpart, on top of minimal.
func (Build) Plasma(ctx context.Context) error {
	return buildVariants(ctx, "plasma")
}

// Variant builds variants/NAME.yaml.
func (Build) Variant(ctx context.Context, name string) error {
	return buildVariants(ctx, name)
}

// All builds every variant in variants/, parents first, sharing their cached layers.
func All(ctx context.Context) error {
	ctx, stop := signals(ctx)
	defer stop()
	_, err := build.All(ctx, config())
	return err
}

// Update locks every variant afresh from the archive (variants/variants.lock) and prints what changed, marking security fixes "(security)".
func Update(ctx context.Context) error {
	return lockAndPrint(ctx, build.Update)
}

// Lock locks only what changed since the lock (a package added to a variant, a new variant), as a build would first, without building; prints what changed.
func Lock(ctx context.Context) error {
	return lockAndPrint(ctx, build.LockVariants)
}

// lockAndPrint runs a locking function and prints, per variant, what changed.
func lockAndPrint(ctx context.Context, lock func(context.Context, build.Config) ([]build.LockChange, error)) error {
	ctx, stop := signals(ctx)
	defer stop()
	changes, err := lock(ctx, config())
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Println("no locked package changed")
	}
	for _, c := range changes {
		fmt.Printf("%s: %d changed, %d from the security archive\n", c.Variant, len(c.Changes), c.Security)
		for _, l := range c.Changes {
			fmt.Printf("  %s\n", l)
		}
	}
	return nil
}

// Diff prints the packages added, removed and changed between the last two commits of variant NAME.
func Diff(ctx context.Context, name string) error {
	from, to, changes, err := build.Diff(ctx, config(), name)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s -> %s\n", name, from[:12], to[:12])
	if len(changes) == 0 {
		fmt.Println("  no package changed")
	}
	for _, l := range changes {
		fmt.Printf("  %s\n", l)
	}
	return nil
}

// Image writes UEFI disk images of variants (raw and qcow2) under .cache/images.
type Image mg.Namespace

// Minimal builds minimal and writes .cache/images/minimal.{raw,qcow2}, with settings from images/minimal.yaml.
func (Image) Minimal(ctx context.Context) error {
	return writeImage(ctx, "minimal")
}

// Variant builds variant NAME and writes its disk image, with settings from images/NAME.yaml.
func (Image) Variant(ctx context.Context, name string) error {
	return writeImage(ctx, name)
}

// Vm boots disk images in QEMU on the serial console for a person to try.
type Vm mg.Namespace

// Minimal boots the minimal image (building it first if needed) in QEMU: KVM where it works, else TCG. Ctrl-A X quits.
func (Vm) Minimal(ctx context.Context) error {
	return bootImage(ctx, "minimal")
}

// Variant boots variant NAME's image in QEMU: a window where the host has a display, VNC on 127.0.0.1 with DEBIAN_ATOMIC_VNC=N, and the serial console.
func (Vm) Variant(ctx context.Context, name string) error {
	return bootImage(ctx, name)
}

func writeImage(ctx context.Context, name string) error {
	ctx, stop := signals(ctx)
	defer stop()
	_, err := image.ForVariant(ctx, config(), imagesDir(), name)
	return err
}

func bootImage(ctx context.Context, name string) error {
	cfg := config()
	res, err := image.ForVariant(ctx, cfg, imagesDir(), name)
	if err != nil {
		return err
	}
	if err := build.EnsureHost(ctx, cfg, image.VMRequirements); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "booting %s (commit %s); Ctrl-A X quits QEMU\n", res.Qcow2, res.Commit[:12])
	o := image.VMOptions{Disk: res.Qcow2, Work: cfg.CacheDir + "/vm-" + name, Echo: os.Stdout, Stdin: os.Stdin}
	if err := vmScreen(&o); err != nil {
		return err
	}
	vm, err := image.Boot(ctx, o)
	if err != nil {
		return err
	}
	return vm.Wait(24 * time.Hour)
}

func imagesDir() string {
	if d := os.Getenv(image.ImagesEnv); d != "" {
		return d
	}
	return "images"
}

// Status shows, for each variant, its ref, last commit and version, and what would rebuild and why.
func Status(ctx context.Context) error {
	cfg := config()
	st, err := build.Status(ctx, cfg)
	if err != nil {
		return err
	}
	if !build.HumanOutput(os.Stdout) {
		return json.NewEncoder(os.Stdout).Encode(st)
	}
	for _, s := range st {
		fmt.Printf("%s\n  ref:     %s\n", s.Variant, s.Ref)
		if s.Commit != "" {
			fmt.Printf("  commit:  %s (version %s)\n", s.Commit, s.Version)
			if s.RootTree != "" {
				fmt.Printf("  tree:    %s (root tree checksum: a rebuild of the same lock gives the same)\n", s.RootTree)
			}
		} else if s.Err == "" {
			fmt.Printf("  commit:  none yet\n")
		}
		switch {
		case s.Err != "":
			fmt.Printf("  error:   %s\n", s.Err)
		case s.UpToDate:
			fmt.Printf("  status:  up to date\n")
		default:
			fmt.Printf("  status:  would rebuild from %s: %s\n", s.Rebuild, strings.Join(s.Why, "; "))
		}
	}
	return nil
}

// Clean removes what the builder made: cache, work trees, output repository, leftover mounts.
func Clean(ctx context.Context) error {
	ctx, stop := signals(ctx)
	defer stop()
	return build.Clean(ctx, config())
}

// Test installs the host tools the tests use (as root), runs the unit and end-to-end tests (end-to-end ones need root and the network), and ends with one line per skipped test and why.
func Test(ctx context.Context) error {
	if os.Geteuid() == 0 {
		if err := build.EnsureHost(ctx, config(), testrun.Requirements); err != nil {
			return err
		}
	}
	// Four packages at a time, not go test's one per core, the long ones
	// first (testrun.LongFirst: image, iso, desktopcheck, build): they all
	// start at once, their builds overlapping and their TCG boots taking
	// turns on the VM lane (image.HostLane), the lane busy from the start.
	list, err := exec.CommandContext(ctx, "go", "list", "./...").Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	module, err := exec.CommandContext(ctx, "go", "list", "-m").Output()
	if err != nil {
		return fmt.Errorf("go list -m: %w", err)
	}
	args := append([]string{"test", "-json", "-count=1", "-p=4", "-timeout=85m"},
		testrun.Order(strings.TrimSpace(string(module)), strings.Fields(string(list)))...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	skips, _, ferr := testrun.Follow(out, os.Stdout, os.Getenv("CI") != "" || mg.Verbose())
	err = cmd.Wait()
	testrun.WriteSkips(os.Stdout, skips)
	if err == nil {
		err = ferr
	}
	return err
}

func buildVariants(ctx context.Context, names ...string) error {
	ctx, stop := signals(ctx)
	defer stop()
	_, err := build.Variants(ctx, config(), names)
	return err
}

// signals cancels the build on SIGINT and SIGTERM, so steps stop and clean up.
func signals(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func config() build.Config {
	root, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return withRemoteCache(build.DefaultConfig(root, build.NewLogger(os.Stderr)))
}

// BenchLayer measures a layered variant in a fresh cache: its parents, then NAME cold on their cached layers, then NAME after adding package EXTRA.
func BenchLayer(ctx context.Context, name, extra string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	res, err := bench.BenchLayer(ctx, cfg, name, extra, cfg.CacheDir+"/bench-layer")
	if err != nil {
		return err
	}
	fmt.Print(bench.LayerBenchTable(res))
	return nil
}

// Bench writes a report of the build's figures, each measured several times in one run (median, min, max, ratio to its baseline) into .cache/bench: bench.md, bench.csv, steps.svg. DEBIAN_ATOMIC_BENCH_RUNS sets the runs (3), DEBIAN_ATOMIC_BENCH_PEERS=1 adds peers, DEBIAN_ATOMIC_BENCH_ONLY=core,child (or scaling, bootstrappers, all) picks groups of scenarios.
func Bench(ctx context.Context) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	opts := bench.FullOptions(cfg.CacheDir + "/bench")
	if n, err := strconv.Atoi(os.Getenv("DEBIAN_ATOMIC_BENCH_RUNS")); err == nil && n > 0 {
		opts.Runs = n
	}
	opts.Peers = os.Getenv("DEBIAN_ATOMIC_BENCH_PEERS") == "1"
	opts.Only = strings.FieldsFunc(os.Getenv("DEBIAN_ATOMIC_BENCH_ONLY"), func(r rune) bool { return r == ',' || r == ' ' })
	if err := bench.CheckOnly(opts.Only); err != nil {
		return fmt.Errorf("DEBIAN_ATOMIC_BENCH_ONLY: %w", err)
	}
	res, err := bench.Report(ctx, cfg, opts)
	if err != nil {
		return err
	}
	fmt.Print(bench.Markdown(res))
	fmt.Printf("written to %s: bench.md, bench.csv, steps.svg\n", opts.Out)
	return nil
}

// Publish brings built variants into the signed, static publish repository (.cache/publish, or DEBIAN_ATOMIC_PUBLISH).
type Publish mg.Namespace

// Aliases: `mage publish` publishes every built variant.
var Aliases = map[string]interface{}{"publish": Publish.All}

// All publishes every built variant: signed commits, a static delta from the previously published one, pruning, a signed summary.
func (Publish) All(ctx context.Context) error {
	return publishVariants(ctx)
}

// Variant publishes variant NAME's built commit.
func (Publish) Variant(ctx context.Context, name string) error {
	return publishVariants(ctx, name)
}

func publishVariants(ctx context.Context, names ...string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	s, err := publish.LoadSettings(cfg.VariantsDir)
	if err != nil {
		return err
	}
	rep, err := publish.Publish(ctx, cfg, s, names)
	if err != nil {
		return err
	}
	fmt.Print(rep.Text())
	return nil
}

// Keygen makes the GPG key publishing signs with (in .cache/gnupg, or the settings' gnupg-home) and exports its public key beside the published repository.
func Keygen(ctx context.Context) error {
	cfg := config()
	s, err := publish.LoadSettings(cfg.VariantsDir)
	if err != nil {
		return err
	}
	k, err := publish.Keygen(ctx, cfg, s)
	if err != nil {
		return err
	}
	state := "made"
	if !k.Created {
		state = "already there, kept"
	}
	fmt.Printf("signing key %s (%s) in %s\npublic key for clients: %s\n", k.ID, state, k.Home, k.PublicKey)
	return nil
}

// Serve serves the published repository over HTTP on 127.0.0.1:8180 (DEBIAN_ATOMIC_SERVE=ADDR:PORT moves it) until Ctrl-C.
func Serve(ctx context.Context) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	s, err := publish.LoadSettings(cfg.VariantsDir)
	if err != nil {
		return err
	}
	addr := os.Getenv(publish.ServeEnv)
	if addr == "" {
		addr = publish.DefaultServeAddr
	}
	return publish.Serve(ctx, s.RepoDir(cfg), addr, cfg.Log)
}

// BenchPublish measures publishing in a fresh cache: build NAME, publish, add package EXTRA, rebuild, publish (a static delta), then a full pull against a delta pull over loopback.
func BenchPublish(ctx context.Context, name, extra string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	res, err := publish.Bench(ctx, cfg, name, extra, cfg.CacheDir+"/bench-publish")
	if err != nil {
		return err
	}
	fmt.Print(publish.BenchTable(res))
	return nil
}

// withRemoteCache wires the remote step cache DEBIAN_ATOMIC_REMOTE_CACHE
// names; a bad setting stops here, before anything is done.
func withRemoteCache(cfg build.Config) build.Config {
	r, err := remotecache.FromEnv(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if r != nil {
		cfg.Remote = r
	}
	return cfg
}

// Cache shares step results between machines.
type Cache mg.Namespace

// Push writes the step results the last builds made into the archive-mode repository DIR, signed with the publishing key, for any static host to serve as a remote cache (DEBIAN_ATOMIC_REMOTE_CACHE).
func (Cache) Push(ctx context.Context, dir string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	s, err := publish.LoadSettings(cfg.VariantsDir)
	if err != nil {
		return err
	}
	signer, err := s.Signer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cache:push signs with the publishing key: %w", err)
	}
	defer signer.Close(ctx)
	rep, err := remotecache.Push(ctx, cfg, signer, dir)
	if err != nil {
		return err
	}
	fmt.Print(rep.Text())
	return nil
}

// Check proves desktop variants work by booting them (desktopcheck).
type Check mg.Namespace

// Desktop builds desktop variant NAME's image with an automatic login, boots it in QEMU with a screen, and checks its session and its greeter (screenshots in .cache/screenshots; the README gallery's docs/desktops/NAME.png).
func (Check) Desktop(ctx context.Context, name string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	res, err := desktopcheck.Run(ctx, desktopcheck.Options{Config: cfg, ImagesDir: imagesDir(), Name: name, Shots: cfg.CacheDir + "/screenshots"})
	desktopcheck.WriteTable(os.Stdout, []desktopcheck.Result{res})
	if err != nil {
		return err
	}
	return desktopcheck.Thumbnail(res.SessionShot, "docs/desktops/"+name+".png", 480)
}

// Desktops checks every desktop variant in turn, prints their table and refreshes the README gallery (docs/desktops/NAME.png).
func (Check) Desktops(ctx context.Context) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	_, err := desktopcheck.RunAll(ctx, desktopcheck.Options{Config: cfg, ImagesDir: imagesDir(), Shots: cfg.CacheDir + "/screenshots"}, "docs/desktops", os.Stdout)
	return err
}

// vmScreen gives vm: targets a screen: a window where the host has a
// display, VNC on 127.0.0.1 when DEBIAN_ATOMIC_VNC=N (display N, port
// 5900+N), else the serial console alone; desktops get 4 GiB and virtio-vga.
func vmScreen(o *image.VMOptions) error {
	o.VGA = "virtio"
	switch n := os.Getenv("DEBIAN_ATOMIC_VNC"); {
	case n != "":
		if _, err := strconv.Atoi(n); err != nil || len(n) > 2 {
			return fmt.Errorf("DEBIAN_ATOMIC_VNC=%q: want a VNC display number, e.g. 0 (port 5900)", n)
		}
		o.Display = "vnc=127.0.0.1:" + n
		fmt.Fprintf(os.Stderr, "screen: VNC on 127.0.0.1:%d (port %d)\n", mustAtoi(n), 5900+mustAtoi(n))
	case os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "":
		o.Display = "gtk"
		// Debian packages QEMU's GTK window apart.
		gtk := build.Requirement{Name: "/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so", Package: "qemu-system-gui"}
		if err := build.EnsureHost(context.Background(), config(), []build.Requirement{gtk}); err != nil {
			return err
		}
	default:
		fmt.Fprintln(os.Stderr, "screen: none (no DISPLAY or WAYLAND_DISPLAY; DEBIAN_ATOMIC_VNC=0 serves one on 127.0.0.1:5900)")
		return nil
	}
	o.MemoryMiB = 4096
	return nil
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// BenchPipeline simulates the CI pipeline on this machine, each job a builder process on one core with its own cache: base job (build BASE, cache:push), then children BASE-EXTRA1 and BASE-EXTRA2 at once from the remote cache, against one runner building them in turn (e.g. `benchPipeline tiny figlet cowsay`; minutes).
func BenchPipeline(ctx context.Context, base, extra1, extra2 string) error {
	ctx, stop := signals(ctx)
	defer stop()
	cfg := config()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := remotecache.BenchPipeline(ctx, cfg, exe, base, []string{extra1, extra2}, cfg.CacheDir+"/bench-pipeline")
	if err != nil {
		return err
	}
	fmt.Print(res.Text())
	return nil
}

// Iso writes installer ISOs of variants under .cache/iso: hybrid (USB and optical), UEFI with Secure Boot.
type Iso mg.Namespace

// Minimal writes .cache/iso/minimal.iso, the installer of minimal's disk image (images/minimal.yaml); DEBIAN_ATOMIC_ISO_KARGS adds kernel arguments, e.g. debian-atomic.install.disk=/dev/vda for an unattended install.
func (Iso) Minimal(ctx context.Context) error {
	return writeISO(ctx, "minimal")
}

// Variant writes .cache/iso/NAME.iso, the installer of variant NAME's disk image (images/NAME.yaml), its live system built from variants/installer.yaml.
func (Iso) Variant(ctx context.Context, name string) error {
	return writeISO(ctx, name)
}

func writeISO(ctx context.Context, name string) error {
	ctx, stop := signals(ctx)
	defer stop()
	m, err := iso.ForVariant(ctx, config(), imagesDir(), name, strings.Fields(os.Getenv("DEBIAN_ATOMIC_ISO_KARGS")))
	if err != nil {
		return err
	}
	fmt.Printf("%s: %.1f MiB (disk image %s, commit %.12s)\n", m.Path, float64(m.Bytes)/(1<<20), m.Image.Raw, m.Image.Commit)
	return nil
}
