package dracuttrace

import (
	"slices"
	"testing"
)

func TestStraceArgs(t *testing.T) {
	args := StraceArgs("/t")
	if args[0] != "strace" || args[len(args)-1] != "/t" || !slices.Contains(args, "--seccomp-bpf") || !slices.Contains(args, "-f") {
		t.Errorf("StraceArgs: %q", args)
	}
}
