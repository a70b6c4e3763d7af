package dracuttrace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
)

// ld.so.cache changes whenever any package adds a library, so its bytes
// would make every child layer that adds libraries (gnome on minimal) rerun
// dracut. What the cache decides for dracut's processes is only which file a
// library name resolves to. So the manifest keeps the cache's entries for
// the library names the trace shows (as the basename of any path looked up:
// a name the cache lacked at the time was searched for in the default folders,
// so it is in the trace as well), and the tree matches when those entries
// are the same. A cache that does not parse is taken by its bytes.

const ldCacheMagic = "glibc-ld.so.cache1.1"

// ldCacheEntries reads the library name -> path entries of a glibc cache
// (the format glibc writes since 2.32).
func ldCacheEntries(data []byte) ([][2]string, error) {
	const header, entrySize = 48, 24
	if len(data) < header || string(data[:len(ldCacheMagic)]) != ldCacheMagic {
		return nil, errors.New("not a glibc-ld.so.cache1.1 file")
	}
	n := binary.LittleEndian.Uint32(data[20:24])
	if uint64(header)+uint64(n)*entrySize > uint64(len(data)) {
		return nil, errors.New("truncated")
	}
	str := func(off uint32) (string, error) {
		if uint64(off) >= uint64(len(data)) {
			return "", errors.New("string offset out of range")
		}
		end := bytes.IndexByte(data[off:], 0)
		if end < 0 {
			return "", errors.New("unterminated string")
		}
		return string(data[off : int(off)+end]), nil
	}
	out := make([][2]string, 0, n)
	for i := uint32(0); i < n; i++ {
		e := data[header+i*entrySize:]
		k, err := str(binary.LittleEndian.Uint32(e[4:8]))
		if err != nil {
			return nil, err
		}
		v, err := str(binary.LittleEndian.Uint32(e[8:12]))
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// ldCacheState is the cache's entries for the names dracut's processes
// could have asked it about.
func ldCacheState(data []byte, names map[string]bool) (string, bool) {
	entries, err := ldCacheEntries(data)
	if err != nil {
		return "", false
	}
	var keep []string
	for _, e := range entries {
		if names[e[0]] {
			keep = append(keep, e[0]+"="+e[1])
		}
	}
	sort.Strings(keep)
	return "ldcache:" + strings.Join(keep, ","), true
}
