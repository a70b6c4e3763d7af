// Package remotecache shares step results between machines over OSTree's
// own pull protocol: any static web server or object store serves it, pulls
// fetch only the objects a store lacks, and GPG signatures are checked by
// ostree itself.
//
// Layout of a remote cache (an archive-mode repository, `mage cache:push
// DIR` writes it): for each step key, the ref cache/KIND/KEY names a small
// signed "entry" commit whose parent is the step's result commit, exactly
// as the pushing builder stored it (content only, fixed timestamp; signed
// too, in detached metadata, so its checksum does not change), and whose
// tree is the result's tree. The entry's metadata (debian-atomic.cache.*)
// is what the local index needs: the key, step kind, result commit and its
// object size, tree size, and the key's labelled inputs. It is covered by
// the entry's signature, and ostree's ref binding ties the entry to its
// ref. The summary is signed too.
//
// On a local miss (Remote.Fetch), the store pulls the entry's commits only
// (signatures checked) within a short deadline, the metadata is checked
// against the key asked for (the inputs must hash to it), then the trees
// come over (each object checked by ostree against its checksum). The store
// then holds the result commit under its usual ref; the builder indexes it
// after the same check a local hit gets. A key the remote does not have is
// a quiet miss; anything else (unreachable, 404, a stall past the deadline,
// unsigned, another key, a damaged object, metadata that does not match)
// is one warning, and the remote is not asked again in that build.
package remotecache
