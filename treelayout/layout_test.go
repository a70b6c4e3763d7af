package treelayout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTwoKernelsAreRefused(t *testing.T) {
	root := t.TempDir()
	for _, k := range []string{"6.1.0-1-amd64", "6.2.0-1-amd64"} {
		os.MkdirAll(filepath.Join(root, "usr/lib/modules", k), 0o755)
		os.MkdirAll(filepath.Join(root, "boot"), 0o755)
		os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+k), nil, 0o644)
	}
	if _, err := Kernel(root); err == nil || !strings.Contains(err.Error(), "2 kernels") {
		t.Errorf("got %v", err)
	}
}

// The whole layout on a small installed tree, without the builder: the
// kernel in its modules folder, /etc and the dpkg database under /usr, the
// state folders as links into a /var that is committed empty and remade by
// tmpfiles.d lines, and the build's own files gone.
func TestLayoutOfASmallTree(t *testing.T) {
	root := t.TempDir()
	const kver = "6.12.0-1-amd64"
	files := map[string]string{
		"boot/vmlinuz-" + kver:                     "kernel",
		"boot/config-" + kver:                      "config",
		"usr/lib/modules/" + kver + "/modules.dep": "",
		"etc/passwd":                               "root:x:0:0::/root:/bin/sh\n",
		"etc/passwd-":                              "old",
		"etc/hostname":                             "builder",
		"etc/resolv.conf":                          "nameserver 10.0.0.1\n",
		"var/lib/dpkg/status":                      "Package: base-files\n",
		"var/lib/dpkg/status-old":                  "",
		"var/lib/apt/lists/x_Packages":             "",
		"var/log/dpkg.log":                         "log",
		"var/lib/demo/state":                       "kept",
		"root/.bashrc":                             "# root\n",
		"usr/sbin/policy-rc.d":                     "exit 101",
		"tmp/build-file":                           "",
	}
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "root"), 0o700) // kept as the tree has it
	kv, err := Kernel(root)
	if err != nil || kv != kver {
		t.Fatalf("Kernel: %q %v", kv, err)
	}
	if err := MoveKernel(root, kver); err != nil {
		t.Fatal(err)
	}
	if err := CleanLeftovers(root); err != nil {
		t.Fatal(err)
	}
	if err := Apply(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/lib/modules/" + kver + "/vmlinuz", "usr/lib/modules/" + kver + "/config",
		"usr/etc/passwd", "usr/etc/machine-id", "usr/etc/locale.conf", DpkgDatabase + "/status",
		Factory + "/var/lib/demo/state", Factory + "/var/roothome/.bashrc", "sysroot"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("missing %s", p)
		}
	}
	for _, p := range []string{"etc", "usr/etc/passwd-", "usr/etc/hostname", "usr/etc/resolv.conf",
		"usr/sbin/policy-rc.d", DpkgDatabase + "/status-old", "boot/vmlinuz-" + kver} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s should be gone", p)
		}
	}
	for _, d := range []string{"var", "boot", "tmp"} {
		if entries, _ := os.ReadDir(filepath.Join(root, d)); len(entries) > 0 {
			t.Errorf("/%s is not empty: %v", d, entries)
		}
	}
	for l, want := range map[string]string{"root": "var/roothome", "home": "var/home", "usr/local": "../var/usrlocal", "ostree": "sysroot/ostree"} {
		if got, _ := os.Readlink(filepath.Join(root, l)); got != want {
			t.Errorf("%s -> %q, want %q", l, got, want)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(root, TmpfilesConf))
	for _, want := range []string{"L /var/lib/dpkg - - - - ../../" + DpkgDatabase,
		"C /var/lib/demo/state 0644 ", "d /var/roothome 0700 "} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("tmpfiles.d lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "/var/log") || strings.Contains(string(conf), "/var/lib/apt/lists") {
		t.Errorf("tmpfiles.d remakes the build's logs or lists:\n%s", conf)
	}
}
