package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b\011`: "/mnt/a b\t", `/plain`: "/plain", `/end\04`: `/end\04`, `/x\999`: `/x\999`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
