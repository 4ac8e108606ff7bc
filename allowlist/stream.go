package allowlist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/net/publicsuffix"
)

// ListHeader is a list's identity: every field of the body but its entries.
type ListHeader struct {
	Scope       string
	Version     int64
	GeneratedAt time.Time
	SHA256      string
}

// ListStats describes the patterns of a list, so that a second pass can
// size a Matcher exactly (see NewBuilder).
type ListStats struct {
	Entries   int // entries, one per pattern
	NameBytes int // bytes of pattern names without "*."
	Keys      int // the estimate of table keys Compile uses
}

// ReadList reads a list body in the exact form NewList writes and calls fn
// with each entry's pattern, in order, without holding the body or the
// entries: a resolver loads a million-entry list in the memory of its
// matcher. It checks what ParseList checks (every pattern in normal form,
// the sha256 field equal to the hash of the entries) and also that the
// entries are in canonical order and form, so the hash it computes over
// the bytes as they pass is the canonical one. A body in any other layout
// (spaces, escapes, other field order) is refused: the registry never
// writes one, and the signature covers these exact bytes.
//
// name is only valid during the call to fn: it points into ReadList's
// buffer. Copy it (Builder.Add does) to keep it.
func ReadList(r io.Reader, fn func(name string, wildcard bool) error) (ListHeader, ListStats, error) {
	return readList(r, fn, true)
}

// readEntries reads a list body in canonical form held in memory, as
// ReadList does, and calls fn with each entry's fields, which are slices
// of body itself. It checks the form, the order and the hash, not the
// patterns: it is for bodies the registry wrote itself.
func readEntries(body []byte, fn func(pattern, site, category []byte) error) (ListHeader, error) {
	lr := &listReader{buf: body, eof: true, entryFn: fn}
	h, _, err := lr.read(nil)
	return h, err
}

// DecodeList decodes a list body the registry wrote itself (stored,
// signed), checking its form and hash but not re-validating each pattern,
// and without copying: the entries' strings share body's memory, which
// must not change afterwards. At a million entries this is a tenth of a
// second where ParseList takes seconds.
func DecodeList(body []byte) (List, error) {
	var entries []Entry
	h, err := readEntries(body, func(pattern, site, category []byte) error {
		entries = append(entries, Entry{Pattern: bytesString(pattern), Site: bytesString(site), Category: bytesString(category)})
		return nil
	})
	if err != nil {
		return List{}, err
	}
	if entries == nil {
		entries = []Entry{}
	}
	return List{Scope: h.Scope, Version: h.Version, GeneratedAt: h.GeneratedAt, SHA256: h.SHA256, Entries: entries}, nil
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// RereadList is ReadList for bytes that ReadList has accepted already, as
// in a second pass over a spooled copy: it checks the form and the hash
// (so the entries are those ReadList saw) but not each pattern again.
func RereadList(r io.Reader, fn func(name string, wildcard bool) error) (ListHeader, ListStats, error) {
	return readList(r, fn, false)
}

func readList(r io.Reader, fn func(name string, wildcard bool) error, checkPatterns bool) (ListHeader, ListStats, error) {
	lr := &listReader{r: r, buf: make([]byte, 0, 64<<10), checkPatterns: checkPatterns}
	h, st, err := lr.read(fn)
	if err != nil {
		return ListHeader{}, ListStats{}, err
	}
	return h, st, nil
}

// maxString bounds any string in a list body: patterns are at most 255
// octets, site ids 64, categories and scopes shorter.
const maxString = 1024

var errNotCanonical = errors.New("list is not in canonical form")

type listReader struct {
	r    io.Reader
	buf  []byte // buf[pos:] is unread
	pos  int
	eof  bool
	rerr error

	h        hash.Hash // hashes the entries array while hashing is set
	hashing  bool
	hashFrom int

	checkPatterns bool
	entryFn       func(pattern, site, category []byte) error
	// held marks the body a resolver holds, read by PatchList: it was
	// checked when it was taken, and every byte of it is either dropped
	// or checked again, as part of the result, against the new version's
	// hash and signature. So its own hash and the per-byte checks of its
	// strings are skipped.
	held bool
}

// fill reads more input, keeping buf[pos:]. It hashes consumed bytes first.
func (lr *listReader) fill() bool {
	if lr.eof {
		return false
	}
	if lr.hashing {
		lr.h.Write(lr.buf[lr.hashFrom:lr.pos])
		lr.hashFrom = 0
	}
	n := copy(lr.buf[:cap(lr.buf)], lr.buf[lr.pos:])
	lr.buf, lr.pos = lr.buf[:n], 0
	for !lr.eof && len(lr.buf) < cap(lr.buf) {
		m, err := lr.r.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+m]
		if err != nil {
			lr.eof = true
			if err != io.EOF {
				lr.rerr = err
			}
		}
		if m > 0 {
			break
		}
	}
	return true
}

