package cache

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// Lasts lists the most recent key of every variant's step ("variant/step"
// -> key and labelled inputs): the results the last builds made, which the
// remote cache pushes with their inputs.
func (x *Index) Lasts() (map[string]Last, error) {
	out := map[string]Last{}
	err := x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(lastBucket).ForEach(func(k, v []byte) error {
			var l Last
			if json.Unmarshal(v, &l) == nil && l.Key != "" {
				out[string(k)] = l
			}
			return nil
		})
	})
	return out, err
}
