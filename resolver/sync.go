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
	"sync/atomic"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
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
	// st describes the list's patterns, so that the next version can be
	// patched without reading this one's entries again (list.PatchAt).
	st      list.Stats
	matcher *allowlist.Matcher
	// generated is the list's generated_at: the registry signed that it
	// was current then.
	generated time.Time
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

// A list is loaded in two passes over the same bytes, so that the body is
// never held in memory (a 1M-entry list is about 85 MB, more than the
// matcher it compiles to):
//
//  1. verifyStream reads the body once as it arrives, checking the
//     Ed25519 signature over the exact bytes, the list's form, its sha256
//     and every pattern, and counts what the matcher needs;
//  2. compileStream reads it again (from the spool file, see spool) into
//     a matcher sized by pass one.
//
// listInfo is what pass one learns.
type listInfo struct {
	hdr list.Header
	st  list.Stats
}

// errReader remembers the error of the reader under it, so that a broken
// connection or disk is told apart from a bad list.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// verifyStream is pass one. It reads body to its end and writes nothing.
func verifyStream(pub ed25519.PublicKey, scope string, held int64, body io.Reader, signature string) (listInfo, error) {
	v, err := list.NewVerifier(pub, signature)
	if err != nil {
		return listInfo{}, &SyncError{Reason: "signature", Err: err}
	}
	src := &errReader{r: body}
	hdr, st, err := allowlist.ReadList(io.TeeReader(src, v), func(string, bool) error { return nil })
	if src.err != nil {
		var tooBig *tooLargeError
		var spoolErr *spoolError
		switch {
		case errors.As(src.err, &tooBig):
			return listInfo{}, &SyncError{Reason: "invalid", Err: src.err}
		case errors.As(src.err, &spoolErr):
			return listInfo{}, &SyncError{Reason: "cache_write", Err: src.err}
		}
		return listInfo{}, &SyncError{Reason: "fetch", Err: fmt.Errorf("read list: %w", src.err)}
	}
	if err != nil {
		// Read the rest, so that a tampered or foreign body is reported
		// as a signature failure, as it would be if held whole.
		if _, cerr := io.Copy(v, src); cerr == nil && v.Verify() != nil {
			return listInfo{}, &SyncError{Reason: "signature", Err: v.Verify()}
		}
		return listInfo{}, &SyncError{Reason: "invalid", Err: err}
	}
	if err := v.Verify(); err != nil {
		return listInfo{}, &SyncError{Reason: "signature", Err: err}
	}
	if hdr.Scope != scope {
		return listInfo{}, syncErr("scope", "list is for scope %q, not %q", hdr.Scope, scope)
	}
	if hdr.Version < held {
		return listInfo{}, syncErr("rollback", "list version %d is lower than version %d already held", hdr.Version, held)
	}
	return listInfo{hdr: hdr, st: st}, nil
}

// compileStream is pass two over the bytes pass one verified. They must
// be the same list: a spool changed between the passes is refused.
func compileStream(body io.Reader, info listInfo) (*policy, error) {
	b := allowlist.NewBuilder(info.st.Entries, info.st.NameBytes, info.st.Keys)
	src := &errReader{r: body}
	hdr, st, err := list.Reread(src, func(name string, wildcard bool) error {
		b.Add(name, wildcard)
		return nil
	})
	if src.err != nil {
		return nil, syncErr("cache_write", "read the spooled list again: %v", src.err)
	}
	if err != nil || hdr.Scope != info.hdr.Scope || hdr.Version != info.hdr.Version || hdr.SHA256 != info.hdr.SHA256 || st != info.st {
		return nil, syncErr("invalid", "the spooled list changed between verifying and compiling (%v)", err)
	}
	return &policy{scope: hdr.Scope, version: hdr.Version, sha256: hdr.SHA256, entries: st.Entries, st: st, matcher: b.Matcher(), generated: hdr.GeneratedAt}, nil
}

// verify is both passes over a body held in memory.
func verify(pub ed25519.PublicKey, scope string, held int64, body []byte, signature string) (*policy, error) {
	info, err := verifyStream(pub, scope, held, bytes.NewReader(body), signature)
	if err != nil {
		return nil, err
	}
	return compileStream(bytes.NewReader(body), info)
}

// spool holds a fetched body between the passes. On disk it is a
// temporary file in the cache directory, already in the cache file's
// format, so that keeping it as the last good list is one rename. When the
// cache directory cannot be written it holds the body in memory instead
// (and the old cache stays).
type spool struct {
	dir string
	sig string
	f   *os.File // nil: in memory
	off int64    // where the body starts in f
	n   int64
	mem bytes.Buffer
}

