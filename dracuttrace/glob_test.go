package dracuttrace

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testKver = "6.12.0-1-amd64"

// globTree is a tree with two libraries, dracut's modules and a kernel.
func globTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "usr/lib/dracut/modules.d/98ostree", "usr/lib/modules/" + testKver + "/kernel"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"libkmod.so.2", "libc.so.6"} {
		touch(t, root, "usr/lib/x86_64-linux-gnu/"+f)
	}
	return root
}

func touch(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
}

// globTrace is what strace writes when dracut's shell (pid 100) runs the
// wrapped inst_libdir_file with patterns over the library folder; extra
// lines follow.
func globTrace(t *testing.T, root string, patterns []string, extra ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "99    chroot(%q) = 0\n", root)
	fmt.Fprintf(&b, "100   openat(AT_FDCWD<%s>, \"/usr/lib/dracut/modules.d/98ostree\", O_RDONLY) = 3\n", root)
	fmt.Fprintf(&b, "100   newfstatat(AT_FDCWD<%s>, \"/usr/lib/modules/%s/kernel\", 0x7ffd, 0) = 0\n", root, testKver)
	for _, p := range patterns {
		fmt.Fprintf(&b, "100   newfstatat(AT_FDCWD<%s>, %q, 0x7ffd, 0) = -1 ENOENT (No such file or directory)\n", root, globMarker+p)
	}
	fmt.Fprintf(&b, "100   openat(AT_FDCWD<%s>, \"/lib/x86_64-linux-gnu/\", O_RDONLY|O_DIRECTORY) = 3<%s/usr/lib/x86_64-linux-gnu>\n", root, root)
	fmt.Fprintf(&b, "100   getdents64(3<%s/usr/lib/x86_64-linux-gnu>, 0x55 /* 4 entries */, 32768) = 120\n", root)
	fmt.Fprintf(&b, "101   getdents64(4<%s/usr/lib/modules/%s>, <unfinished ...>\n", root, testKver)
	fmt.Fprintf(&b, "100   newfstatat(AT_FDCWD<%s>, \"/lib/x86_64-linux-gnu/libkmod.so.2\", 0x7ffd, 0) = 0\n", root)
	fmt.Fprintf(&b, "100   newfstatat(AT_FDCWD<%s>, %q, 0x7ffd, 0) = -1 ENOENT (No such file or directory)\n", root, globEnd)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	trace := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(trace, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return trace
}

