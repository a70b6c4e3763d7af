// Package pipeline holds the tests of the CI pipeline files users copy:
// .github/workflows/build.yml (checked with actionlint), .gitlab-ci.yml
// and .ci/pipeline (every `mage` target they name must exist).
package pipeline
