package list

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
)

// Header is a list's identity: every field of the body but its entries.
type Header struct {
	Scope       string
	Version     int64
	GeneratedAt time.Time
	SHA256      string
}

// Stats describes the patterns of a list, so that a second pass can size
// a matcher exactly (allowlist.NewBuilder).
type Stats struct {
	Entries   int // entries, one per pattern
	NameBytes int // bytes of pattern names without "*."
	Keys      int // the estimate of table keys a matcher uses (KeyEstimate)
}

// count adds (sign 1) or takes away (sign -1) one entry of the given
// name (its pattern without "*.").
func (st *Stats) count(name string, sign int) {
	st.Entries += sign
	st.NameBytes += sign * len(name)
	st.Keys += sign * KeyEstimate(name)
}

// Check reports whether a pattern is in normal form and splits it into
// its name and whether it has the "*." prefix. The registry's rule
// (allowlist.ParsePattern) lives in the core; Read and Patch take it as
// an argument so that this package depends on nothing of the core.
type Check func(pattern string) (name string, wildcard bool, ok bool)

// splitWildcard is the Check for patterns already checked: it accepts
// every pattern and only splits off "*.".
func splitWildcard(pattern string) (string, bool, bool) {
	name, wildcard := CutWildcard(pattern)
	return name, wildcard, true
}

// CutWildcard splits "*.name" into name and true; any other pattern is
// returned as it is, with false.
func CutWildcard(s string) (string, bool) {
	if len(s) > 2 && s[0] == '*' && s[1] == '.' {
		return s[2:], true
	}
	return s, false
}

// Read reads a list body in the exact form Encode writes and calls fn
// with each entry's pattern, in order, without holding the body or the
// entries: a resolver loads a million-entry list in the memory of its
// matcher. It checks every pattern with check, the sha256 field against
// the hash of the entries, and that the entries are in canonical order
// and form, so the hash it computes over the bytes as they pass is the
// canonical one. A body in any other layout (spaces, escapes, other field
// order) is refused: the registry never writes one, and the signature
// covers these exact bytes.
//
// name is only valid during the call to fn: it points into Read's
// buffer. Copy it (allowlist.Builder.Add does) to keep it.
func Read(r io.Reader, check Check, fn func(name string, wildcard bool) error) (Header, Stats, error) {
	return newStreamReader(r, false).readPatterns(check, fn)
}

// Reread is Read for bytes that Read has accepted already, as in a second
// pass over a spooled copy: it checks the form and the hash (so the
// entries are those Read saw) but not each pattern again.
func Reread(r io.Reader, fn func(name string, wildcard bool) error) (Header, Stats, error) {
	return newStreamReader(r, false).readPatterns(splitWildcard, fn)
}

// Walk reads a list body in canonical form held in memory, as Read does,
// and calls fn with each entry's fields, which are slices of body itself
// (they stay valid as long as body does). It checks the form, the order
// and the hash, not the patterns: it is for bodies the registry wrote
// itself.
func Walk(body []byte, fn func(pattern, site, category []byte) error) (Header, error) {
	lr := &reader{buf: body, eof: true}
	return lr.read(fn)
}

// maxString bounds any string in a list body: patterns are at most 255
// octets, site ids 64, categories and scopes shorter.
const maxString = 1024

var errNotCanonical = errors.New("list is not in canonical form")

// reader decodes the canonical layout from buf, refilled from r when it
// reads a stream (r nil: buf is the whole body).
type reader struct {
	r    io.Reader
	buf  []byte // buf[pos:] is unread
	pos  int
	eof  bool
	rerr error

	h        hash.Hash // hashes the entries array while hashing is set
	hashing  bool
	hashFrom int

	// held marks the body a resolver holds, read by Patch: it was checked
	// when it was taken, and every byte of it is either dropped or checked
	// again, as part of the result, against the new version's hash and
	// signature. So its own hash and the per-byte checks of its strings
	// are skipped.
	held bool
	// fields asks for stable copies of each entry's site and category
	// when reading a stream (a refill may move the buffer under them).
	fields bool

	prev                 []byte // the previous entry's pattern, copied
	siteBuf, categoryBuf []byte
}