// need ensures n unread bytes, unless the input ends first.
func (lr *listReader) need(n int) bool {
	for len(lr.buf)-lr.pos < n {
		if !lr.fill() {
			return false
		}
	}
	return true
}

func (lr *listReader) fail(what string) error {
	if lr.rerr != nil {
		return fmt.Errorf("read list: %w", lr.rerr)
	}
	if lr.eof && len(lr.buf)-lr.pos < len(what)+1 {
		return fmt.Errorf("decode list: %w: body ends early (expected %s)", errNotCanonical, what)
	}
	return fmt.Errorf("decode list: %w: expected %s", errNotCanonical, what)
}

// lit consumes exactly s.
func (lr *listReader) lit(s string) error {
	if !lr.need(len(s)) || string(lr.buf[lr.pos:lr.pos+len(s)]) != s {
		return lr.fail(strconv.Quote(s))
	}
	lr.pos += len(s)
	return nil
}

// str consumes a JSON string that needs no escapes and returns its
// contents, valid until the next read.
func (lr *listReader) str(what string) ([]byte, error) {
	if err := lr.lit(`"`); err != nil {
		return nil, lr.fail(what)
	}
	for {
		rest := lr.buf[lr.pos:]
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			s := rest[:i]
			if lr.held {
				// PatchList's held body: checked when it was taken, and
				// every byte copied from it is checked again by the
				// signature over what is written.
				lr.pos += i + 1
				return s, nil
			}
			for _, c := range s {
				if c < 0x20 || c == '\\' {
					return nil, fmt.Errorf("decode list: %w: %s has an escape or control character", errNotCanonical, what)
				}
			}
			if !utf8.Valid(s) {
				return nil, fmt.Errorf("decode list: %s is not valid UTF-8", what)
			}
			lr.pos += i + 1
			return s, nil
		}
		if len(rest) > maxString || !lr.fill() {
			return nil, lr.fail("the end of " + what)
		}
	}
}

// int consumes a non-negative integer as encoding/json writes it.
func (lr *listReader) int(what string) (int64, error) {
	lr.need(20)
	i := lr.pos
	for i < len(lr.buf) && lr.buf[i] >= '0' && lr.buf[i] <= '9' {
		i++
	}
	s := string(lr.buf[lr.pos:i])
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s {
		return 0, lr.fail(what + " as a non-negative integer")
	}
	lr.pos = i
	return v, nil
}

