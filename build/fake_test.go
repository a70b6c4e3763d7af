package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/debcache"
	"github.com/debian-atomic/builder/mountinfo"
)

// fakeRunner stands in for the Debian tools and mount; ostree is real, since
// the store is an OSTree repository and faking it would test nothing.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []string
	cmds    []run.Cmd // every command, with its environment
	mounted map[string]bool
	real    run.Runner
	// blockOn makes a command matching it wait until the context ends.
	blockOn string
	started chan struct{}
	// hostApt lets apt-get run on the host (installing host tools) and do nothing.
	hostApt bool
	// emptyTrace makes strace leave an empty trace (dracut still runs).
	emptyTrace bool
	// pinned is each taskset-pinned call, as "CPUS CALL".
	pinned []string
	// binds are the bind mounts made (target -> source), which the fake
	// apt follows to find a tree's package folders on the host.
	binds map[string]string
	// downloads counts the .debs the fake apt fetched; installing and
	// mostInstalling count installs running at once (each takes
	// installDelay).
	downloads, installing, mostInstalling int
	installDelay                          time.Duration
	// dracutDelay slows every traced dracut; dracutEnded is, per tree, how
	// many calls had been made when its traced dracut ended.
	dracutDelay time.Duration
	dracutEnded map[string]int
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{mounted: map[string]bool{}, binds: map[string]string{}, dracutEnded: map[string]int{}, real: run.Exec{}, started: make(chan struct{}, 10)}
}

func (f *fakeRunner) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// first is the index of the first call match accepts, or -1.
func (f *fakeRunner) first(match func(call string) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.calls, match)
}

func (f *fakeRunner) stillMounted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for m := range f.mounted {
		out = append(out, m)
	}
	return out
}

func (f *fakeRunner) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	// taskset only pins what follows it: the call is what follows.
	if len(c.Args) > 3 && c.Args[0] == "taskset" && c.Args[1] == "--cpu-list" {
		cpus := c.Args[2]
		c.Args = c.Args[3:]
		f.mu.Lock()
		f.pinned = append(f.pinned, cpus+" "+c.String())
		f.mu.Unlock()
	}
	line := c.String()
	f.mu.Lock()
	f.calls = append(f.calls, line)
	f.cmds = append(f.cmds, c)
	f.mu.Unlock()
	if f.blockOn != "" && strings.Contains(line, f.blockOn) {
		f.started <- struct{}{}
		<-ctx.Done()
		return nil, &run.Error{Cmd: line, Err: ctx.Err()}
	}
	args := c.Args
	switch args[0] {
	case "ostree", "cp":
		return f.real.Run(ctx, c)
	case "mmdebstrap", "debootstrap":
		root := args[len(args)-2]
		if err := fakeBootstrap(root); err != nil {
			return nil, err
		}
		// --include (the plain script's): those packages installed too.
		for _, a := range args {
			if list, ok := strings.CutPrefix(a, "--include="); ok {
				return nil, fakeInstall(root, strings.Split(list, ","))
			}
		}
		return nil, nil
	case "mount":
		// Overlays are real when the tests run as root: the builder's
		// linked-tree path then runs under the fake tools too.
		if slices.Contains(args, "overlay") && os.Geteuid() == 0 {
			if _, err := f.real.Run(ctx, c); err != nil {
				return nil, err
			}
		}
		f.mu.Lock()
		f.mounted[args[len(args)-1]] = true
		if args[1] == "--bind" {
			f.binds[args[len(args)-1]] = args[2]
		}
		f.mu.Unlock()
	case "umount":
		target := args[len(args)-1]
		if slices.Contains(mountinfo.Under(target), target) {
			if _, err := f.real.Run(ctx, c); err != nil {
				return nil, err
			}
		}
		f.mu.Lock()
		delete(f.mounted, target)
		delete(f.binds, target)
		f.mu.Unlock()
	case "chroot":
		return nil, f.inChroot(args[1], args[2:])
	case "strace":
		if f.emptyTrace {
			i := slices.Index(args, "chroot")
			if err := f.inChroot(args[i+1], args[i+2:]); err != nil {
				return nil, err
			}
			return nil, os.WriteFile(args[slices.Index(args, "-o")+1], nil, 0o644)
		}
		time.Sleep(f.dracutDelay)
		err := fakeStrace(args)
		f.mu.Lock()
		f.dracutEnded[args[slices.Index(args, "chroot")+1]] = len(f.calls)
		f.mu.Unlock()
		return nil, err
	case "apt-get":
		if f.hostApt {
			return nil, nil
		}
		return fakeHostApt(c)
	default:
		return nil, fmt.Errorf("fake runner: unexpected command %s", line)
	}
	return nil, nil
}