func newStreamReader(r io.Reader, held bool) *reader {
	return &reader{r: r, buf: make([]byte, 0, 64<<10), held: held, fields: held}
}

// readPatterns is the loop of Read and Reread: each pattern is split (and
// checked) by check, counted, and given to fn.
func (lr *reader) readPatterns(check Check, fn func(string, bool) error) (Header, Stats, error) {
	var st Stats
	h, err := lr.read(func([]byte, []byte, []byte) error {
		// lr.prev is a stable copy of the pattern while fn runs.
		pattern := unsafe.String(unsafe.SliceData(lr.prev), len(lr.prev))
		name, wildcard, ok := check(pattern)
		if !ok {
			return fmt.Errorf("list entry %q is not a normalised pattern", pattern)
		}
		st.count(name, 1)
		return fn(name, wildcard)
	})
	if err != nil {
		return Header{}, Stats{}, err
	}
	return h, st, nil
}

// read decodes a whole body: the head, the entries (each given to each),
// the tail, and checks the hash unless the body is held.
func (lr *reader) read(each func(pattern, site, category []byte) error) (Header, error) {
	h, err := lr.head()
	if err != nil {
		return h, err
	}
	if err := lr.entries(each); err != nil {
		return h, err
	}
	if err := lr.tail(); err != nil {
		return h, err
	}
	if lr.held {
		return h, nil
	}
	if got := hex.EncodeToString(lr.h.Sum(nil)); got != h.SHA256 {
		return h, fmt.Errorf("list sha256 %s does not match its entries (%s)", h.SHA256, got)
	}
	return h, nil
}

// head decodes the fields before the entries array, through `"entries":`.
func (lr *reader) head() (Header, error) {
	var h Header
	if err := lr.lit(`{"scope":`); err != nil {
		return h, err
	}
	s, err := lr.str("scope")
	if err != nil {
		return h, err
	}
	h.Scope = string(s)
	if err := lr.lit(`,"version":`); err != nil {
		return h, err
	}
	if h.Version, err = lr.int("version"); err != nil {
		return h, err
	}
	if err := lr.lit(`,"generated_at":`); err != nil {
		return h, err
	}
	if s, err = lr.str("generated_at"); err != nil {
		return h, err
	}
	if h.GeneratedAt, err = time.Parse(time.RFC3339Nano, string(s)); err != nil || h.GeneratedAt.Format(time.RFC3339Nano) != string(s) {
		return h, fmt.Errorf("decode list: generated_at %q is not an RFC 3339 time", s)
	}
	if err := lr.lit(`,"sha256":`); err != nil {
		return h, err
	}
	if s, err = lr.str("sha256"); err != nil {
		return h, err
	}
	h.SHA256 = string(s)
	if err := lr.lit(`,"entries":`); err != nil {
		return h, err
	}
	if h.Scope == "" {
		return h, fmt.Errorf("decode list: missing scope")
	}
	return h, nil
}

// entries decodes the entries array, hashing its bytes, and checks that
// the patterns strictly increase.
func (lr *reader) entries(each func(pattern, site, category []byte) error) error {
	if !lr.need(1) || lr.buf[lr.pos] != '[' {
		return lr.fail("the entries array")
	}
	if !lr.held {
		lr.h, lr.hashing, lr.hashFrom = sha256.New(), true, lr.pos
	}
	lr.pos++
	lr.prev = make([]byte, 0, 256)
	for first := true; ; first = false {
		if !lr.need(1) {
			return lr.fail(`"]"`)
		}
		if lr.buf[lr.pos] == ']' {
			lr.pos++
			break
		}
		if !first {
			if err := lr.lit(","); err != nil {
				return err
			}
		}
		p, site, category, err := lr.entry(first)
		if err != nil {
			return err
		}
		if err := each(p, site, category); err != nil {
			return err
		}
	}
	if lr.hashing {
		lr.h.Write(lr.buf[lr.hashFrom:lr.pos])
		lr.hashing = false
	}
	return nil
}

