package remotecache

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/debian-atomic/builder/cache"
)

// Metadata keys of an entry commit.
const (
	MetaKey        = "debian-atomic.cache.key"
	MetaKind       = "debian-atomic.cache.kind"
	MetaResult     = "debian-atomic.cache.result"      // the result commit (the entry's parent)
	MetaResultSize = "debian-atomic.cache.result-size" // its object's size in a bare store
	MetaTreeSize   = "debian-atomic.cache.tree-size"
	MetaInputs     = "debian-atomic.cache.inputs" // JSON list of {label, value}: the key's preimage
	MetaStep       = "debian-atomic.cache.step"   // e.g. install:minimal, for people reading it
)

var metaKeys = []string{MetaKey, MetaKind, MetaResult, MetaResultSize, MetaTreeSize, MetaInputs, MetaStep}

// Entry is what an entry commit says about one step result.
type Entry struct {
	Key        cache.Key
	Kind       string
	Step       string
	Result     string
	ResultSize int64
	TreeSize   int64
	Inputs     []cache.Field
}

// Ref is the remote ref of a step key.
func Ref(kind string, key cache.Key) string { return "cache/" + kind + "/" + string(key) }

// Strings is the entry as commit metadata strings.
func (e Entry) Strings() (map[string]string, error) {
	inputs, err := json.Marshal(e.Inputs)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		MetaKey: string(e.Key), MetaKind: e.Kind, MetaStep: e.Step, MetaResult: e.Result,
		MetaResultSize: strconv.FormatInt(e.ResultSize, 10), MetaTreeSize: strconv.FormatInt(e.TreeSize, 10),
		MetaInputs: string(inputs),
	}, nil
}

// ParseEntry reads an entry commit's metadata strings and checks them
// against what was asked for: the key and kind, the entry's parent (the
// result commit), and inputs that hash to the key. Any mismatch is an error:
// a server cannot pass one key's result off as another's.
func ParseEntry(meta map[string]string, kind string, key cache.Key, parent string) (Entry, error) {
	e := Entry{Key: cache.Key(meta[MetaKey]), Kind: meta[MetaKind], Step: meta[MetaStep], Result: meta[MetaResult]}
	var err error
	switch {
	case e.Key != key:
		return e, fmt.Errorf("the entry is for key %q, not %s", e.Key.Short(), key.Short())
	case e.Kind != kind:
		return e, fmt.Errorf("the entry is a %q result, not %s", e.Kind, kind)
	case e.Result == "" || e.Result != parent:
		return e, fmt.Errorf("the entry names result %q but its parent is %q", e.Result, parent)
	}
	if e.ResultSize, err = strconv.ParseInt(meta[MetaResultSize], 10, 64); err != nil || e.ResultSize <= 0 {
		return e, fmt.Errorf("the entry's %s is %q, not a size", MetaResultSize, meta[MetaResultSize])
	}
	if e.TreeSize, err = strconv.ParseInt(meta[MetaTreeSize], 10, 64); err != nil || e.TreeSize < 0 {
		return e, fmt.Errorf("the entry's %s is %q, not a size", MetaTreeSize, meta[MetaTreeSize])
	}
	if err := json.Unmarshal([]byte(meta[MetaInputs]), &e.Inputs); err != nil {
		return e, fmt.Errorf("the entry's %s is not a list of inputs: %v", MetaInputs, err)
	}
	var pre cache.Preimage
	for _, f := range e.Inputs {
		pre.Add(f.Label, f.Value)
	}
	if sum := pre.Sum(); sum != key {
		return e, fmt.Errorf("the entry's inputs hash to %s, not to its key %s", sum.Short(), key.Short())
	}
	return e, nil
}
