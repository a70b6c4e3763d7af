package image

import (
	"strings"
	"testing"
)

func TestTreeSizeAndFit(t *testing.T) {
	out := []byte("d00755 0 0      0 /\nl00777 0 0      0 /bin -> usr/bin\n-00644 0 0 1048576 /usr/a\n-00755 0 0 524288 /usr/b\nd00755 0 0 0 /usr\n")
	if got := sumRegular(out); got != 2 {
		t.Errorf("sum %d MiB, want 2 (1.5 MiB rounded up)", got)
	}
	if NeededMiB(2800) <= 2800 || NeededMiB(2800) > 6*1024 {
		t.Errorf("a 2.8 GiB tree needs %d MiB", NeededMiB(2800))
	}
	c := Config{DiskSize: "2G", file: "images/gnome.yaml"}
	err := fitError(c, "gnome", 2800)
	if err == nil || !strings.Contains(err.Error(), `images/gnome.yaml: field "disk-size": 2G is too small for gnome, whose tree is 2800 MiB: set disk-size: 5G or more`) {
		t.Errorf("%v", err)
	}
	if err := fitError(Config{DiskSize: "12G"}, "gnome", 2800); err != nil {
		t.Error(err)
	}
}
