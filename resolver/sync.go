package resolver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// policy is one verified list, compiled. It is replaced whole, atomically.
// It keeps only the matcher and the list's identity: the entries
// themselves (site ids, categories) are not needed to answer queries, and
// dropping them halves the memory a large list takes.
type policy struct {
	scope   string
	version int64
	sha256  string
	entries int
	matcher *allowlist.Matcher
}

// SyncError says why a list was refused; Reason is the metric label.
type SyncError struct {
	Reason string
	Err    error
}

func (e *SyncError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

func syncErr(reason string, format string, args ...any) error {
	return &SyncError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// maxListBytes bounds a fetched list (a 1M-entry list is about 70 MB).
const maxListBytes = 512 << 20

// verify checks a list body against its signature, its own sha256, the
// expected scope and the version held, and compiles it. It writes nothing.
func verify(pub ed25519.PublicKey, scope string, held int64, body []byte, signature string) (*policy, error) {
	if err := allowlist.VerifyList(pub, body, signature); err != nil {
		return nil, &SyncError{Reason: "signature", Err: err}
	}
	l, err := allowlist.ParseList(body)
	if err != nil {
		return nil, &SyncError{Reason: "invalid", Err: err}
	}
	if l.Scope != scope {
		return nil, syncErr("scope", "list is for scope %q, not %q", l.Scope, scope)
	}
	if l.Version < held {
		return nil, syncErr("rollback", "list version %d is lower than version %d already held", l.Version, held)
	}
	return &policy{scope: l.Scope, version: l.Version, sha256: l.SHA256, entries: len(l.Entries), matcher: allowlist.Compile(l.Patterns())}, nil
}

// The cache file holds the last good list exactly as signed:
//
//	allowlist-cache v1
//	<base64 signature>
//	<body bytes, verbatim>
const cacheMagic = "allowlist-cache v1"

func cachePath(dir string) string { return filepath.Join(dir, "list.cache") }

// writeCache stores a verified list atomically: write a temporary file,
// fsync it, rename it over the old one, fsync the directory. On any error
// the old cache stays as it was.
func writeCache(dir string, body []byte, signature string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".list.cache-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	fmt.Fprintf(w, "%s\n%s\n", cacheMagic, signature)
	w.Write(body)
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), cachePath(dir)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// readCache returns the cached body and signature.
func readCache(dir string) ([]byte, string, error) {
	b, err := os.ReadFile(cachePath(dir))
	if err != nil {
		return nil, "", err
	}
	magic, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(magic) != cacheMagic {
		return nil, "", errors.New("not a list cache file")
	}
	sig, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, "", errors.New("list cache file is truncated")
	}
	return body, string(sig), nil
}

// quarantine moves a cache file that failed its checks out of the way, so
// it is never partly used and can be examined.
func quarantine(dir string) (string, error) {
	bad := cachePath(dir) + ".bad-" + time.Now().UTC().Format("20060102T150405.000000000")
	return bad, os.Rename(cachePath(dir), bad)
}

// fetcher talks to the registry.
type fetcher struct {
	base   string
	scope  string
	token  string
	client *http.Client
}

// fetch gets the current list (watch=false), or waits for one after
// version held (watch=true). It returns nil body on 304.
func (f *fetcher) fetch(ctx context.Context, held int64, watch bool, wait time.Duration) ([]byte, string, error) {
	u := f.base + "/v1/lists/" + url.PathEscape(f.scope)
	if watch {
		u += "/watch?after=" + strconv.FormatInt(held, 10) + "&timeout=" + wait.String()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, "", err
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", syncErr("fetch", "%v", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", nil
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, "", syncErr("fetch", "registry answered HTTP %d for %s", resp.StatusCode, u)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, "", syncErr("invalid", "registry sent %q, not JSON", ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListBytes+1))
	if err != nil {
		return nil, "", syncErr("fetch", "read list: %v", err)
	}
	if len(body) > maxListBytes {
		return nil, "", syncErr("invalid", "list larger than %d bytes", maxListBytes)
	}
	return body, resp.Header.Get("X-Allowlist-Signature"), nil
}

// backoff returns the wait before retry n (0-based): exponential from
// 500ms to max, with jitter so that many resolvers do not retry together.
func backoff(n int, max time.Duration) time.Duration {
	d := 500 * time.Millisecond << min(n, 10)
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}