const kver = "6.12.0-1-amd64"

// fakeBootstrap makes a small tree shaped like a debootstrapped one.
func fakeBootstrap(root string) error {
	for _, d := range []string{"etc/apt", "usr/bin", "usr/sbin", "usr/lib", "var/lib/dpkg", "var/cache/apt/archives", "var/log", "root", "home", "boot", "dev", "tmp", "usr/local/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/hostname":        "builder\n",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\n",
		"etc/passwd-":         "old\n",
		"usr/lib/os-release":  "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\n",
		"var/lib/dpkg/status": stanza("base-files", "13.8"),
		"var/log/dpkg.log":    "log\n",
		"root/.bashrc":        "# bashrc\n",
		"var/cache/apt/archives/base-files_13.8_amd64.deb": "deb",
		"usr/bin/true": "#!/bin/sh\n",
	}
	for p, body := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(root, "root"), 0o700)
	return os.Symlink("usr/bin", filepath.Join(root, "bin"))
}

func stanza(name, version string) string {
	return fmt.Sprintf("Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n", name, version)
}

// hostPath is where p of the tree root is on the host, through the binds.
func (f *fakeRunner) hostPath(root, p string) string {
	full := filepath.Join(root, p)
	f.mu.Lock()
	defer f.mu.Unlock()
	best := ""
	for t := range f.binds {
		if (full == t || strings.HasPrefix(full, t+"/")) && len(t) > len(best) {
			best = t
		}
	}
	if best == "" {
		return full
	}
	return filepath.Join(f.binds[best], strings.TrimPrefix(full, best))
}

// inChroot plays apt-get's downloads into the package folder the tree
// sees, then apt-get and dracut in the tree.
func (f *fakeRunner) inChroot(root string, args []string) error {
	if len(args) < 2 || args[0] != "apt-get" || args[1] != "install" {
		return fakeInChroot(root, args)
	}
	archives, only := "/var/cache/apt/archives", false
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "Dir::Cache::Archives="); ok && args[i-1] == "-o" {
			archives = v
		}
		only = only || a == "--download-only"
	}
	dir := f.hostPath(root, archives)
	for _, a := range args[slices.Index(args, "--")+1:] {
		name, version, _ := strings.Cut(a, "=")
		name, arch, ok := strings.Cut(name, ":")
		if !ok {
			arch = "all"
		}
		deb := filepath.Join(dir, debcache.FileName(name, version, arch))
		if _, err := os.Stat(deb); err == nil || strings.HasPrefix(name, "no-such-") {
			continue
		}
		if err := os.WriteFile(deb, []byte(name), 0o644); err != nil {
			return fmt.Errorf("fake apt-get: downloading %s: %w", a, err)
		}
		f.mu.Lock()
		f.downloads++
		f.mu.Unlock()
	}
	if only {
		return nil
	}
	f.mu.Lock()
	f.installing++
	f.mostInstalling = max(f.mostInstalling, f.installing)
	f.mu.Unlock()
	time.Sleep(f.installDelay)
	defer func() {
		f.mu.Lock()
		f.installing--
		f.mu.Unlock()
	}()
	return fakeInChroot(root, args)
}

// fakeInChroot plays apt-get and dracut.
func fakeInChroot(root string, args []string) error {
	switch {
	case args[0] == "apt-get" && args[1] == "update":
		return nil
	case args[0] == "apt-get" && args[1] == "install":
		i := 0
		for i < len(args) && args[i] != "--" {
			i++
		}
		var pkgs []string
		for _, a := range args[i+1:] {
			pkgs = append(pkgs, strings.SplitN(strings.SplitN(a, "=", 2)[0], ":", 2)[0])
		}
		for _, p := range pkgs {
			if strings.HasPrefix(p, "no-such-") {
				return &run.Error{Cmd: "apt-get install", Err: errors.New("exit status 100"), Stderr: "E: Unable to locate package " + p}
			}
			if p == "fills-disk" {
				return &run.Error{Cmd: "apt-get install", Err: errors.New("exit status 100"),
					Stderr: "dpkg: error processing archive /var/cache/apt/archives/fills-disk_1.0-1_amd64.deb (--unpack):\n cannot copy extracted data for './usr/lib/big' to '/usr/lib/big.dpkg-new': failed to write (No space left on device)"}
			}
		}
		return fakeInstall(root, pkgs)
	case args[0] == "dracut":
		// What dracut's plymouth module does: include it when the tree has it.
		body := "initramfs"
		if exists(filepath.Join(root, "usr/bin/plymouth")) {
			body += " with plymouth"
		}
		// And what inst_libdir_file "libkmod.so*" does.
		if libs, _ := filepath.Glob(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libkmod.so*")); len(libs) > 0 {
			body += " with libkmod"
		}
		return os.WriteFile(filepath.Join(root, args[len(args)-1]), []byte(body), 0o644)
	}
	return fmt.Errorf("fake chroot: unexpected %v", args)
}