func (lr *listReader) read(fn func(string, bool) error) (ListHeader, ListStats, error) {
	var h ListHeader
	var st ListStats
	if err := lr.lit(`{"scope":`); err != nil {
		return h, st, err
	}
	s, err := lr.str("scope")
	if err != nil {
		return h, st, err
	}
	h.Scope = string(s)
	if err := lr.lit(`,"version":`); err != nil {
		return h, st, err
	}
	if h.Version, err = lr.int("version"); err != nil {
		return h, st, err
	}
	if err := lr.lit(`,"generated_at":`); err != nil {
		return h, st, err
	}
	if s, err = lr.str("generated_at"); err != nil {
		return h, st, err
	}
	if h.GeneratedAt, err = time.Parse(time.RFC3339Nano, string(s)); err != nil || h.GeneratedAt.Format(time.RFC3339Nano) != string(s) {
		return h, st, fmt.Errorf("decode list: generated_at %q is not an RFC 3339 time", s)
	}
	if err := lr.lit(`,"sha256":`); err != nil {
		return h, st, err
	}
	if s, err = lr.str("sha256"); err != nil {
		return h, st, err
	}
	h.SHA256 = string(s)
	if err := lr.lit(`,"entries":`); err != nil {
		return h, st, err
	}
	if h.Scope == "" {
		return h, st, fmt.Errorf("decode list: missing scope")
	}
	if !lr.need(1) || lr.buf[lr.pos] != '[' {
		return h, st, lr.fail("the entries array")
	}
	if !lr.held {
		lr.h, lr.hashing, lr.hashFrom = sha256.New(), true, lr.pos
	}
	lr.pos++
	prev := make([]byte, 0, 256)
	var siteBuf, categoryBuf []byte
	for first := true; ; first = false {
		if !lr.need(1) {
			return h, st, lr.fail(`"]"`)
		}
		if lr.buf[lr.pos] == ']' {
			lr.pos++
			break
		}
		if !first {
			if err := lr.lit(","); err != nil {
				return h, st, err
			}
		}
		if err := lr.lit(`{"pattern":`); err != nil {
			return h, st, err
		}
		p, err := lr.str("pattern")
		if err != nil {
			return h, st, err
		}
		if !first && bytes.Compare(prev, p) >= 0 {
			return h, st, fmt.Errorf("decode list: entries are not in canonical order at %q", p)
		}
		prev = append(prev[:0], p...)
		if err := lr.lit(`,"site":`); err != nil {
			return h, st, err
		}
		site, err := lr.str("site")
		if err != nil {
			return h, st, err
		}
		if lr.entryFn != nil && lr.r != nil {
			// Read as a stream (PatchList), the next fill may move it.
			site = append(siteBuf[:0], site...)
			siteBuf = site
		}
		if err := lr.lit(`,"category":`); err != nil {
			return h, st, err
		}
		category, err := lr.str("category")
		if err != nil {
			return h, st, err
		}
		if lr.entryFn != nil && lr.r != nil {
			category = append(categoryBuf[:0], category...)
			categoryBuf = category
		}
		if err := lr.lit("}"); err != nil {
			return h, st, err
		}
		if lr.entryFn != nil {
			// With the whole body in buf (readEntries) the slices stay
			// put; read as a stream (PatchList), a fill may move them, so
			// site and category were copied, and prev is the pattern's.
			if lr.r != nil {
				p = prev
			}
			st.Entries++
			if err := lr.entryFn(p, site, category); err != nil {
				return h, st, err
			}
			continue
		}
		// prev is a stable copy of the pattern while fn runs.
		pattern := unsafe.String(unsafe.SliceData(prev), len(prev))
		name, wildcard, ok := cutWildcardOK(pattern)
		if lr.checkPatterns {
			name, wildcard, ok = normalPattern(pattern)
		}
		if !ok {
			return h, st, fmt.Errorf("list entry %q is not a normalised pattern", pattern)
		}
		st.Entries++
		st.NameBytes += len(name)
		st.Keys += keyEstimate(name)
		if err := fn(name, wildcard); err != nil {
			return h, st, err
		}
	}
	if lr.hashing {
		lr.h.Write(lr.buf[lr.hashFrom:lr.pos])
		lr.hashing = false
	}
	if err := lr.lit("}"); err != nil {
		return h, st, err
	}
	// NewList ends the body with one newline; nothing may follow it.
	if lr.need(1) && lr.buf[lr.pos] == '\n' {
		lr.pos++
	}
	if lr.need(1) {
		return h, st, fmt.Errorf("decode list: trailing data")
	}
	if lr.rerr != nil {
		return h, st, fmt.Errorf("read list: %w", lr.rerr)
	}
	if lr.held {
		return h, st, nil
	}
	if got := hex.EncodeToString(lr.h.Sum(nil)); got != h.SHA256 {
		return h, st, fmt.Errorf("list sha256 %s does not match its entries (%s)", h.SHA256, got)
	}
	return h, st, nil
}

// normalPattern reports whether s is a pattern in the normal form
// ParsePattern gives, exactly when ParsePattern(s) succeeds with String()
// equal to s, and splits it. Plain ASCII names take a short path; the rest
// (A-labels) go through ParsePattern. FuzzNormalPattern checks the two agree.
func normalPattern(s string) (name string, wildcard bool, ok bool) {
	name, wildcard = cutWildcard(s)
	if !plainASCII(name) {
		p, err := ParsePattern(s)
		return p.Name, p.Wildcard, err == nil && p.String() == s
	}
	if len(name) > maxNameOctets || (wildcard && len(name)+2 > maxNameOctets) {
		return "", false, false
	}
	labels, start, last := 1, 0, ""
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if i-start > maxLabelOctets {
				return "", false, false
			}
			last = name[start:i]
			start = i + 1
			if i < len(name) {
				labels++
			}
		}
	}
	if labels < 2 || isNumeric(last) {
		return "", false, false
	}
	if suffix, _ := publicsuffix.PublicSuffix(name); suffix == name {
		return "", false, false
	}
	return name, wildcard, true
}

// keyEstimate is how many table keys Compile expects a name to add: its
// own and the parents below its registrable domain.
func keyEstimate(name string) int {
	dots := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			dots++
		}
	}
	return max(1, dots-1)
}

func cutWildcardOK(s string) (string, bool, bool) {
	name, wildcard := cutWildcard(s)
	return name, wildcard, true
}
