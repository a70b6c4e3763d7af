package run

import (
	"context"
	"strings"
	"testing"
)

func TestErrorKeepsTailAndEarlierErrors(t *testing.T) {
	script := `echo "dpkg: error processing package x (--configure):" >&2; for i in $(seq 1 100); do echo "line $i"; done; exit 3`
	_, err := Exec{}.Run(context.Background(), Cmd{Args: []string{"sh", "-c", script}})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", "dpkg: error processing package x", "line 100", "line 61"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 50\n") {
		t.Errorf("message keeps too much:\n%s", msg)
	}
}

func TestOnlyEnvHidesTheHostEnvironment(t *testing.T) {
	t.Setenv("TMPDIR", "/nonexistent-host-tmp")
	out, err := Exec{}.Run(context.Background(), Cmd{Args: []string{"/usr/bin/env"}, Env: []string{"A=1"}, OnlyEnv: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "TMPDIR") || !strings.Contains(string(out), "A=1") {
		t.Errorf("environment inside: %s", out)
	}
}
