package dracuttrace

import (
	"encoding/binary"
	"testing"
)

// makeLdCache writes a glibc-ld.so.cache1.1 file with the given entries.
func makeLdCache(entries [][2]string) []byte {
	const header, entrySize = 48, 24
	data := make([]byte, header+entrySize*len(entries))
	copy(data, ldCacheMagic)
	binary.LittleEndian.PutUint32(data[20:], uint32(len(entries)))
	for i, e := range entries {
		at := header + i*entrySize
		binary.LittleEndian.PutUint32(data[at+4:], uint32(len(data)))
		data = append(append(data, e[0]...), 0)
		binary.LittleEndian.PutUint32(data[at+8:], uint32(len(data)))
		data = append(append(data, e[1]...), 0)
	}
	return data
}

// A library another package adds leaves the state alone; a library dracut's
// processes resolved, moved or added under a name they looked for, changes it.
func TestLdCacheStateKeepsOnlyNamesTheTraceShows(t *testing.T) {
	names := map[string]bool{"libc.so.6": true, "libkmod.so.2": true, "plymouth": true}
	base := [][2]string{{"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"}, {"libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"}}
	st := func(e [][2]string) string {
		s, ok := ldCacheState(makeLdCache(e), names)
		if !ok {
			t.Fatalf("cache %v did not parse", e)
		}
		return s
	}
	a := st(base)
	if a != "ldcache:libc.so.6=/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("state %q", a)
	}
	if b := st(append(base, [2]string{"libgtk-4.so.1", "/lib/x86_64-linux-gnu/libgtk-4.so.1"})); b != a {
		t.Errorf("an unrelated library changed the state: %q", b)
	}
	if b := st(append(base, [2]string{"libkmod.so.2", "/lib/x86_64-linux-gnu/libkmod.so.2"})); b == a {
		t.Error("a library under a name the trace looked for left the state unchanged")
	}
	if b := st([][2]string{{"libc.so.6", "/opt/libc.so.6"}}); b == a {
		t.Error("a library resolving elsewhere left the state unchanged")
	}
	if _, ok := ldCacheState([]byte("ld.so-1.7.0"), names); ok {
		t.Error("an old-format cache parsed; it must be taken by its bytes")
	}
}
