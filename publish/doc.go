// Package publish turns the builder's output repository into a signed,
// static OSTree repository that any web server or object store can serve,
// and serves it for tests and VMs.
//
// The publish repository (default .cache/publish, moved by
// DEBIAN_ATOMIC_PUBLISH or the settings' repo field) is in archive mode.
// Publishing a ref:
//   - brings the built commit in unchanged (same checksum as in the output
//     repository and in images made from it), with the commits between it
//     and the previously published one, so history keeps its parents;
//   - signs every commit brought in with the GPG key of the settings;
//   - generates a static delta from the previously published commit;
//   - moves the ref, prunes history beyond the retention depth with the
//     deltas that lead from or to pruned commits, and regenerates and
//     signs the summary.
//
// Publishing with nothing new writes nothing. Settings come from
// variants/publish.yaml (LoadSettings); `mage keygen` (Keygen) makes a key
// so that `mage publish` (Publish) works with no editing.
package publish
