package build

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/cache"
	"github.com/debian-atomic/builder/ostreeops"
)

// fakeRemote serves the results of another test project's store; bad
// makes it hand out a result that is not what it claims.
type fakeRemote struct {
	from    ostreeops.Repo
	entries map[cache.Key]cache.Entry
	calls   []string
	err     error // returned by every Fetch when set
	bad     bool  // claim a wrong commit size
}

func (f *fakeRemote) Fetch(ctx context.Context, store ostreeops.Repo, kind string, key cache.Key) (RemoteResult, error) {
	f.calls = append(f.calls, kind)
	if f.err != nil {
		return RemoteResult{}, f.err
	}
	e, ok := f.entries[key]
	if !ok {
		return RemoteResult{}, ErrRemoteMiss
	}
	if err := store.PullLocal(ctx, f.from.Path, e.Result); err != nil {
		return RemoteResult{}, err
	}
	size := e.Size
	if f.bad {
		size++
	}
	return RemoteResult{Result: e.Result, Size: size, TreeSize: e.TreeSize}, nil
}

// remoteOf builds a project and returns a remote holding its results.
func remoteOf(t *testing.T) (*fakeRemote, Report) {
	a := newTestEnv(t, "hello")
	rep := a.mustBuild()
	idx, err := cache.OpenIndex(a.cfg.indexPath(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	entries, _ := idx.Entries()
	return &fakeRemote{from: a.cfg.storeRepo(), entries: entries}, rep
}

// withLog makes e log into a buffer, to count warnings.
func withLog(e *testEnv) *bytes.Buffer {
	var buf bytes.Buffer
	// Background stores log from their own goroutines.
	e.cfg.Log = zerolog.New(zerolog.SyncWriter(&buf)).Level(zerolog.DebugLevel)
	return &buf
}

func warnings(buf *bytes.Buffer) int {
	return strings.Count(buf.String(), `"level":"warn"`)
}

func TestRemoteHitsOnLocalMissOnly(t *testing.T) {
	remote, repA := remoteOf(t)
	b := newTestEnv(t, "hello")
	b.cfg.Remote = remote
	log := withLog(b)
	rep := b.mustBuild()
	if got := ranSteps(rep); !slices.Equal(got, []string{StepCommit}) {
		t.Fatalf("with every step in the remote, ran %v", got)
	}
	for _, s := range rep.Steps {
		if s.Step != StepCommit && !s.Remote {
			t.Errorf("step %s not a remote hit", s.Name)
		}
	}
	if !slices.Equal(remote.calls, []string{StepBootstrap, StepInstall, StepPostprocess}) || warnings(log) != 0 {
		t.Fatalf("remote asked %v, %d warnings", remote.calls, warnings(log))
	}
	if !strings.Contains(log.String(), "install:t: remote hit") {
		t.Errorf("no remote hit logged:\n%s", log)
	}
	if rep.Steps[len(rep.Steps)-1].Result == "" || repA.Commit == "" {
		t.Fatal("no commit")
	}
	// Local hits now: a no-op build never asks the remote.
	remote.calls = nil
	if again := b.mustBuild(); len(ranSteps(again)) != 0 || len(remote.calls) != 0 {
		t.Fatalf("no-op build ran %v and asked the remote %v", ranSteps(again), remote.calls)
	}
}

func TestRemoteFailureIsAWarningAndALocalBuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*fakeRemote)
		warn int
	}{
		{"unreachable", func(f *fakeRemote) { f.err = errors.New("connection refused") }, 3},
		{"not there", func(f *fakeRemote) { f.entries = nil }, 0},
		{"wrong result", func(f *fakeRemote) { f.bad = true }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote, _ := remoteOf(t)
			tc.set(remote)
			b := newTestEnv(t, "hello")
			b.cfg.Remote = remote
			log := withLog(b)
			rep := b.mustBuild()
			if got := ranSteps(rep); !slices.Equal(got, Steps) {
				t.Fatalf("ran %v, want every step", got)
			}
			// The builder warns once per failed Fetch; remotecache.Remote
			// answers a quiet miss after its first failure.
			if w := warnings(log); w != tc.warn {
				t.Errorf("%d warnings, want %d:\n%s", w, tc.warn, log)
			}
			idx, err := cache.OpenIndex(b.cfg.indexPath(), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer idx.Close()
			entries, _ := idx.Entries()
			for k, e := range entries {
				if e.Kind == StepCommit {
					continue // in the output repository
				}
				if err := b.cfg.storeRepo().VerifyCommit(e.Result, e.Size); err != nil {
					t.Errorf("index holds %s, which fails its check: %v", k.Short(), err)
				}
			}
		})
	}
}
