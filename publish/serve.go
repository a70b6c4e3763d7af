package publish

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Request is one request the server answered.
type Request struct {
	Method string
	Path   string
	Status int
	Bytes  int64
}

// Server serves a publish repository as static files (what any web server
// or object store would do) and records every request, so tests can tell a
// delta pull from a pull of loose objects.
type Server struct {
	dir   string
	log   zerolog.Logger
	level zerolog.Level // of the per-request lines

	mu       sync.Mutex
	requests []Request
	srv      *http.Server
	ln       net.Listener
}

// NewServer serves dir; log gets one line per request (at debug level).
func NewServer(dir string, log zerolog.Logger) *Server {
	return &Server{dir: dir, log: log, level: zerolog.DebugLevel}
}

// Handler is the file server with request recording. Directory listings
// are off: a repository needs none, and ostree never asks for one.
func (s *Server) Handler() http.Handler {
	files := http.FileServer(noListing{http.Dir(s.dir)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rw, r)
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Status: rw.status, Bytes: rw.bytes})
		s.mu.Unlock()
		s.log.WithLevel(s.level).Str("method", r.Method).Str("path", r.URL.Path).Int("status", rw.status).Int64("bytes", rw.bytes).Msg("serve")
	})
}

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

// Start listens on addr (e.g. "127.0.0.1:0" for any free port) and serves
// in the background; it returns the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go s.srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Addr is the address Start listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the listener started by Start.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Serve serves dir on addr until ctx ends, logging each request.
func Serve(ctx context.Context, dir, addr string, log zerolog.Logger) error {
	s := NewServer(dir, log)
	s.level = zerolog.InfoLevel // a person watching `mage serve` sees each request
	url, err := s.Start(addr)
	if err != nil {
		return err
	}
	log.Info().Str("url", url).Str("dir", dir).Msg("serving the published repository; Ctrl-C stops")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// noListing answers a folder without index.html with 404 instead of a listing.
type noListing struct{ fs http.FileSystem }

func (n noListing) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		if idx, err := n.fs.Open(name + "/index.html"); err == nil {
			idx.Close()
			return f, nil
		}
		f.Close()
		return nil, os.ErrNotExist
	}
	return f, nil
}

// ServeEnv moves `mage serve` to another address (host:port).
const ServeEnv = "DEBIAN_ATOMIC_SERVE"

// DefaultServeAddr is loopback only: serving beyond the machine is a real
// web server's job.
const DefaultServeAddr = "127.0.0.1:8180"
