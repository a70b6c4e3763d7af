package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/build/run"
)

// Secure Boot firmware: SMM on, the secured flash, the Microsoft-keys code
// in place of the plain one; the plain boot keeps its firmware.
func TestSecureBootQEMUArgs(t *testing.T) {
	o := VMOptions{Disk: "d.qcow2", MemoryMiB: 2048, SecureBoot: true}
	args := strings.Join(qemuArgs(o, "tcg", "vars.fd"), " ")
	for _, want := range []string{"-M q35,smm=on ", "readonly=on,file=" + OVMFCodeSecure + " ", "file=vars.fd ", "-global driver=cfi.pflash01,property=secure,value=on"} {
		if !strings.Contains(args, want) {
			t.Errorf("no %q in %s", want, args)
		}
	}
	if strings.Contains(args, "file="+OVMFCode+" ") {
		t.Errorf("the plain firmware is still there: %s", args)
	}
	plain := strings.Join(qemuArgs(VMOptions{Disk: "d.qcow2", MemoryMiB: 2048}, "tcg", "vars.fd"), " ")
	if strings.Contains(plain, "smm=on") || strings.Contains(plain, "secure,value=on") || !strings.Contains(plain, "file="+OVMFCode+" ") {
		t.Errorf("plain boot changed: %s", plain)
	}
}

// fakeDeploy makes a deployment folder with the given files.
func fakeDeploy(t *testing.T, files ...string) string {
	d := t.TempDir()
	for _, f := range files {
		os.MkdirAll(filepath.Join(d, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(d, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// The signed chain is used only when the tree has all of it; GRUB goes
// beside shim, which is the removable-media path.
func TestSignedChain(t *testing.T) {
	full := fakeDeploy(t, shimSigned, mokSigned, grubSigned)
	chain := signedChain(full)
	got := map[string]string{}
	for _, f := range chain {
		got[f.dst] = f.src
	}
	if got["EFI/BOOT/BOOTX64.EFI"] != shimSigned || got["EFI/BOOT/grubx64.efi"] != grubSigned || got["EFI/BOOT/mmx64.efi"] != mokSigned || len(chain) != 3 {
		t.Errorf("chain: %+v", chain)
	}
	if c := signedChain(fakeDeploy(t, shimSigned, mokSigned)); c != nil {
		t.Errorf("a tree without signed GRUB gave %+v", c)
	}
}

// recordingRunner records the commands and runs none but dpkg-query, whose
// answer it makes up.
type recordingRunner struct{ cmds []string }

func (r *recordingRunner) Run(_ context.Context, c run.Cmd) ([]byte, error) {
	r.cmds = append(r.cmds, c.String())
	if c.Args[0] == "dpkg-query" {
		return []byte("1+2.12+9+deb13u4\n1.51~1+deb13u1+16.1-2~deb13u1\n"), nil
	}
	return nil, nil
}

// With the signed chain in the tree, the ESP gets it, the configuration the
// signed GRUB reads and the versions stamp; no GRUB is made on the host.
// Without it, the unsigned GRUB is made as before.
func TestAssembleESP(t *testing.T) {
	for _, signed := range []bool{true, false} {
		deploy := fakeDeploy(t, "usr/bin/true")
		if signed {
			deploy = fakeDeploy(t, shimSigned, mokSigned, grubSigned)
		}
		r := &recordingRunner{}
		o := Options{Runner: r, Log: zerolog.Nop(), Config: Config{DiskSize: "1G", Filesystem: "ext4"}, Work: t.TempDir(), Out: filepath.Join(t.TempDir(), "img")}
		// The fake runner makes no files: assembling stops at the disk copy.
		o.assemble(context.Background(), t.TempDir(), deploy)
		all := strings.Join(r.cmds, "\n")
		hasMkimage := strings.Contains(all, "grub-mkimage")
		if signed {
			for _, want := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/grubx64.efi", "::/EFI/BOOT/mmx64.efi", "::/" + espGrubCfg, "::/EFI/debian/versions"} {
				if !strings.Contains(all, want) {
					t.Errorf("signed: no %s in\n%s", want, all)
				}
			}
			if hasMkimage {
				t.Errorf("signed: a GRUB was made on the host:\n%s", all)
			}
			stamp, _ := os.ReadFile(filepath.Join(o.Work, "versions"))
			if string(stamp) != "1+2.12+9+deb13u4 1.51~1+deb13u1+16.1-2~deb13u1\n" {
				t.Errorf("versions stamp %q", stamp)
			}
		} else if !hasMkimage || strings.Contains(all, "grubx64.efi") {
			t.Errorf("unsigned:\n%s", all)
		}
	}
}

// The root grows only where the tree has systemd-repart: the partition
// definition in /etc and x-systemd.growfs on / in fstab.
func TestGrowRoot(t *testing.T) {
	d := fakeDeploy(t, "usr/bin/systemd-repart", "etc/fstab")
	if !canGrow(d) || canGrow(fakeDeploy(t, "etc/fstab")) {
		t.Fatal("canGrow")
	}
	if err := writeRepart(d); err != nil {
		t.Fatal(err)
	}
	def, _ := os.ReadFile(filepath.Join(d, RepartFile))
	if !strings.Contains(string(def), "[Partition]\nType=root\n") {
		t.Errorf("repart definition:\n%s", def)
	}
	for _, fs := range []string{"ext4", "btrfs"} {
		writeFstab(d, fs, true)
		got, _ := os.ReadFile(filepath.Join(d, "etc/fstab"))
		if !strings.Contains(string(got), "LABEL="+RootLabel+" / "+fs+" defaults,x-systemd.growfs 0 ") {
			t.Errorf("fstab:\n%s", got)
		}
	}
	writeFstab(d, "ext4", false)
	if got, _ := os.ReadFile(filepath.Join(d, "etc/fstab")); strings.Contains(string(got), "growfs") {
		t.Errorf("fstab without repart:\n%s", got)
	}
}

// The ESP update script is valid shell and never goes back to older
// versions: its comparison, run with the host's dpkg.
func TestUpdateESPScriptCompare(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	if out, err := exec.Command("sh", "-n", "-c", updateESPScript).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	start := strings.Index(updateESPScript, "newer() {")
	end := strings.Index(updateESPScript[start:], "\n}\n") + start + 3
	fn := updateESPScript[start:end]
	for _, c := range []struct {
		new, old string
		want     bool
	}{
		{"2.12-9+deb13u5 16.1-2", "2.12-9+deb13u4 16.1-2", true},
		{"2.12-9+deb13u4 16.1-2", "2.12-9+deb13u4 16.1-2", false},
		{"2.12-9+deb13u3 16.1-3", "2.12-9+deb13u4 16.1-2", false},
		{"2.12-9+deb13u4 16.1-1", "2.12-9+deb13u4 16.1-2", false},
	} {
		err := exec.Command("sh", "-c", fn+`newer "$1" "$2"`, "sh", c.new, c.old).Run()
		if (err == nil) != c.want {
			t.Errorf("newer %q than %q: %v, want %v", c.new, c.old, err == nil, c.want)
		}
	}
}
