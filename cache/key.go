// Package cache is the content-addressed step cache: BLAKE3 keys over labelled
// preimages, and a bbolt index from keys to validated results.
//
// As in Go's build cache, a key hashes a complete, labelled description of a
// repeatable computation, and downstream keys use the content digest of their
// input, so an identical rebuild stops the cascade.
package cache

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/zeebo/blake3"
)

// keyDomain versions the preimage encoding itself.
const keyDomain = "debian-atomic step key v1"

// Key identifies one step computation.
type Key string

// Short is the prefix shown in logs.
func (k Key) Short() string {
	if len(k) > 12 {
		return string(k[:12])
	}
	return string(k)
}

// Field is one labelled input of a key.
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Preimage collects the labelled inputs of one step in a fixed order.
type Preimage struct {
	fields []Field
}

// NewPreimage starts a preimage for a step kind and its schema version, which a
// step bumps whenever what it does changes.
func NewPreimage(kind string, schema int) *Preimage {
	p := &Preimage{}
	p.Add("step", kind)
	p.Add("schema", fmt.Sprint(schema))
	return p
}

// Add appends one labelled value.
func (p *Preimage) Add(label, value string) *Preimage {
	p.fields = append(p.fields, Field{label, value})
	return p
}

// AddList appends a list; order matters, so callers sort sets first.
func (p *Preimage) AddList(label string, values []string) *Preimage {
	return p.Add(label, strings.Join(values, "\n"))
}

// AddSet appends a list whose order does not matter.
func (p *Preimage) AddSet(label string, values []string) *Preimage {
	s := append([]string(nil), values...)
	sort.Strings(s)
	return p.AddList(label, s)
}

// AddMap appends a map in key order, so Go's map iteration order never leaks
// into keys.
func (p *Preimage) AddMap(label string, m map[string]string) *Preimage {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(m))
	for _, k := range keys {
		lines = append(lines, k+"="+m[k])
	}
	return p.AddList(label, lines)
}

// AddDigests appends a map whose values are contents, by their BLAKE3
// digests: a key stays one line per entry however long the contents are.
func (p *Preimage) AddDigests(label string, m map[string]string) *Preimage {
	d := make(map[string]string, len(m))
	for k, v := range m {
		sum := blake3.Sum256([]byte(v))
		d[k] = hex.EncodeToString(sum[:])
	}
	return p.AddMap(label, d)
}

// Fields returns a copy of the inputs, for explaining rebuilds.
func (p *Preimage) Fields() []Field { return append([]Field(nil), p.fields...) }

// Sum hashes the preimage. Each label and value is length-prefixed, so no
// choice of values can make two different preimages encode alike.
func (p *Preimage) Sum() Key {
	h := blake3.New()
	writeBytes := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	writeBytes(keyDomain)
	for _, f := range p.fields {
		writeBytes(f.Label)
		writeBytes(f.Value)
	}
	return Key(hex.EncodeToString(h.Sum(nil)))
}

// String renders the preimage for people (the "why did this rebuild" view).
func (p *Preimage) String() string {
	var b strings.Builder
	for _, f := range p.fields {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, strings.ReplaceAll(f.Value, "\n", " "))
	}
	return b.String()
}

// Diff explains how a preimage differs from an earlier one, label by label.
func Diff(old, cur []Field) []string {
	oldm := map[string]string{}
	for _, f := range old {
		oldm[f.Label] = f.Value
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range cur {
		seen[f.Label] = true
		was, ok := oldm[f.Label]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: new input", f.Label))
		case was != f.Value:
			out = append(out, fmt.Sprintf("%s: %s", f.Label, describeChange(was, f.Value)))
		}
	}
	for _, f := range old {
		if !seen[f.Label] {
			out = append(out, fmt.Sprintf("%s: input removed", f.Label))
		}
	}
	return out
}

// describeChange shows list changes as +added -removed and scalars as old -> new.
func describeChange(was, now string) string {
	if !strings.Contains(was, "\n") && !strings.Contains(now, "\n") {
		return fmt.Sprintf("%q -> %q", was, now)
	}
	oldSet, newSet := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(was, "\n") {
		oldSet[l] = true
	}
	for _, l := range strings.Split(now, "\n") {
		newSet[l] = true
	}
	var parts []string
	for _, l := range strings.Split(now, "\n") {
		if !oldSet[l] {
			parts = append(parts, "+"+l)
		}
	}
	for _, l := range strings.Split(was, "\n") {
		if !newSet[l] {
			parts = append(parts, "-"+l)
		}
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, " ")
}
