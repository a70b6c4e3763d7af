package iso

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/iso/installer"
)

// fakeTools stands in for ostree, go, mount, dracut (in a chroot), mtools,
// mksquashfs and xorriso: each leaves what the real one would, so Prepare's
// order, the live tree it hands to mksquashfs and its clean-up are checked
// without root or minutes.
type fakeTools struct {
	t          *testing.T
	mu         sync.Mutex
	calls      []string
	mounted    map[string]bool
	failDracut bool
	squashed   map[string]string // what the live tree held when compressed
}

const kver = "6.12.57+deb13-amd64"

func (f *fakeTools) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := c.Args
	f.calls = append(f.calls, strings.Join(a, " "))
	put := func(p, v string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	last := a[len(a)-1]
	switch a[0] {
	case "ostree": // checkout --force-copy COMMIT DEST
		for _, p := range []string{"usr/etc/passwd", "usr/lib/modules/" + kver + "/vmlinuz", "usr/lib/modules/" + kver + "/initramfs.img",
			shimSigned, mokSigned, gcdSigned, "usr/lib/dracut/modules.d/90dmsquash-live/module-setup.sh"} {
			put(filepath.Join(last, p), p)
		}
		for _, d := range []string{"proc", "sys", "dev", "tmp", "var"} {
			os.MkdirAll(filepath.Join(last, d), 0o755)
		}
	case "go":
		put(a[len(a)-2], "installer")
		if !strings.Contains(strings.Join(c.Env, " "), "CGO_ENABLED=0") {
			f.t.Error("the installer is built with cgo")
		}
	case "mount":
		f.mounted[last] = true
	case "umount":
		delete(f.mounted, last)
	case "chroot":
		if len(f.mounted) != 3 {
			f.t.Errorf("dracut ran with %d mounts", len(f.mounted))
		}
		if f.failDracut {
			return nil, errors.New("dracut: failed")
		}
		put(filepath.Join(a[1], last), "initramfs")
	case "mksquashfs":
		tree := a[1]
		f.squashed = map[string]string{}
		filepath.Walk(tree, func(p string, info os.FileInfo, err error) error {
			rel, _ := filepath.Rel(tree, p)
			if info.Mode()&os.ModeSymlink != 0 {
				f.squashed[rel], _ = os.Readlink(p)
			} else if info.Mode().IsRegular() {
				data, _ := os.ReadFile(p)
				f.squashed[rel] = string(data)
			}
			return nil
		})
		put(a[2], "squashfs")
	case "xorriso":
		put(a[4], "iso")
	}
	return nil, nil
}

func prepareOptions(t *testing.T, f *fakeTools) Options {
	dir := t.TempDir()
	img := filepath.Join(dir, "minimal.raw")
	os.WriteFile(img, []byte("disk image"), 0o644)
	return Options{Runner: f, Log: zerolog.Nop(), Repo: "/repo", Variant: "minimal", LiveCommit: "abc", Image: img,
		Info: installer.Image{Variant: "minimal", Commit: "0123456789abcdef", Bytes: 10}, Work: filepath.Join(dir, "work"), SourceDir: dir}
}

