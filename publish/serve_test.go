package publish

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestServerServesFilesAndRecordsRequests(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "objects", "ab"), 0o755)
	os.WriteFile(filepath.Join(dir, "config"), []byte("[core]\n"), 0o644)
	srv := NewServer(dir, zerolog.Nop())
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/config"); code != 200 || body != "[core]\n" {
		t.Fatalf("GET /config: %d %q", code, body)
	}
	if code, _ := get("/objects/ab/"); code != 404 {
		t.Fatalf("a folder is listed: %d", code)
	}
	if code, _ := get("/summary"); code != 404 {
		t.Fatalf("GET of a missing file: %d", code)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/config" || reqs[0].Bytes != 7 || reqs[2].Status != 404 {
		t.Fatalf("recorded %+v", reqs)
	}
	srv.Reset()
	if len(srv.Requests()) != 0 {
		t.Fatal("Reset kept requests")
	}
}

func TestPullFiguresTellDeltaFromLooseObjects(t *testing.T) {
	delta := figures([]Request{{Path: "/summary"}, {Path: "/summary.sig"}, {Path: "/delta-indexes/ab/cd.index"},
		{Path: "/deltas/DD/jo-vU/superblock", Bytes: 100}, {Path: "/deltas/DD/jo-vU/0", Bytes: 900}}, time.Second)
	if !delta.Superblock || delta.Loose != 0 || delta.Requests != 5 || delta.Bytes != 1000 {
		t.Fatalf("delta pull %+v", delta)
	}
	full := figures([]Request{{Path: "/objects/ab/cd.commit"}, {Path: "/objects/ab/cd.dirtree"}, {Path: "/objects/ab/ef.filez"}, {Path: "/objects/ab/ef.dirmeta"}}, time.Second)
	if full.Superblock || full.Loose != 3 {
		t.Fatalf("full pull %+v", full)
	}
}
