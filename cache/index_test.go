package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Index, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := OpenIndex(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x, path
}

// A stored result is a file whose size is recorded, like a commit object.
func storeResult(t *testing.T, dir, content string) Entry {
	t.Helper()
	p := filepath.Join(dir, "result")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return Entry{Kind: "install", Result: p, Size: int64(len(content))}
}

func validFile(e Entry) error {
	fi, err := os.Stat(e.Result)
	if err != nil {
		return err
	}
	if fi.Size() != e.Size {
		return errors.New("size differs")
	}
	return nil
}

func TestLookupValidatesResults(t *testing.T) {
	x, _ := openTemp(t)
	dir := t.TempDir()
	e := storeResult(t, dir, "tree contents")
	key := NewPreimage("install", 1).Sum()
	if err := x.Put(key, e, "v", "install", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := x.Lookup(key, validFile); !ok {
		t.Fatal("intact result is a miss")
	}
	// Truncated: a miss, and the entry is dropped.
	os.WriteFile(e.Result, []byte("tree"), 0o644)
	if _, ok, why := x.Lookup(key, validFile); ok || why == "" {
		t.Fatal("truncated result is a hit")
	}
	if _, ok := x.Get(key); ok {
		t.Fatal("damaged entry kept")
	}
	// Missing.
	x.Put(key, e, "v", "install", nil)
	os.Remove(e.Result)
	if _, ok, _ := x.Lookup(key, validFile); ok {
		t.Fatal("missing result is a hit")
	}
	// Unknown key.
	if _, ok, why := x.Lookup("nope", validFile); ok || why != "not in cache" {
		t.Fatalf("unknown key: %v %q", ok, why)
	}
}

func TestLastRemembersPreimage(t *testing.T) {
	x, _ := openTemp(t)
	p := NewPreimage("install", 1).Add("parent", "a")
	x.Put(p.Sum(), Entry{Result: "r"}, "minimal", "install", p.Fields())
	l, ok := x.Last("minimal", "install")
	if !ok || l.Key != p.Sum() || len(l.Fields) != 3 {
		t.Fatalf("last: %+v %v", l, ok)
	}
}

func TestIndexPersistsAndReportsBusy(t *testing.T) {
	x, path := openTemp(t)
	x.Put("k", Entry{Result: "r"}, "v", "s", nil)
	x.Close()
	y, err := OpenIndex(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if _, ok := y.Get("k"); !ok {
		t.Fatal("entry lost across reopen")
	}
	if _, err := OpenIndex(path, 100*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("second open: %v, want ErrBusy", err)
	}
}

func TestDamagedIndexIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	os.WriteFile(path, []byte("this is not a bbolt file, it is garbage of some length........"), 0o644)
	_, err := OpenIndex(path, time.Second)
	if err == nil {
		t.Fatal("garbage index opened")
	}
	if want := "mage clean"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
}
