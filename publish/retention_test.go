package publish

import (
	"slices"
	"testing"

	"github.com/debian-atomic/builder/ostreeops"
)

func TestRetentionKeepsNewestPerRefAndDeltasBetweenKept(t *testing.T) {
	chains := map[string][]string{
		"a": {"a5", "a4", "a3", "a2", "a1"},
		"b": {"b2", "b1"},
	}
	present := []string{"a1", "a2", "a3", "a4", "a5", "b1", "b2", "orphan"}
	deltas := []ostreeops.Delta{d("a1", "a2"), d("a2", "a3"), d("a3", "a4"), d("a4", "a5"), d("b1", "b2"), d("orphan", "b2"), d("gone", "a5")}
	commits, gone := retention(chains, present, deltas, 3)
	if want := []string{"a1", "a2", "orphan"}; !slices.Equal(commits, want) {
		t.Errorf("pruned commits %v, want %v", commits, want)
	}
	// To a pruned commit, or from one (including one no longer there).
	want := []ostreeops.Delta{d("a1", "a2"), d("a2", "a3"), d("orphan", "b2"), d("gone", "a5")}
	if !slices.Equal(gone, want) {
		t.Errorf("pruned deltas %v, want %v", gone, want)
	}
	// keep 1: only heads, and no delta can stay.
	commits, gone = retention(chains, present, deltas, 1)
	if len(commits) != 6 || len(gone) != len(deltas) {
		t.Errorf("keep 1: %v %v", commits, gone)
	}
	// Nothing beyond the depth: nothing goes.
	commits, gone = retention(chains, present[:7], deltas[:5], 5)
	if len(commits) != 0 || len(gone) != 0 {
		t.Errorf("keep 5: %v %v", commits, gone)
	}
}

func TestDeltaFromPreviousPublishedCommit(t *testing.T) {
	cases := []struct {
		old       string
		ancestors []string
		keep      int
		from      string
		bring     int
	}{
		{"p1", []string{"p1", "p2"}, 10, "p1", 0},             // published every build
		{"p3", []string{"p1", "p2", "p3", "p4"}, 10, "p3", 2}, // two builds in between come along
		{"p3", []string{"p1", "p2", "p3"}, 3, "", 2},          // p3 would be the 4th of 3: pruned, no delta
		{"p2", []string{"p1", "p2", "p3"}, 3, "p2", 1},
		{"p1", []string{"p1"}, 1, "", 0},           // keep 1: history is the head alone
		{"x", []string{"p1", "p2"}, 10, "", 2},     // rebuilt output repository: history restarts
		{"", nil, 10, "", 0},                       // first publish of a first build
		{"", []string{"p1", "p2", "p3"}, 2, "", 1}, // first publish: parents up to the depth
	}
	for _, c := range cases {
		from, bring := deltaFrom(c.old, c.ancestors, c.keep)
		if from != c.from || bring != c.bring {
			t.Errorf("deltaFrom(%q, %v, %d) = %q, %d; want %q, %d", c.old, c.ancestors, c.keep, from, bring, c.from, c.bring)
		}
	}
}

func d(from, to string) ostreeops.Delta { return ostreeops.Delta{From: from, To: to} }
