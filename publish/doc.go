// Package publish turns the builder's output repository into a signed,
// static OSTree repository that any web server or object store can serve,
// and serves it for tests and VMs.
//
// The publish repository (default CACHE/publish, moved by
// DEBIAN_ATOMIC_PUBLISH or the settings' repo field) is in archive mode.
// Publishing a ref (Publish), holding the build lock:
//   - brings the built commit in unchanged, so the published checksum is
//     the built one (the one images deploy and `mage status` shows), with
//     the builds made since the last publish as its parents, up to the
//     retention depth. The output repository chains a ref's commits
//     already, so history keeps its parents without rewriting anything. A
//     commit that does not descend from the published one (the output
//     repository was made afresh) is published whole, without a delta;
//   - signs every commit brought in with the settings' GPG key;
//   - makes a static delta from the previously published commit (one
//     inline file up to InlineDeltaMax);
//   - moves the ref, prunes history beyond the retention depth with the
//     deltas that start or end at pruned commits, and regenerates the
//     summary, signed.
//
// Publishing with nothing new writes nothing. Settings come from
// variants/publish.yaml (LoadSettings); Keygen makes a key and records it
// so that Publish works with no editing; Server and Serve serve the result.
package publish
