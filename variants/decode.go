package variants

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

type kind int

const (
	kString kind = iota
	kBool
	kList
	kMap
)

type field struct {
	name     string
	kind     kind
	required bool // in every file; baseOnly fields are required in base variants
	set      func(v *Variant, s string, b bool, l []string, m map[string]string)
}

// baseOnly fields decide the bootstrap, which a variant shares with the one it
// inherits from: only a base variant (without inherits) sets them.
var baseOnly = map[string]bool{"suite": true, "mirror": true, "architecture": true, "components": true, "bootstrap": true,
	"updates": true, "security-mirror": true}

// requiredInBase are required in a variant without inherits.
var requiredInBase = map[string]bool{"suite": true, "architecture": true, "os-name": true}

// fields is the variant file reference; README.md documents the same table.
var fields = []field{
	{"name", kString, true, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Name = s }},
	{"description", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Description = s }},
	{"inherits", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Inherits = s }},
	{"suite", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Suite = s }},
	{"mirror", kString, false, nil}, // resolved after decoding
	{"security-mirror", kString, false, nil},
	// A given list, even [], is non-nil: nil means "not set", the default.
	{"updates", kList, false, func(v *Variant, _ string, _ bool, l []string, _ map[string]string) { v.Updates = nonNil(l) }},
	{"architecture", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Architecture = s }},
	{"components", kList, false, func(v *Variant, _ string, _ bool, l []string, _ map[string]string) { v.Components = l }},
	{"bootstrap", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Bootstrap = s }},
	{"recommends", kBool, false, func(v *Variant, _ string, b bool, _ []string, _ map[string]string) { v.Recommends = b }},
	{"packages", kList, true, func(v *Variant, _ string, _ bool, l []string, _ map[string]string) { v.Packages = l }},
	{"sources", kList, false, func(v *Variant, _ string, _ bool, l []string, _ map[string]string) { v.Sources = l }},
	{"kernel-args", kList, false, func(v *Variant, _ string, _ bool, l []string, _ map[string]string) { v.KernelArgs = l }},
	{"os-name", kString, false, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.OSName = s }},
	{"ref", kString, true, func(v *Variant, s string, _ bool, _ []string, _ map[string]string) { v.Ref = s }},
	{"metadata", kMap, false, func(v *Variant, _ string, _ bool, _ []string, m map[string]string) { v.Metadata = m }},
	{"files", kMap, false, func(v *Variant, _ string, _ bool, _ []string, m map[string]string) { v.Files = m }},
	{"allowed-secrets", kMap, false, func(v *Variant, _ string, _ bool, _ []string, m map[string]string) { v.AllowedSecrets = m }},
}

func fieldNames() string {
	var n []string
	for _, f := range fields {
		n = append(n, f.name)
	}
	return strings.Join(n, ", ")
}

func decode(path string, data []byte) (*Variant, Errors) {
	v := &Variant{File: path, Components: []string{"main"}, Bootstrap: Mmdebstrap, Metadata: map[string]string{}}
	var errs Errors
	fail := func(line int, fieldName, format string, args ...any) {
		errs = append(errs, &Error{File: path, Line: line, Field: fieldName, Msg: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 messages start with "yaml: line N: ..."; keep them whole.
		fail(0, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, errs
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		fail(0, "", "the file is empty: it needs at least the fields %s", requiredNames(false))
		return nil, errs
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		fail(root.Line, "", "the top level must be a mapping of field: value (fields: %s)", fieldNames())
		return nil, errs
	}
	lines := map[string]int{}
	mirror, securityMirror := "", ""
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		name := k.Value
		f, ok := lookup(name)
		if !ok || k.Kind != yaml.ScalarNode {
			fail(k.Line, name, "unknown field%s (known fields: %s)", suggest(name), fieldNames())
			continue
		}
		if _, dup := lines[name]; dup {
			fail(k.Line, name, "given twice (first on line %d)", lines[name])
			continue
		}
		lines[name] = k.Line
		switch f.kind {
		case kString:
			s, msg := scalarString(val)
			if msg != "" {
				fail(val.Line, name, "%s", msg)
				continue
			}
			if name == "mirror" {
				mirror = s
				continue
			}
			if name == "security-mirror" {
				securityMirror = s
				continue
			}
			f.set(v, s, false, nil, nil)
		case kBool:
			if val.Kind != yaml.ScalarNode || val.ShortTag() != "!!bool" {
				fail(val.Line, name, "expected true or false, got %s", describe(val))
				continue
			}
			f.set(v, "", val.Value == "true" || val.Value == "True" || val.Value == "TRUE", nil, nil)
		case kList:
			if val.Kind != yaml.SequenceNode {
				fail(val.Line, name, "expected a list (items starting with '- '), got %s", describe(val))
				continue
			}
			var l []string
			for _, item := range val.Content {
				s, msg := scalarString(item)
				if msg != "" {
					fail(item.Line, name, "list item: %s", msg)
					continue
				}
				l = append(l, s)
			}
			f.set(v, "", false, l, nil)
		case kMap:
			if val.Kind != yaml.MappingNode {
				fail(val.Line, name, "expected a mapping of key: value, got %s", describe(val))
				continue
			}
			m := map[string]string{}
			for j := 0; j+1 < len(val.Content); j += 2 {
				mk, mv := val.Content[j], val.Content[j+1]
				s, msg := scalarString(mv)
				if msg != "" {
					fail(mv.Line, name, "key %q: %s", mk.Value, msg)
					continue
				}
				m[mk.Value] = s
			}
			f.set(v, "", false, nil, m)
		}
	}
	_, child := lines["inherits"]
	for _, f := range fields {
		_, ok := lines[f.name]
		switch {
		case child && ok && baseOnly[f.name]:
			fail(lines[f.name], f.name, "a variant that inherits sets no %s: it shares the bootstrap of %q; set it there", f.name, v.Inherits)
		case !ok && (f.required || !child && requiredInBase[f.name]):
			fail(0, f.name, "missing required field (required: %s)", requiredNames(child))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	sort.Strings(v.Packages)
	if !child {
		v.resolveMirror(mirror)
		if v.Updates == nil {
			v.Updates = slices.Clone(DefaultPockets)
			if slices.Contains(noPocketSuites, v.Suite) {
				v.Updates = []string{}
			}
		}
		v.resolveSecurity(securityMirror, mirror)
	}
	if errs := v.validate(lines, child); len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

func nonNil(l []string) []string { return append([]string{}, l...) }

func lookup(name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func requiredNames(child bool) string {
	var n []string
	for _, f := range fields {
		if f.required || !child && requiredInBase[f.name] {
			n = append(n, f.name)
		}
	}
	return strings.Join(n, ", ")
}

// scalarString accepts plain or quoted strings; a number or boolean where a
// string is expected is an error, so `suite: 13` cannot silently become "13".
func scalarString(n *yaml.Node) (string, string) {
	if n.Kind != yaml.ScalarNode {
		return "", "expected a string, got " + describe(n)
	}
	if n.ShortTag() != "!!str" {
		return "", fmt.Sprintf("expected a string, got %s (quote it if you mean the text)", describe(n))
	}
	return n.Value, ""
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!bool":
		return fmt.Sprintf("the boolean %s", n.Value)
	case "!!int", "!!float":
		return fmt.Sprintf("the number %s", n.Value)
	}
	return fmt.Sprintf("%q", n.Value)
}

// suggest names the closest known field for a likely typo.
func suggest(name string) string {
	best, dist := "", 3
	for _, f := range fields {
		if d := levenshtein(name, f.name); d < dist {
			best, dist = f.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
