package testrun

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real `go test -json` run of a small module: a passing test, a skipped
// one with its reason, a skipped subtest, a failing one.
func TestSkipsAreListedWithTheirReason(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.org/m\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m_test.go"), []byte(`package m

import "testing"

func TestPass(t *testing.T) { t.Log("fine") }

func TestBoot(t *testing.T) {
	t.Log("looking for OVMF")
	t.Skip("boot tests need OVMF (apt-get install ovmf)")
}

func TestParts(t *testing.T) {
	t.Run("lock", func(t *testing.T) { t.Skipf("no %s", "apt-ftparchive") })
}

func TestBroken(t *testing.T) { t.Error("broke here") }
`), 0o644)
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.Output()
	var human bytes.Buffer
	skips, failed, err := Follow(bytes.NewReader(out), &human, false)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Errorf("the failing test was not noticed:\n%s", human.String())
	}
	if !strings.Contains(human.String(), "broke here") || strings.Contains(human.String(), "fine") {
		t.Errorf("output should hold the failure and not the passing test's log:\n%s", human.String())
	}
	want := []Skip{
		{"example.org/m", "TestBoot", "boot tests need OVMF (apt-get install ovmf)"},
		{"example.org/m", "TestParts/lock", "no apt-ftparchive"},
	}
	if len(skips) != len(want) {
		t.Fatalf("skips %+v, want %+v", skips, want)
	}
	for i := range want {
		if skips[i] != want[i] {
			t.Errorf("skip %d: %+v, want %+v", i, skips[i], want[i])
		}
	}
	var b bytes.Buffer
	WriteSkips(&b, skips)
	if !strings.Contains(b.String(), "2 test(s) skipped:\nSKIP example.org/m TestBoot: boot tests need OVMF (apt-get install ovmf)\nSKIP example.org/m TestParts/lock: no apt-ftparchive\n") {
		t.Errorf("summary:\n%s", b.String())
	}
}