func TestPrepareAndWrite(t *testing.T) {
	f := &fakeTools{t: t, mounted: map[string]bool{}}
	o := prepareOptions(t, f)
	s, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.mounted) != 0 {
		t.Errorf("left mounted: %v", f.mounted)
	}
	if _, err := os.Stat(filepath.Join(o.Work, "live")); !os.IsNotExist(err) {
		t.Error("the live tree is still there after Prepare")
	}
	sq := f.squashed
	for path, want := range map[string]string{
		"etc/passwd":              "usr/etc/passwd",
		"etc/hostname":            "debian-atomic-installer\n",
		InstallerBin:              "installer",
		ImageDir + "/minimal.raw": "disk image",
		"etc/systemd/system/multi-user.target.wants/debian-atomic-installer@ttyS0.service": "../debian-atomic-installer@.service",
		"etc/systemd/system/serial-getty@ttyS0.service":                                    "/dev/null",
	} {
		if sq[path] != want {
			t.Errorf("live tree %s = %q, want %q", path, sq[path], want)
		}
	}
	if !strings.Contains(sq["etc/systemd/system/"+installUnit], "TTYPath=/dev/%I") {
		t.Error("no installer unit in the live tree")
	}
	for _, gone := range []string{"usr/etc/passwd", "usr/lib/modules/" + kver + "/vmlinuz", "usr/lib/modules/" + kver + "/initramfs.img", "tmp/debian-atomic-live-initrd.img"} {
		if _, ok := sq[gone]; ok {
			t.Errorf("the live tree still holds %s", gone)
		}
	}
	var info installer.Image
	if err := json.Unmarshal([]byte(sq[ImageDir+"/install.json"]), &info); err != nil || info.File != "minimal.raw" || info.Commit != "0123456789abcdef" || info.Bytes != 10 {
		t.Errorf("install.json %q: %v", sq[ImageDir+"/install.json"], err)
	}
	for _, p := range []string{kernelFile, initrdFile, squashFile, infoFile} {
		if _, err := os.Stat(filepath.Join(s.stage, p)); err != nil {
			t.Errorf("stage lacks %s", p)
		}
	}
	calls := strings.Join(f.calls, "\n")
	for _, want := range []string{
		"chroot " + filepath.Join(o.Work, "live") + " dracut --force --no-hostonly --reproducible --compress zstd -q -3 -T0 --add dmsquash-live --omit ostree --kver " + kver + " /tmp/debian-atomic-live-initrd.img",
		"mcopy -i " + s.efiImg + " " + filepath.Join(o.Work, "live", shimSigned) + " ::/EFI/BOOT/BOOTX64.EFI",
		"mcopy -i " + s.efiImg + " " + filepath.Join(o.Work, "live", gcdSigned) + " ::/EFI/BOOT/grubx64.efi",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("no %q in:\n%s", want, calls)
		}
	}
	out := filepath.Join(t.TempDir(), "iso", "minimal.iso")
	res, err := s.Write(context.Background(), out, []string{"debian-atomic.install.disk=/dev/vda"})
	if err != nil || res.Path != out || res.Bytes != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(s.stage, grubCfg))
	if !strings.Contains(string(cfg), "root=live:CDLABEL=DEBIAN_ATOMIC_MINIMAL") || !strings.Contains(string(cfg), "debian-atomic.install.disk=/dev/vda\n") {
		t.Errorf("grub.cfg:\n%s", cfg)
	}
	if _, err := s.Write(context.Background(), out, []string{"a;b"}); err == nil {
		t.Error("a kernel argument with ';' reached GRUB")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.Work); !os.IsNotExist(err) {
		t.Error("Close left the work folder")
	}
}

func TestPrepareCleansUpOnFailure(t *testing.T) {
	f := &fakeTools{t: t, mounted: map[string]bool{}, failDracut: true}
	o := prepareOptions(t, f)
	s, err := Prepare(context.Background(), o)
	if err == nil || s != nil || !strings.Contains(err.Error(), "making the live initramfs") {
		t.Fatalf("%v %v", s, err)
	}
	if len(f.mounted) != 0 {
		t.Errorf("left mounted after a failed dracut: %v", f.mounted)
	}
	if _, err := os.Stat(o.Work); !os.IsNotExist(err) {
		t.Error("a failed Prepare left its work folder")
	}
}

func TestPrepareNeedsLiveModule(t *testing.T) {
	f := &fakeTools{t: t, mounted: map[string]bool{}}
	o := prepareOptions(t, f)
	// A live commit without dracut-live: checkout, then the module removed.
	g := &noLiveModule{f}
	o.Runner = g
	if _, err := Prepare(context.Background(), o); err == nil || !strings.Contains(err.Error(), "needs the package dracut-live") {
		t.Fatalf("%v", err)
	}
}

type noLiveModule struct{ *fakeTools }

func (n *noLiveModule) Run(ctx context.Context, c run.Cmd) ([]byte, error) {
	out, err := n.fakeTools.Run(ctx, c)
	if c.Args[0] == "ostree" {
		os.RemoveAll(filepath.Join(c.Args[len(c.Args)-1], "usr/lib/dracut/modules.d/90dmsquash-live"))
	}
	return out, err
}