// entry decodes one entry object. Its pattern is copied to lr.prev; read
// from a stream, the fields returned are copies (the pattern lr.prev,
// the others only when lr.fields asks), read from memory they are slices
// of the body.
func (lr *reader) entry(first bool) (pattern, site, category []byte, err error) {
	if err := lr.lit(`{"pattern":`); err != nil {
		return nil, nil, nil, err
	}
	if pattern, err = lr.str("pattern"); err != nil {
		return nil, nil, nil, err
	}
	if !first && bytes.Compare(lr.prev, pattern) >= 0 {
		return nil, nil, nil, fmt.Errorf("decode list: entries are not in canonical order at %q", pattern)
	}
	lr.prev = append(lr.prev[:0], pattern...)
	if err := lr.lit(`,"site":`); err != nil {
		return nil, nil, nil, err
	}
	if site, err = lr.str("site"); err != nil {
		return nil, nil, nil, err
	}
	if lr.r != nil && lr.fields {
		lr.siteBuf = append(lr.siteBuf[:0], site...)
		site = lr.siteBuf
	}
	if err := lr.lit(`,"category":`); err != nil {
		return nil, nil, nil, err
	}
	if category, err = lr.str("category"); err != nil {
		return nil, nil, nil, err
	}
	if lr.r != nil && lr.fields {
		lr.categoryBuf = append(lr.categoryBuf[:0], category...)
		category = lr.categoryBuf
	}
	if err := lr.lit("}"); err != nil {
		return nil, nil, nil, err
	}
	if lr.r != nil {
		pattern = lr.prev
	}
	return pattern, site, category, nil
}

// tail decodes what follows the entries array: "}", one optional newline
// (Encode writes it), and nothing else.
func (lr *reader) tail() error {
	if err := lr.lit("}"); err != nil {
		return err
	}
	if lr.need(1) && lr.buf[lr.pos] == '\n' {
		lr.pos++
	}
	if lr.need(1) {
		return fmt.Errorf("decode list: trailing data")
	}
	if lr.rerr != nil {
		return fmt.Errorf("read list: %w", lr.rerr)
	}
	return nil
}

// fill reads more input, keeping buf[pos:]. It hashes consumed bytes first.
func (lr *reader) fill() bool {
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
func (lr *reader) need(n int) bool {
	for len(lr.buf)-lr.pos < n {
		if !lr.fill() {
			return false
		}
	}
	return true
}

func (lr *reader) fail(what string) error {
	if lr.rerr != nil {
		return fmt.Errorf("read list: %w", lr.rerr)
	}
	if lr.eof && len(lr.buf)-lr.pos < len(what)+1 {
		return fmt.Errorf("decode list: %w: body ends early (expected %s)", errNotCanonical, what)
	}
	return fmt.Errorf("decode list: %w: expected %s", errNotCanonical, what)
}

// lit consumes exactly s.
func (lr *reader) lit(s string) error {
	if !lr.need(len(s)) || string(lr.buf[lr.pos:lr.pos+len(s)]) != s {
		return lr.fail(strconv.Quote(s))
	}
	lr.pos += len(s)
	return nil
}

// str consumes a JSON string that needs no escapes and returns its
// contents, valid until the next read.
func (lr *reader) str(what string) ([]byte, error) {
	if err := lr.lit(`"`); err != nil {
		return nil, lr.fail(what)
	}
	for {
		rest := lr.buf[lr.pos:]
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			s := rest[:i]
			if !lr.held { // a held body's bytes are checked again by the signature over what Patch writes
				if err := plainBytes(s, what); err != nil {
					return nil, err
				}
			}
			lr.pos += i + 1
			return s, nil
		}
		if len(rest) > maxString || !lr.fill() {
			return nil, lr.fail("the end of " + what)
		}
	}
}

// plainBytes checks that s, the contents of a string, is valid UTF-8 and
// has no escape or control character.
func plainBytes(s []byte, what string) error {
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return fmt.Errorf("decode list: %w: %s has an escape or control character", errNotCanonical, what)
		}
	}
	if !utf8.Valid(s) {
		return fmt.Errorf("decode list: %s is not valid UTF-8", what)
	}
	return nil
}

// int consumes a non-negative integer as encoding/json writes it.
func (lr *reader) int(what string) (int64, error) {
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

// KeyEstimate is how many table keys a matcher expects a name to add: its
// own and the parents below its registrable domain.
func KeyEstimate(name string) int {
	dots := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			dots++
		}
	}
	return max(1, dots-1)
}
