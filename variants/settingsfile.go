package variants

import "go.yaml.in/yaml/v3"

// settingsFiles live beside the variant files but are not variants: List
// skips them. publish.yaml configures `mage publish` (package publish).
var settingsFiles = map[string]bool{"publish": true}

// IsSettingsFile reports whether NAME.yaml in a variants folder is a
// settings file rather than a variant.
func IsSettingsFile(name string) bool { return settingsFiles[name] }

// The helpers below let other settings files report problems exactly as
// variant files do (file:line, field, what to write instead).

// ScalarString returns a YAML value that is a string, or a message saying
// what it is instead.
func ScalarString(n *yaml.Node) (string, string) { return scalarString(n) }

// Describe names what a YAML value holds, for messages ("a list", "the number 3").
func Describe(n *yaml.Node) string { return describe(n) }

// Closest suggests the known name nearest to a likely typo: `; did you mean "x"?`, or "".
func Closest(name string, known []string) string {
	best, dist := "", 3
	for _, k := range known {
		if d := levenshtein(name, k); d < dist {
			best, dist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return `; did you mean "` + best + `"?`
}