func newSpool(dir, signature string, inMemory bool) *spool {
	s := &spool{dir: dir, sig: signature}
	if inMemory {
		return s
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return s
	}
	f, err := os.CreateTemp(dir, ".list.cache-*")
	if err != nil {
		return s
	}
	head := cacheMagic + "\n" + signature + "\n"
	if _, err := f.WriteString(head); err != nil {
		f.Close()
		os.Remove(f.Name())
		return s
	}
	s.f, s.off = f, int64(len(head))
	return s
}

func (s *spool) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.f == nil {
		return s.mem.Write(p)
	}
	n, err := s.f.Write(p)
	if err != nil {
		err = &spoolError{err}
	}
	return n, err
}

// spoolError marks a failure to write the spool, not to read the body.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "spool the list to disk: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// body returns the spooled body from its start.
func (s *spool) body() io.Reader {
	if s.f == nil {
		return bytes.NewReader(s.mem.Bytes())
	}
	return io.NewSectionReader(s.f, s.off, s.n)
}

// keep makes the spool the cache file: fsync, rename, fsync the directory.
func (s *spool) keep() error {
	if s.f == nil {
		return writeCache(s.dir, s.mem.Bytes(), s.sig)
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(s.f.Name(), cachePath(s.dir)); err != nil {
		return err
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// close releases the spool; the temporary file goes unless kept.
func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name()) // fails harmlessly once renamed
	}
	s.mem = bytes.Buffer{}
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

// openCache opens the cache file and returns it with its signature and
// the offset and length of the body, which is read in place, twice.
func openCache(dir string) (*os.File, string, int64, int64, error) {
	f, err := os.Open(cachePath(dir))
	if err != nil {
		return nil, "", 0, 0, err
	}
	fail := func(err error) (*os.File, string, int64, int64, error) {
		f.Close()
		return nil, "", 0, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(io.LimitReader(f, 4096), 4096)
	magic, err := br.ReadString('\n')
	if err != nil || magic != cacheMagic+"\n" {
		return fail(errors.New("not a list cache file"))
	}
	sig, err := br.ReadString('\n')
	if err != nil {
		return fail(errors.New("list cache file is truncated"))
	}
	off := int64(len(magic) + len(sig))
	return f, strings.TrimSuffix(sig, "\n"), off, st.Size() - off, nil
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
	// clockOffset is the registry's clock minus ours, in seconds, from the
	// Date of its latest answer.
	clockOffset atomic.Int64
}

// fetch gets the current list (watch=false), or waits for one after
// version held (watch=true). It returns the body as a stream, bounded by
// maxListBytes, for the caller to read and close (nil on 304), its
// signature, and the freshness timestamp the answer carried.
func (f *fetcher) fetch(ctx context.Context, held int64, watch bool, wait time.Duration) (io.ReadCloser, string, stampHeaders, error) {
	u := f.base + "/v1/lists/" + url.PathEscape(f.scope)
	if watch {
		u += "/watch?after=" + strconv.FormatInt(held, 10) + "&timeout=" + wait.String()
	}
	resp, err := f.do(ctx, "GET", u)
	if err != nil {
		return nil, "", stampHeaders{}, err
	}
	stamp := stampOf(resp.Header)
	fail := func(err error) (io.ReadCloser, string, stampHeaders, error) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return nil, "", stampHeaders{}, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		resp.Body.Close()
		return nil, "", stamp, nil
	default:
		return fail(syncErr("fetch", "registry answered HTTP %d for %s", resp.StatusCode, u))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fail(syncErr("invalid", "registry sent %q, not JSON", ct))
	}
	if resp.ContentLength > maxListBytes {
		resp.Body.Close()
		return nil, "", stampHeaders{}, syncErr("invalid", "list of %d bytes is larger than %d", resp.ContentLength, maxListBytes)
	}
	return &capReader{rc: resp.Body, left: maxListBytes}, resp.Header.Get(list.HeaderSignature), stamp, nil
}

// capReader fails a body that goes on past its limit.
type capReader struct {
	rc   io.ReadCloser
	left int64
}

type tooLargeError struct{}

func (tooLargeError) Error() string { return fmt.Sprintf("list larger than %d bytes", maxListBytes) }

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, &tooLargeError{}
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capReader) Close() error { return c.rc.Close() }

// backoff returns the wait before retry n (0-based): exponential from
// 500ms to max, with jitter so that many resolvers do not retry together.
func backoff(n int, max time.Duration) time.Duration {
	d := 500 * time.Millisecond << min(n, 10)
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}
