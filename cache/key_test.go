package cache

import (
	"strings"
	"testing"
)

func sample() *Preimage {
	return NewPreimage("install", 1).
		Add("parent", "abc").
		AddSet("packages", []string{"vim", "bash"}).
		AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"})
}

// The key of a fixed preimage never changes across runs or builds; if this
// test fails, every user's cache is silently invalidated: bump the schema
// on purpose instead.
func TestKeyIsStable(t *testing.T) {
	got := sample().Sum()
	if len(got) != 64 {
		t.Fatalf("key %q is not 32 bytes of hex", got)
	}
	if got != sample().Sum() {
		t.Fatal("same preimage, different keys")
	}
	if string(got) != stableKey {
		t.Errorf("key changed: got %s, want %s", got, stableKey)
	}
}

const stableKey = "069969d5fb38c3df186119eca464d94b97d56c613c2a215f4f3065f6d30afb2d"

func TestKeyIgnoresMapAndSetOrder(t *testing.T) {
	for i := 0; i < 50; i++ {
		p := NewPreimage("install", 1).
			Add("parent", "abc").
			AddSet("packages", []string{"bash", "vim"}).
			AddMap("metadata", map[string]string{"c": "3", "a": "1", "b": "2"})
		if p.Sum() != sample().Sum() {
			t.Fatal("key depends on map or set order")
		}
	}
}

func TestKeyChangesWithEveryInput(t *testing.T) {
	base := sample().Sum()
	variants := map[string]*Preimage{
		"kind":     NewPreimage("postprocess", 1).Add("parent", "abc").AddSet("packages", []string{"vim", "bash"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}),
		"schema":   NewPreimage("install", 2).Add("parent", "abc").AddSet("packages", []string{"vim", "bash"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}),
		"parent":   NewPreimage("install", 1).Add("parent", "abd").AddSet("packages", []string{"vim", "bash"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}),
		"package":  NewPreimage("install", 1).Add("parent", "abc").AddSet("packages", []string{"vim", "bash", "zsh"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}),
		"metadata": NewPreimage("install", 1).Add("parent", "abc").AddSet("packages", []string{"vim", "bash"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "4"}),
		"label":    NewPreimage("install", 1).Add("parents", "abc").AddSet("packages", []string{"vim", "bash"}).AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}),
	}
	seen := map[Key]string{base: "base"}
	for name, p := range variants {
		k := p.Sum()
		if other, dup := seen[k]; dup {
			t.Errorf("changing %s gives the same key as %s", name, other)
		}
		seen[k] = name
	}
}

// Length prefixes: moving bytes between a label and a value, or between two
// values, changes the key.
func TestKeyFramingIsUnambiguous(t *testing.T) {
	a := NewPreimage("s", 1).Add("ab", "c").Sum()
	b := NewPreimage("s", 1).Add("a", "bc").Sum()
	c := NewPreimage("s", 1).AddList("l", []string{"a\nb"}).Add("x", "").Sum()
	d := NewPreimage("s", 1).AddList("l", []string{"a", "b"}).Add("x", "").Sum()
	if a == b {
		t.Error("label/value boundary is ambiguous")
	}
	if c != d {
		t.Error("a list is its lines joined; the same lines must give the same key")
	}
	e := NewPreimage("s", 1).Add("a", "b").Add("c", "").Sum()
	f := NewPreimage("s", 1).Add("a", "b\x00\x00\x00\x00\x00\x00\x00\x01c").Sum()
	if e == f {
		t.Error("field boundary is ambiguous")
	}
}

func TestDiffExplainsChanges(t *testing.T) {
	old := sample().Fields()
	cur := NewPreimage("install", 1).Add("parent", "abc").AddSet("packages", []string{"vim", "bash", "zsh"}).
		AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}).Fields()
	d := Diff(old, cur)
	if len(d) != 1 || !strings.Contains(d[0], "packages: +zsh") {
		t.Errorf("diff: %v", d)
	}
	cur = NewPreimage("install", 1).Add("parent", "xyz").AddSet("packages", []string{"vim"}).
		AddMap("metadata", map[string]string{"b": "2", "a": "1", "c": "3"}).Fields()
	d = Diff(old, cur)
	if len(d) != 2 || !strings.Contains(d[0], `"abc" -> "xyz"`) || !strings.Contains(d[1], "-bash") {
		t.Errorf("diff: %v", d)
	}
}