// A library folder listed by inst_libdir_file's glob keeps only the names
// its patterns match: a new library no pattern matches (tmux's) reuses the
// image, one a pattern matches, or the matched one removed, does not.
func TestGlobListingKeepsOnlyMatchingNames(t *testing.T) {
	root := globTree(t)
	m, err := FromTrace(globTrace(t, root, []string{"libkmod.so*", "tls/x86_64/libkmod.so*"}), root, testKver)
	if err != nil {
		t.Fatal(err)
	}
	key := "glob:/usr/lib/x86_64-linux-gnu\nlibkmod.so*"
	if got, ok := m.Paths[key]; !ok || got != "libkmod.so.2" {
		t.Fatalf("glob key %q = %q (present %v); manifest %v", key, got, ok, m.Paths)
	}
	if _, ok := m.Paths["ls:/usr/lib/x86_64-linux-gnu"]; ok {
		t.Error("the globbed folder is kept as a whole listing too")
	}
	if _, ok := m.Paths["ls:/usr/lib/modules/"+testKver]; !ok {
		t.Error("a listing outside inst_libdir_file (pid 101) is not kept whole")
	}
	for k := range m.Paths {
		if strings.Contains(k, ".debian-atomic-glob") {
			t.Errorf("the marker %q is in the manifest", k)
		}
	}
	touch(t, root, "usr/lib/x86_64-linux-gnu/libevent_core-2.1.so.7")
	if why := m.Differs(root); why != "" {
		t.Errorf("a library no pattern matches runs dracut: %s", why)
	}
	touch(t, root, "usr/lib/x86_64-linux-gnu/libkmod.so.3")
	if why := m.Differs(root); !strings.Contains(why, "glob:/usr/lib/x86_64-linux-gnu") {
		t.Errorf("a library a pattern matches reuses the image (%q)", why)
	}
	os.Remove(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libkmod.so.3"))
	os.Remove(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libkmod.so.2"))
	if why := m.Differs(root); why == "" {
		t.Error("removing the library the glob matched reuses the image")
	}
}

// Whole listings stay where a glob cannot be read safely: the folder was
// listed outside inst_libdir_file as well, or a pattern has a bracket
// expression or extglob that path.Match may not read as bash does.
func TestGlobListingKeptWholeWhenUnsure(t *testing.T) {
	cases := map[string]struct {
		patterns []string
		extra    func(root string) string
	}{
		"listed outside too": {[]string{"libkmod.so*"}, func(root string) string {
			return fmt.Sprintf("102   getdents64(5<%s/usr/lib/x86_64-linux-gnu>, 0x55 /* 4 entries */, 32768) = 120", root)
		}},
		"bracket":       {[]string{"libkmod.so.[0-9]"}, nil},
		"extglob":       {[]string{"libkmod.so@(.2|.3)"}, nil},
		"folder glob":   {[]string{"*/libkmod.so*"}, nil},
		"escape":        {[]string{`libkmod\*`}, nil},
		"empty pattern": {[]string{""}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := globTree(t)
			var extra []string
			if c.extra != nil {
				extra = append(extra, c.extra(root))
			}
			m, err := FromTrace(globTrace(t, root, c.patterns, extra...), root, testKver)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.Paths["ls:/usr/lib/x86_64-linux-gnu"]; !ok {
				t.Fatalf("no whole listing: %v", m.Paths)
			}
			touch(t, root, "usr/lib/x86_64-linux-gnu/libevent_core-2.1.so.7")
			if why := m.Differs(root); why == "" {
				t.Error("a new library reuses the image although the listing is kept whole")
			}
		})
	}
}

// The wrapped inst_libdir_file does what the original does (arguments,
// output, status) and looks its patterns up around the call.
func TestWrapInitKeepsTheFunction(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	orig := "inst_libdir_file() { echo \"args:$#:$*\"; return 3; }\n"
	wrapped, _ := Instrument(InitScript, []byte(orig))
	script := string(wrapped) + "inst_libdir_file -n 'x.*' 'lib a*' b; echo \"rc=$?\"\ndeclare -F __debian_atomic_inst_libdir_file\n"
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "args:4:-n x.* lib a* b\nrc=3\n__debian_atomic_inst_libdir_file\n"; string(out) != want {
		t.Errorf("wrapped: %q, want %q", out, want)
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		return
	}
	trace := filepath.Join(t.TempDir(), "trace")
	if out, err := exec.Command(strace, "-f", "-qq", "-e", "trace=stat,newfstatat,statx", "-o", trace, bash, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data, _ := os.ReadFile(trace)
	for _, want := range []string{`"` + globMarker + `lib a*"`, `"` + globMarker + `b"`, `"` + globEnd + `"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the trace has no lookup of %s:\n%s", want, data)
		}
	}
	// Without an inst_libdir_file the wrapper defines nothing.
	bare, _ := Instrument(InitScript, nil)
	out, err = exec.Command(bash, "-c", string(bare)+"declare -F inst_libdir_file || echo none").CombinedOutput()
	if err != nil || string(out) != "none\n" {
		t.Errorf("without the function: %q %v", out, err)
	}
}

// dracut 106's libpthread loop, as /usr/bin/dracut has it.
const dracutLoop = `if [[ $kernel_only != yes ]]; then
    # libpthread workaround: pthread_cancel wants to dlopen libgcc_s.so
    for _dir in $libdirs; do
        for _f in "$dracutsysrootdir$_dir/libpthread.so"*; do
            [[ -e $_f ]] || continue
            inst_libdir_file "libgcc_s.so*"
            break 2
        done
    done

    # FIPS workaround for Fedora/RHEL: libcrypto needs libssl when FIPS is enabled
    echo after
fi
`

// The main script's glob is marked around the loop, the loop still does
// what it did, and a dracut whose text differs is left unmarked.
func TestInstrumentDracutMarksItsLibraryGlob(t *testing.T) {
	got, ok := Instrument(Dracut, []byte(dracutLoop))
	if !ok {
		t.Fatal("dracut 106's loop was not marked")
	}
	s := string(got)
	if !strings.Contains(s, "__debian_atomic_glob \"libpthread.so*\"\n    for _dir in $libdirs") || !strings.Contains(s, "__debian_atomic_glob_end\n    # FIPS") {
		t.Fatalf("marked:\n%s", s)
	}
	if _, ok := Instrument(Dracut, []byte(strings.Replace(dracutLoop, "libpthread.so", "libpthread.so.0", 1))); ok {
		t.Error("a loop that differs was marked")
	}
	if _, ok := Instrument("/usr/bin/other", []byte(dracutLoop)); ok {
		t.Error("a file that is not instrumented was marked")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	touch(t, dir, "b/libpthread.so.0")
	init, _ := Instrument(InitScript, []byte("inst_libdir_file() { echo \"inst $*\"; }\n"))
	script := string(init) + "dracutsysrootdir=" + dir + "; libdirs='/a /b'\n" + s
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil || string(out) != "inst libgcc_s.so*\nafter\n" {
		t.Errorf("the marked loop printed %q (%v)", out, err)
	}
}

// 99fs-lib's install, as dracut 106 has it (abridged after the glob).
const fsLibInstall = `install() {
    [[ $nofscks == "yes" ]] && return

    if [[ $fscks == "${fscks#*[^ ]*}" ]]; then
        _helpers=(
            /sbin/fsck* /usr/sbin/fsck*
            xfs_db
        )
    else
        read -r -a _helpers <<< "$fscks"
    fi

    _helpers+=(umount mount)
    echo "${_helpers[@]}"
}
`

// 99fs-lib's glob for fsck helpers is marked and still expands as before.
func TestInstrumentFsLibMarksTheFsckGlob(t *testing.T) {
	got, ok := Instrument(FsLib, []byte(fsLibInstall))
	if !ok {
		t.Fatal("dracut 106's fs-lib was not marked")
	}
	if _, ok := Instrument(FsLib, []byte(strings.Replace(fsLibInstall, "/sbin/fsck*", "/sbin/fsck.*", 1))); ok {
		t.Error("a glob that differs was marked")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return
	}
	init, _ := Instrument(InitScript, nil)
	script := string(init) + string(got) + "install\n"
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want, _ := exec.Command(bash, "-c", fsLibInstall+"install\n").CombinedOutput()
	if string(out) != string(want) || !strings.Contains(string(out), "umount mount") {
		t.Errorf("marked install printed %q, the original %q", out, want)
	}
}
