package variants

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/debian-atomic/builder/cache"
)

// LockFile is the lock's name, beside the variant files.
const LockFile = "variants.lock"

// lockFormat versions the lock file's layout.
const lockFormat = 1

// Lock records the archive state builds use: for each archive the Release
// file's date and digest, for each bootstrap and each variant layer the
// resolved packages. Builds install exactly these versions.
type Lock struct {
	Format     int                     `json:"format"`
	Archives   map[string]ArchiveState `json:"archives"`   // Release file (apt's list name) -> state
	Bootstraps map[string][]string     `json:"bootstraps"` // bootstrap id -> "name version arch"
	Variants   map[string]LockedLayer  `json:"variants"`
	// SourceDateEpoch is the SOURCE_DATE_EPOCH every build step gets, so
	// that dates written while building (dracut's file times, shadow's
	// last-change days) come from the lock, not the clock. It is set once,
	// to the newest Release date when the lock is first made, and kept by
	// `mage update`: a changing epoch would rebuild every layer, and an
	// incremental install would differ from a fresh one.
	SourceDateEpoch int64 `json:"source-date-epoch,omitempty"`
}

// ArchiveState identifies one Release file.
type ArchiveState struct {
	Date   string `json:"date"`
	SHA256 string `json:"sha256"`
}

// LockedLayer is what one variant's own layer installs.
type LockedLayer struct {
	Input     string   `json:"input"` // digest of the layer's inputs; a mismatch means re-resolve
	Parent    string   `json:"parent,omitempty"`
	Bootstrap string   `json:"bootstrap,omitempty"`
	Packages  []string `json:"packages"` // "name version arch", sorted
}

// ReadLock reads the lock in dir; a missing lock is an empty one.
func ReadLock(dir string) (*Lock, error) {
	l := &Lock{Format: lockFormat, Archives: map[string]ArchiveState{}, Bootstraps: map[string][]string{}, Variants: map[string]LockedLayer{}}
	path := filepath.Join(dir, LockFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): restore it from version control, or delete it and build again to lock afresh", path, err)
	}
	if l.Format != lockFormat {
		return nil, fmt.Errorf("%s has format %d; this builder reads format %d: run `mage update`", path, l.Format, lockFormat)
	}
	if l.Archives == nil {
		l.Archives = map[string]ArchiveState{}
	}
	if l.Bootstraps == nil {
		l.Bootstraps = map[string][]string{}
	}
	if l.Variants == nil {
		l.Variants = map[string]LockedLayer{}
	}
	l.SetEpoch()
	return l, nil
}

// SetEpoch gives a lock without a SourceDateEpoch the newest Release date it
// records; a lock that has one keeps it.
func (l *Lock) SetEpoch() {
	if l.SourceDateEpoch != 0 {
		return
	}
	for _, a := range l.Archives {
		if t, err := ParseReleaseDate(a.Date); err == nil && t.Unix() > l.SourceDateEpoch {
			l.SourceDateEpoch = t.Unix()
		}
	}
}

// ParseReleaseDate reads a Release file's Date field (RFC 2822, as the
// archive writes it: "Sat, 08 Nov 2025 09:09:53 UTC").
func ParseReleaseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable Release date %q", s)
}

// Write stores the lock atomically: a temporary file renamed over the old one.
func (l *Lock) Write(dir string) error {
	for k := range l.Bootstraps {
		sort.Strings(l.Bootstraps[k])
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, LockFile), append(data, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temporary file in the same folder, syncs
// it and renames it over path, so readers see the old or the new file whole.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// BootstrapID names the bootstrap a base variant makes: its suites (with
// -updates and -security when followed), architecture and components. The mirror is not
// part of it: any mirror of the archive serves the same locked versions.
func (v *Variant) BootstrapID() string {
	return strings.Join([]string{strings.Join(v.Suites(), ","), v.Architecture, strings.Join(v.Components, ",")}, " ")
}

// LayerInput digests what decides the resolution of v's own layer,
// including its parent's, so a changed parent re-resolves its children.
func (v *Variant) LayerInput() string {
	p := cache.NewPreimage("layer", lockFormat).
		AddSet("packages", v.Packages).
		Add("recommends", fmt.Sprint(v.Recommends)).
		AddSet("sources", v.Sources)
	if v.Parent != nil {
		p.Add("parent", v.Parent.LayerInput())
	} else {
		p.Add("bootstrap", v.BootstrapID())
	}
	return string(p.Sum())
}

// Fresh reports whether the lock holds v's layer and every layer under it
// for their current inputs.
func (l *Lock) Fresh(v *Variant) bool {
	for _, layer := range v.Layers() {
		e, ok := l.Variants[layer.Name]
		if !ok || e.Input != layer.LayerInput() {
			return false
		}
	}
	_, ok := l.Bootstraps[v.Layers()[0].BootstrapID()]
	return ok
}

// PackageDiff describes how a variant's full package set changed: +added,
// -removed and name old -> new.
func PackageDiff(old, cur []string) []string {
	split := func(l []string) map[string]string {
		m := map[string]string{}
		for _, e := range l {
			f := strings.Fields(e)
			if len(f) == 3 {
				m[f[0]+":"+f[2]] = f[1]
			}
		}
		return m
	}
	o, c := split(old), split(cur)
	var out []string
	for k, v := range c {
		name := strings.SplitN(k, ":", 2)[0]
		if was, ok := o[k]; !ok {
			out = append(out, fmt.Sprintf("+%s %s", name, v))
		} else if was != v {
			out = append(out, fmt.Sprintf(" %s %s -> %s", name, was, v))
		}
	}
	for k, v := range o {
		if _, ok := c[k]; !ok {
			out = append(out, fmt.Sprintf("-%s %s", strings.SplitN(k, ":", 2)[0], v))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1:] < out[j][1:] })
	return out
}

// FullSet is every package v's chain locks: bootstrap and all layers.
func (l *Lock) FullSet(v *Variant) []string {
	var all []string
	all = append(all, l.Bootstraps[v.Layers()[0].BootstrapID()]...)
	for _, layer := range v.Layers() {
		all = append(all, l.Variants[layer.Name].Packages...)
	}
	return DedupeSet(all)
}

// DedupeSet keeps the last entry per package name and architecture (a later
// layer may upgrade an earlier one's package).
func DedupeSet(entries []string) []string {
	last := map[string]string{}
	var order []string
	for _, e := range entries {
		f := strings.Fields(e)
		if len(f) != 3 {
			continue
		}
		k := f[0] + ":" + f[2]
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = e
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	sort.Strings(out)
	return out
}
