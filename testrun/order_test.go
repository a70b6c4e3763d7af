package testrun

import (
	"slices"
	"strings"
	"testing"
)

func TestLongPackagesStartFirst(t *testing.T) {
	const m = "github.com/debian-atomic/builder"
	pkgs := strings.Fields(m + "/bench\n" + m + "/build\n" + m + "/cache\n" + m + "/desktopcheck\n" + m + "/image\n" + m + "/image/sub\n" + m + "/iso\n" + m + "/variants\n")
	got := Order(m, pkgs)
	want := []string{m + "/image", m + "/iso", m + "/desktopcheck", m + "/build", m + "/bench", m + "/cache", m + "/image/sub", m + "/variants"}
	if !slices.Equal(got, want) {
		t.Errorf("order\n%v\nwant\n%v", got, want)
	}
}
