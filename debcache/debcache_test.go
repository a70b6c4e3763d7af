package debcache

import "testing"

// Names as apt writes them into its archives folder (seen in a real cache).
func TestDebFileSpellsAptsNames(t *testing.T) {
	for _, c := range []struct{ name, version, arch, want string }{
		{"bash-completion", "1:2.16.0-7", "all", "bash-completion_1%3a2.16.0-7_all.deb"},
		{"bash", "5.2.37-2+b10", "amd64", "bash_5.2.37-2+b10_amd64.deb"},
		{"flatpak", "1.16.6-1~deb13u4", "amd64", "flatpak_1.16.6-1~deb13u4_amd64.deb"},
		{"odd", "1%2_3", "amd64", "odd_1%252%5f3_amd64.deb"},
	} {
		if got := FileName(c.name, c.version, c.arch); got != c.want {
			t.Errorf("FileName(%s %s %s) = %s, want %s", c.name, c.version, c.arch, got, c.want)
		}
	}
}
