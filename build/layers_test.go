package build

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/debian-atomic/builder/variants"
)

func (e *testEnv) writeVariant(name, body string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.cfg.VariantsDir, name+".yaml"), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func child(name, parent string, pkgs ...string) string {
	return "name: " + name + "\ninherits: " + parent + "\nref: test/" + name + "\npackages: [" + strings.Join(pkgs, ", ") + "]\n"
}

func (e *testEnv) buildNamed(names ...string) []Report {
	e.t.Helper()
	reps, err := Variants(context.Background(), e.cfg, names)
	if err != nil {
		e.t.Fatal(err)
	}
	if m := e.runner.stillMounted(); len(m) > 0 {
		e.t.Errorf("still mounted: %v", m)
	}
	return reps
}

func TestChildrenReuseTheirParentsLayers(t *testing.T) {
	e := newTestEnv(t, "hello") // variant t is the base
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.writeVariant("c2", child("c2", "t", "tree"))
	base := e.buildNamed("t")[0]
	reps := e.buildNamed("c1", "c2")
	for _, r := range reps {
		want := []string{"install:" + r.Variant, StepPostprocess, StepCommit}
		if got := ranNames(r); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want %v (the base's layers cached)", r.Variant, got, want)
		}
		if r.Steps[1].Result != base.Steps[1].Result {
			t.Errorf("%s does not build on the base's install result", r.Variant)
		}
	}
	if n := e.runner.count("mmdebstrap"); n != 1 {
		t.Errorf("bootstrap ran %d times", n)
	}
	before := map[string]string{}
	for _, r := range e.buildNamed("t", "c1", "c2") {
		if r.Ran() != 0 {
			t.Errorf("no-op build of %s ran %v", r.Variant, ranNames(r))
		}
		before[r.Variant] = r.Commit
	}

	// Editing one child rebuilds that child only.
	e.writeVariant("c1", child("c1", "t", "zsh", "tree"))
	names, _ := Ordered(e.cfg.VariantsDir)
	after := e.buildNamed(names...)
	for _, r := range after {
		switch r.Variant {
		case "c1":
			if r.Commit == before["c1"] || !slices.Equal(ranNames(r), []string{"install:c1", StepPostprocess, StepCommit}) {
				t.Errorf("edited child: ran %v, commit %s", ranNames(r), r.Commit)
			}
		default:
			if r.Ran() != 0 || r.Commit != before[r.Variant] {
				t.Errorf("%s rebuilt after another variant's edit: ran %v", r.Variant, ranNames(r))
			}
		}
	}
	// The child's commit lists its parent's packages and its own.
	pk, _ := e.cfg.outRepo().Metadata(context.Background(), after[1].Commit, MetaPackages)
	for _, p := range []string{"'hello'", "'zsh'", "'tree'", "'base-files'"} {
		if !strings.Contains(pk, p) {
			t.Errorf("c1's package metadata lacks %s", p)
		}
	}
}

func TestLockedVersionsDriveRebuilds(t *testing.T) {
	e := newTestEnv(t, "hello")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.buildNamed("t", "c1")
	// The archive moves on: a newer version of everything.
	fakeVersion = "2.0-1"
	defer func() { fakeVersion = "1.0-1" }()
	// Without update, builds keep the lock: nothing runs.
	for _, r := range e.buildNamed("t", "c1") {
		if r.Ran() != 0 {
			t.Errorf("%s rebuilt without mage update: %v", r.Variant, ranNames(r))
		}
	}
	changes, err := Update(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || !slices.Contains(changes[1].Changes, " zsh 1.0-1 -> 2.0-1") {
		t.Errorf("update reported %+v", changes)
	}
	for _, r := range e.buildNamed("t", "c1") {
		if r.Ran() == 0 {
			t.Errorf("%s not rebuilt after its locked versions changed", r.Variant)
		}
	}
}

func TestInheritanceErrors(t *testing.T) {
	e := newTestEnv(t, "hello")
	e.writeVariant("a", child("a", "b", "zsh"))
	e.writeVariant("b", child("b", "a", "zsh"))
	e.writeVariant("orphan", child("orphan", "nosuch", "zsh"))
	e.writeVariant("setsuite", child("setsuite", "t", "zsh")+"suite: bookworm\n")
	for name, want := range map[string][]string{
		"a":        {"inheritance cycle: a -> b -> a"},
		"orphan":   {"orphan.yaml", `"inherits"`, `"nosuch"`, "orphan -> nosuch"},
		"setsuite": {"setsuite.yaml:5", `field "suite"`, "inherits"},
	} {
		_, err := variants.LoadChain(e.cfg.VariantsDir, name)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v does not mention %q", name, err, w)
			}
		}
		if _, err := Variants(context.Background(), e.cfg, []string{name}); err == nil {
			t.Errorf("%s built", name)
		}
	}
	if n := len(e.runner.calls); n != 0 {
		t.Errorf("bad variants ran commands: %v", e.runner.calls)
	}
}

