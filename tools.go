//go:build tools

// Pins mage in go.mod for mage.go, which `go mod tidy` does not see.
package tools

import _ "github.com/magefile/mage/mage"
