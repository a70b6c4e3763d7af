package lockresolve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// fetchTimeout bounds the whole freshness check; on a slow or unreachable
// mirror apt-get update runs and says what is wrong.
var fetchTimeout = 10 * time.Second

// stamp describes the archive as it is now: the configuration and keyring
// apt verifies with, and the SHA-256 of every InRelease the sources serve.
func (r *Resolver) stamp(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	sums := make([]string, len(r.urls))
	errs := make([]error, len(r.urls))
	var wg sync.WaitGroup
	for i, u := range r.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := fetch(ctx, u)
			if err != nil {
				errs[i] = err
				return
			}
			sum := sha256.Sum256(data)
			sums[i] = hex.EncodeToString(sum[:])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return r.stampOf(sums)
}

// listsStamp is the stamp of the lists apt keeps now.
func (r *Resolver) listsStamp() (string, error) {
	m, _ := filepath.Glob(filepath.Join(r.dir, "var/lib/apt/lists/*InRelease"))
	if len(m) != len(r.urls) {
		return "", fmt.Errorf("apt kept %d InRelease files for %d sources", len(m), len(r.urls))
	}
	var sums []string
	for _, f := range m {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	return r.stampOf(sums)
}

func (r *Resolver) stampOf(sums []string) (string, error) {
	var b strings.Builder
	for _, f := range []string{archiveKeyring, r.conf, filepath.Join(r.dir, "etc/apt/sources.list"), filepath.Join(r.dir, "etc/apt/sources.list.d/debian.sources")} {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s %s\n", hex.EncodeToString(sum[:]), f)
	}
	sums = append([]string(nil), sums...)
	sort.Strings(sums)
	for _, s := range sums {
		fmt.Fprintf(&b, "%s InRelease\n", s)
	}
	return b.String(), nil
}

// fetch reads an http(s) or file URL.
func fetch(ctx context.Context, u string) ([]byte, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	switch p.Scheme {
	case "file":
		return os.ReadFile(p.Path)
	case "http", "https":
	default:
		return nil, fmt.Errorf("cannot check %s", u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