// fakeInstall plays dpkg installing pkgs into root.
func fakeInstall(root string, pkgs []string) error {
	f, err := os.OpenFile(filepath.Join(root, "var/lib/dpkg/status"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range pkgs {
		fmt.Fprint(f, stanza(p, "1.0-1"))
		os.MkdirAll(filepath.Join(root, "usr/share/doc", p), 0o755)
		os.WriteFile(filepath.Join(root, "usr/share/doc", p, "copyright"), []byte(p), 0o644)
		if p == "linux-image-amd64" {
			os.MkdirAll(filepath.Join(root, "usr/lib/modules", kver, "kernel"), 0o755)
			os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+kver), []byte("kernel"), 0o644)
			os.WriteFile(filepath.Join(root, "boot", "config-"+kver), []byte("config"), 0o644)
		}
		if p == "ostree-boot" {
			os.MkdirAll(filepath.Join(root, "usr/lib/dracut/modules.d/98ostree"), 0o755)
		}
		if err := fakePackageFiles(root, p); err != nil {
			return err
		}
	}
	return nil
}

// universe is what the fake archive has, at one version each.
var universe = []string{"hello", "zsh", "tree", "linux-image-amd64", "ostree-boot", "dracut", "fills-disk", "openssh-server", "ssl-cert", "leaky-key", "plymouth", "libevent", "kmod"}

// fakePackageFiles plays what some packages leave in a tree: openssh-server's
// postinst makes host keys, ssl-cert's a snakeoil pair, and leaky-key ships a
// private key as one of its files (listed in its dpkg file list).
func fakePackageFiles(root, pkg string) error {
	files := map[string]string{}
	switch pkg {
	case "openssh-server":
		files["usr/lib/systemd/system/sshd-keygen.service"] = "[Unit]\nConditionFirstBoot=yes\n"
		for _, k := range []string{"rsa", "ecdsa", "ed25519"} {
			files["etc/ssh/ssh_host_"+k+"_key"] = testOpenSSHKey
			files["etc/ssh/ssh_host_"+k+"_key.pub"] = "ssh-" + k + " AAAA root@builder\n"
		}
	case "ssl-cert":
		files["usr/sbin/make-ssl-cert"] = "#!/bin/sh\n"
		files["etc/ssl/private/ssl-cert-snakeoil.key"] = testPEMKey
		files["etc/ssl/certs/ssl-cert-snakeoil.pem"] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	case "plymouth":
		files["usr/bin/plymouth"] = "#!/bin/sh\n"
	case "libevent": // a library dracut does not glob for (tmux's)
		files["usr/lib/x86_64-linux-gnu/libevent_core-2.1.so.7"] = "ELF"
	case "kmod": // one it does
		files["usr/lib/x86_64-linux-gnu/libkmod.so.2"] = "ELF"
	case "dracut":
		files["usr/lib/dracut/dracut-init.sh"] = "inst_libdir_file() { :; }\n"
		files["usr/lib/x86_64-linux-gnu/libc.so.6"] = "ELF"
	case "leaky-key":
		files["usr/share/leaky-key/server.key"] = testPEMKey
		files["var/lib/dpkg/info/leaky-key.list"] = "/.\n/usr\n/usr/share/leaky-key\n/usr/share/leaky-key/server.key\n"
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o600); err != nil {
			return err
		}
	}
	if pkg == "ssl-cert" {
		return os.Symlink("ssl-cert-snakeoil.pem", filepath.Join(root, "etc/ssl/certs/4a5b6c7d.0"))
	}
	return nil
}

