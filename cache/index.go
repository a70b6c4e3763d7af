package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	stepsBucket = []byte("steps") // key -> Entry
	lastBucket  = []byte("last")  // variant/step -> Last
)

// Entry is one stored step result.
type Entry struct {
	Kind     string        `json:"kind"`
	Variant  string        `json:"variant"`
	Result   string        `json:"result"`    // content digest of the result (an OSTree commit in the store)
	Size     int64         `json:"size"`      // size of the stored result object, checked on every hit
	TreeSize int64         `json:"tree_size"` // bytes in the tree, for the summary
	Created  time.Time     `json:"created"`
	Duration time.Duration `json:"duration"`
}

// Last remembers the most recent key of a variant's step, with its preimage,
// so status can say why a step would rebuild.
type Last struct {
	Key    Key     `json:"key"`
	Fields []Field `json:"fields"`
}

// Index is the bbolt index of step results.
type Index struct {
	db *bolt.DB
}

// ErrBusy means another build holds the index.
var ErrBusy = errors.New("the cache index is in use by another build")

// OpenIndex opens (creating) the index file; it waits up to timeout for
// another process that holds it.
func OpenIndex(path string, timeout time.Duration) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrBusy, path)
	}
	if err != nil {
		return nil, fmt.Errorf("cache index %s is damaged (%v): run `mage clean` to start afresh", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{stepsBucket, lastBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cache index %s: %w", path, err)
	}
	return &Index{db: db}, nil
}

// Close releases the index.
func (x *Index) Close() error { return x.db.Close() }

// Get returns the entry for key, if any; a damaged record is no entry.
func (x *Index) Get(key Key) (Entry, bool) {
	var e Entry
	found := false
	x.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(stepsBucket).Get([]byte(key))
		if raw != nil && json.Unmarshal(raw, &e) == nil && e.Result != "" {
			found = true
		}
		return nil
	})
	return e, found
}

// Put records a result. Callers put it only after the result itself is
// stored, so a crash can leave an unused result but never a false hit.
func (x *Index) Put(key Key, e Entry, variant, step string, fields []Field) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	last, err := json.Marshal(Last{Key: key, Fields: fields})
	if err != nil {
		return err
	}
	return x.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(stepsBucket).Put([]byte(key), raw); err != nil {
			return err
		}
		return tx.Bucket(lastBucket).Put([]byte(variant+"/"+step), last)
	})
}

// Delete forgets a key (its result failed validation).
func (x *Index) Delete(key Key) error {
	return x.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(stepsBucket).Delete([]byte(key))
	})
}

// Last returns the most recent key recorded for a variant's step.
func (x *Index) Last(variant, step string) (Last, bool) {
	var l Last
	found := false
	x.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(lastBucket).Get([]byte(variant + "/" + step))
		if raw != nil && json.Unmarshal(raw, &l) == nil {
			found = true
		}
		return nil
	})
	return l, found
}

// Entries lists every stored entry (for garbage collection and tests).
func (x *Index) Entries() (map[Key]Entry, error) {
	out := map[Key]Entry{}
	err := x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(stepsBucket).ForEach(func(k, v []byte) error {
			var e Entry
			if json.Unmarshal(v, &e) == nil {
				out[Key(k)] = e
			}
			return nil
		})
	})
	return out, err
}

// Validator checks that a stored result is intact.
type Validator func(Entry) error

// Lookup returns the entry for key when its result validates. A result that is
// missing or damaged is a miss: its entry is dropped and the reason returned.
func (x *Index) Lookup(key Key, valid Validator) (Entry, bool, string) {
	e, ok := x.Get(key)
	if !ok {
		return Entry{}, false, "not in cache"
	}
	if err := valid(e); err != nil {
		x.Delete(key)
		return Entry{}, false, "cached result damaged: " + err.Error()
	}
	return e, true, ""
}