func TestStatusSaysWhatWouldRebuildAndWhy(t *testing.T) {
	e := newTestEnv(t, "hello")
	e.writeVariant("c1", child("c1", "t", "zsh"))
	e.buildNamed("t", "c1")
	byName := func() map[string]VariantStatus {
		st, err := Status(context.Background(), e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]VariantStatus{}
		for _, s := range st {
			m[s.Variant] = s
		}
		return m
	}
	for name, s := range byName() {
		if !s.UpToDate || s.Commit == "" || s.Version == "" {
			t.Errorf("%s after a build: %+v", name, s)
		}
	}
	e.writeVariant("c1", child("c1", "t", "zsh", "tree"))
	st := byName()
	if st["t"].UpToDate != true {
		t.Errorf("the base is not up to date after a child's edit: %+v", st["t"])
	}
	c1 := st["c1"]
	if c1.UpToDate || c1.Rebuild != "lock" || !strings.Contains(strings.Join(c1.Why, " "), "c1.yaml changed") {
		t.Errorf("edited child: %+v", c1)
	}
	// A base edit makes its children stale through it, and status says so.
	base := mustRead(t, filepath.Join(e.cfg.VariantsDir, "t.yaml"))
	e.setPackages("hello", "tree")
	if why := strings.Join(byName()["c1"].Why, " "); !strings.Contains(why, "c1 is locked on an earlier t") {
		t.Errorf("child of an edited base: %s", why)
	}
	os.WriteFile(filepath.Join(e.cfg.VariantsDir, "t.yaml"), []byte(base), 0o644)
	// Once locked, status names the step and the changed input.
	e.buildNamed("c1")
	e.writeVariant("t", strings.Replace(mustRead(t, filepath.Join(e.cfg.VariantsDir, "t.yaml")), "ref: test/t", "ref: test/t2", 1))
	st = byName()
	if st["t"].UpToDate || st["t"].Rebuild != StepCommit || !strings.Contains(strings.Join(st["t"].Why, " "), `ref: "test/t" -> "test/t2"`) {
		t.Errorf("changed ref: %+v", st["t"])
	}
}

// A layer's files land in its commit (/etc as /usr/etc); editing one
// reruns that layer's install without apt, removing one installs afresh.
func TestLayerFilesAreWrittenAndFollowEdits(t *testing.T) {
	e := newTestEnv(t, "hello")
	withFiles := func(files string) string {
		return child("c1", "t", "zsh") + "files:\n" + files
	}
	e.writeVariant("c1", withFiles("  /etc/sway/config.d/50-applets.conf: \"exec nm-applet --indicator\\n\"\n  /usr/share/c1/note: one\n"))
	r := e.buildNamed("c1")[0]
	ctx := context.Background()
	cat := func(commit, path string) string {
		b, err := e.cfg.outRepo().Cat(ctx, commit, path)
		if err != nil {
			return "(" + err.Error() + ")"
		}
		return string(b)
	}
	if got := cat(r.Commit, "/usr/etc/sway/config.d/50-applets.conf"); got != "exec nm-applet --indicator\n" {
		t.Errorf("the /etc file in the commit: %q", got)
	}
	if got := cat(r.Commit, "/usr/share/c1/note"); got != "one" {
		t.Errorf("the /usr file in the commit: %q", got)
	}

	apt := e.runner.count("chroot") // apt runs in the tree through chroot
	e.writeVariant("c1", withFiles("  /etc/sway/config.d/50-applets.conf: \"exec nm-applet --indicator\\n\"\n  /usr/share/c1/note: two\n"))
	r = e.buildNamed("c1")[0]
	if got := ranNames(r); !slices.Equal(got, []string{"install:c1", StepPostprocess, StepCommit}) {
		t.Errorf("after editing a file, ran %v", got)
	}
	if got := cat(r.Commit, "/usr/share/c1/note"); got != "two" {
		t.Errorf("the edited file in the commit: %q", got)
	}
	if n := e.runner.count("chroot") - apt; n > 0 {
		t.Errorf("editing a file ran %d commands in the tree; it needs none", n)
	}

	e.writeVariant("c1", withFiles("  /usr/share/c1/note: two\n"))
	r = e.buildNamed("c1")[0]
	if got := cat(r.Commit, "/usr/etc/sway/config.d/50-applets.conf"); !strings.HasPrefix(got, "(") {
		t.Errorf("a file the variant no longer has is still in the commit: %q", got)
	}
	if e.runner.count("chroot") == apt {
		t.Error("removing a file did not install the layer afresh")
	}
}