const (
	testPEMKey     = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
	testOpenSSHKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
)

// fakeHostApt plays the resolver's apt-get with a private APT_CONFIG.
func fakeHostApt(c run.Cmd) ([]byte, error) {
	var conf string
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, "APT_CONFIG="); ok {
			conf = v
		}
	}
	if conf == "" {
		return nil, fmt.Errorf("fake apt-get: no APT_CONFIG: the host's apt would be used")
	}
	dir := filepath.Dir(conf)
	args := c.Args[2:] // after apt-get -q
	switch args[0] {
	case "update":
		var b strings.Builder
		b.WriteString("Package: base-files\nVersion: 13.8\nArchitecture: amd64\n\n")
		for _, p := range universe {
			fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\n\n", p, fakeVersion)
		}
		os.WriteFile(filepath.Join(dir, "var/lib/apt/lists/fake_dists_trixie_InRelease"), []byte("Date: Thu, 26 Nov 2026 00:00:00 UTC\n"), 0o644)
		return nil, os.WriteFile(filepath.Join(dir, "var/lib/apt/lists/fake_dists_trixie_main_binary-amd64_Packages"), []byte(b.String()), 0o644)
	case "install":
		var out strings.Builder
		if slices.Contains(args, "?essential") {
			return []byte("'http://127.0.0.1:9/debian/pool/main/b/base-files/base-files_13.8_amd64.deb' base-files_13.8_amd64.deb 1000 SHA256:0\n"), nil
		}
		// The resolver names the layer base's kept status file; apt's own
		// place is the fallback, as for apt.
		statusPath := filepath.Join(dir, "var/lib/dpkg/status")
		for j, a := range args {
			if v, ok := strings.CutPrefix(a, "Dir::State::status="); ok && j > 0 && args[j-1] == "-o" {
				statusPath = v
			}
		}
		status, _ := os.ReadFile(statusPath)
		i := slices.Index(args, "--")
		for _, p := range args[i+1:] {
			if !slices.Contains(universe, p) {
				return nil, &run.Error{Cmd: "apt-get install -s", Err: errors.New("exit status 100"), Stderr: "E: Unable to locate package " + p}
			}
			if !strings.Contains(string(status), "Package: "+p+"\n") {
				fmt.Fprintf(&out, "'http://127.0.0.1:9/debian/pool/main/%s_%s_amd64.deb' %s_%s_amd64.deb 1000 SHA256:0\n", p, fakeVersion, p, fakeVersion)
			}
		}
		return []byte(out.String()), nil
	}
	return nil, fmt.Errorf("fake apt-get: unexpected %v", args)
}

var fakeVersion = "1.0-1"

// fakeHost has every tool; delay slows its answers about versions, which
// every build asks first (siblings are then all under way before either
// reaches its install).
type fakeHost struct{ delay time.Duration }

func (fakeHost) Ensure(context.Context, []Requirement) error { return nil }
func (h fakeHost) ToolVersion(_ context.Context, tool string) (string, error) {
	time.Sleep(h.delay)
	if tool == "ostree" {
		return "2022.7", nil
	}
	return tool + " 1.0", nil
}

// testEnv is a project folder with one variant file and a fake runner.
type testEnv struct {
	t      *testing.T
	cfg    Config
	runner *fakeRunner
}

func newTestEnv(t *testing.T, packages ...string) *testEnv {
	t.Helper()
	if _, err := exec.LookPath("ostree"); err != nil {
		t.Skip("ostree is not installed")
	}
	dir := t.TempDir()
	e := &testEnv{t: t, runner: newFakeRunner()}
	e.cfg = Config{
		VariantsDir: filepath.Join(dir, "variants"),
		CacheDir:    filepath.Join(dir, ".cache"),
		RepoDir:     filepath.Join(dir, ".cache", "repo"),
		DebsDir:     filepath.Join(dir, ".cache", "debs"),
		Runner:      e.runner,
		Log:         zerolog.Nop(),
		Host:        fakeHost{},
		CPUs:        []int{0, 1},
	}
	os.MkdirAll(e.cfg.VariantsDir, 0o755)
	e.setPackages(packages...)
	return e
}

func (e *testEnv) setPackages(pkgs ...string) {
	body := "name: t\nsuite: trixie\narchitecture: amd64\nmirror: http://127.0.0.1:9/debian\nos-name: debian\nref: test/t\nkernel-args: [rw]\npackages:\n"
	for _, p := range pkgs {
		body += "  - " + p + "\n"
	}
	if err := os.WriteFile(filepath.Join(e.cfg.VariantsDir, "t.yaml"), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) build(ctx context.Context) (Report, error) {
	e.t.Helper()
	s, vs, err := Open(ctx, e.cfg, []string{"t"})
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ensureLocked(ctx, vs, false); err != nil {
		return Report{}, err
	}
	rep, err := s.Build(ctx, vs[0])
	if m := e.runner.stillMounted(); len(m) > 0 {
		e.t.Errorf("still mounted after the build: %v", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cfg.CacheDir, "work")); len(entries) > 0 {
		e.t.Errorf("work trees left after the build: %v", entries)
	}
	return rep, err
}

func (e *testEnv) mustBuild() Report {
	e.t.Helper()
	rep, err := e.build(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func ranSteps(r Report) []string {
	var out []string
	for _, s := range r.Steps {
		if !s.Cached {
			out = append(out, s.Step)
		}
	}
	return out
}

// ranNames is like ranSteps with install steps named by layer.
func ranNames(r Report) []string {
	var out []string
	for _, s := range r.Steps {
		if !s.Cached {
			out = append(out, s.Name)
		}
	}
	return out
}

// fakeStrace plays strace -o FILE chroot ROOT dracut ...: it runs the fake
// dracut and writes the lookups a dracut would make, in strace -y's format:
// the chroot command's own host libraries first, then absolute lookups, a
// relative one under a directory fd, and a folder listing.
func fakeStrace(args []string) error {
	out := args[slices.Index(args, "-o")+1]
	i := slices.Index(args, "chroot")
	root := args[i+1]
	if err := fakeInChroot(root, args[i+2:]); err != nil {
		return err
	}
	// strace pads PIDs to five columns: "7     execve(", "12345 newfstatat(".
	var b strings.Builder
	fmt.Fprintf(&b, "7     execve(\"/usr/sbin/chroot\", [\"chroot\", %q], 0x7ffd /* 4 vars */) = 0\n", root)
	b.WriteString("7     openat(AT_FDCWD</tmp>, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>\n")
	fmt.Fprintf(&b, "7     chroot(%q <unfinished ...>\n", root)
	b.WriteString("6     +++ exited with 0 +++\n")
	b.WriteString("7     <... chroot resumed>) = 0\n")
	b.WriteString("7     openat(AT_FDCWD</>, \"/usr/lib/dracut/dracut-functions.sh\", O_RDONLY) = 3\n")
	for _, p := range []string{"/usr/bin/plymouth", "/etc/passwd", "/bin/true", "/usr/lib/dracut/modules.d/98ostree"} {
		fmt.Fprintf(&b, "12345 newfstatat(AT_FDCWD<%s>, %q, 0x7ffd, 0) = 0\n", root, p)
	}
	fmt.Fprintf(&b, "123456 openat(AT_FDCWD<%s/usr/lib/modules>, %q, O_RDONLY|O_DIRECTORY) = 3<%s/usr/lib/modules/%s>\n", root, kver, root, kver)
	fmt.Fprintf(&b, "123456 getdents64(3<%s/usr/lib/modules/%s>, 0x55 /* 3 entries */, 32768) = 80\n", root, kver)
	fmt.Fprintf(&b, "123456 openat(AT_FDCWD<%s/var/tmp/dracut.x>, \"initramfs/usr\", O_RDONLY) = 4\n", root)
	// inst_libdir_file "libkmod.so*", marked as the instrumented dracut-init.sh does.
	if exists(filepath.Join(root, "usr/lib/x86_64-linux-gnu")) {
		fmt.Fprintf(&b, "12345 newfstatat(AT_FDCWD<%s>, \"/.debian-atomic-glob/libkmod.so*\", 0x7ffd, 0) = -1 ENOENT (No such file or directory)\n", root)
		fmt.Fprintf(&b, "12345 getdents64(3<%s/usr/lib/x86_64-linux-gnu>, 0x55 /* 5 entries */, 32768) = 160\n", root)
		fmt.Fprintf(&b, "12345 newfstatat(AT_FDCWD<%s>, \"/.debian-atomic-glob-end\", 0x7ffd, 0) = -1 ENOENT (No such file or directory)\n", root)
	}
	b.WriteString("123456 +++ exited with 0 +++\n")
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
