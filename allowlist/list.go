package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// List is one published version of a scope: the JSON form that the API
// serves and the resolver consumes. It is the only contract between them.
type List struct {
	Scope       string    `json:"scope"`
	Version     int64     `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	SHA256      string    `json:"sha256"`
	Entries     []Entry   `json:"entries"`
	// Endpoints are the networks and handling of the scope's sites
	// (schema 2 only; see WithEndpoints).
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// CanonicalEntries returns the canonical JSON of entries: sorted by
// pattern then site, compact, fields in a fixed order. Its SHA-256 is the
// list's content hash.
func CanonicalEntries(entries []Entry) []byte {
	return EncodeEntries(SortEntries(append([]Entry(nil), entries...))).JSON
}

// EntriesSHA256 returns the hex SHA-256 of the canonical JSON of entries.
func EntriesSHA256(entries []Entry) string {
	return EncodeEntries(SortEntries(append([]Entry(nil), entries...))).SHA256
}

// NewList builds the list for a version and its exact JSON body, the bytes
// that are signed, stored and served unchanged forever.
func NewList(scope string, version int64, at time.Time, entries []Entry) (List, []byte) {
	return NewListSorted(scope, version, at, SortEntries(append([]Entry(nil), entries...)))
}

// NewListSorted is NewList for entries that SortEntries has already put in
// order (as Scopes returns them); it does not copy them. The body is
// encoded by hand, byte for byte as encoding/json writes a List
// (TestEncodingMatchesEncodingJSON), because at a million entries the
// registry would otherwise spend most of a publication in reflection.
func NewListSorted(scope string, version int64, at time.Time, sorted []Entry) (List, []byte) {
	return NewListEncoded(scope, version, at, EncodeEntries(sorted))
}

// Encoded is a list's entries in canonical JSON with their hash: the part
// of a body that scopes with the same content share.
type Encoded struct {
	Entries []Entry
	JSON    []byte
	SHA256  string
}

// EncodeEntries encodes sorted entries (SortEntries order) once.
func EncodeEntries(sorted []Entry) Encoded {
	if sorted == nil {
		sorted = []Entry{}
	}
	b := EncodeEntryArray(sorted)
	sum := sha256.Sum256(b)
	return Encoded{Entries: sorted, JSON: b, SHA256: hex.EncodeToString(sum[:])}
}

// NewListEncoded builds a list's body around entries already encoded.
func NewListEncoded(scope string, version int64, at time.Time, enc Encoded) (List, []byte) {
	l, head := NewListHead(scope, version, at, enc)
	return l, JoinBody(head, enc.JSON)
}

// NewListHead builds a list and the head of its body (what SplitBody
// gives): the body is the head, enc.JSON, then "}\n". Scopes that list
// the same entries share enc.JSON instead of each holding a body.
func NewListHead(scope string, version int64, at time.Time, enc Encoded) (List, []byte) {
	l := List{Scope: scope, Version: version, GeneratedAt: at.UTC().Truncate(time.Second), SHA256: enc.SHA256, Entries: enc.Entries}
	return l, appendListHead(make([]byte, 0, 160+len(scope)), scope, version, l.GeneratedAt, enc.SHA256)
}

// appendListHead appends a body's fields up to its entries array; the
// entries and listTail follow.
func appendListHead(b []byte, scope string, version int64, at time.Time, sha string) []byte {
	b = append(b, `{"scope":`...)
	b = appendString(b, scope)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"generated_at":`...)
	b = appendString(b, at.Format(time.RFC3339Nano))
	b = append(b, `,"sha256":"`...)
	b = append(b, sha...)
	return append(b, `","entries":`...)
}

const listTail = "}\n"

// SplitBody splits a body NewList wrote into the bytes before its entries
// array (the head) and the array, so that a store can keep one copy of
// entries that several versions share. No string in a body holds an
// unescaped quote, so the first `,"entries":` is the field's.
func SplitBody(body []byte) (head, entries []byte, ok bool) {
	i := bytes.Index(body, []byte(`,"entries":`))
	if i < 0 || !bytes.HasSuffix(body, []byte(listTail)) {
		return nil, nil, false
	}
	i += len(`,"entries":`)
	if i > len(body)-len(listTail) {
		return nil, nil, false
	}
	return body[:i], body[i : len(body)-len(listTail)], true
}

// JoinBody is the body SplitBody split.
func JoinBody(head, entries []byte) []byte {
	out := make([]byte, 0, len(head)+len(entries)+len(listTail))
	out = append(out, head...)
	out = append(out, entries...)
	return append(out, listTail...)
}

// EncodeEntryArray encodes entries, in the order given, as the canonical
// JSON array a list body holds (and encoding/json would write).
func EncodeEntryArray(entries []Entry) []byte {
	size := 2
	for _, e := range entries {
		size += 42 + len(e.Pattern) + len(e.Site) + len(e.Category)
	}
	return appendEntries(make([]byte, 0, size), entries)
}

func appendEntries(b []byte, entries []Entry) []byte {
	b = append(b, '[')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, e)
	}
	return append(b, ']')
}

func appendEntry(b []byte, e Entry) []byte {
	b = append(b, `{"pattern":`...)
	b = appendString(b, e.Pattern)
	b = append(b, `,"site":`...)
	b = appendString(b, e.Site)
	b = append(b, `,"category":`...)
	b = appendString(b, e.Category)
	return append(b, '}')
}

// appendString appends s as encoding/json does: strings of printable ASCII
// that it would not escape are copied; anything else goes through it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainByte tells the bytes encoding/json copies as they are: printable
// ASCII but for '"', '\\' and the HTML characters it escapes. A table,
// because every byte of a million entries passes through it.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// ParseList decodes a list body strictly and checks that its sha256 matches
// its entries and that every pattern is in normal form. It does not check
// the signature: see VerifyList.
func ParseList(body []byte) (List, error) {
	var l List
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return List{}, fmt.Errorf("decode list: %w", err)
	}
	if dec.More() {
		return List{}, fmt.Errorf("decode list: trailing data")
	}
	if l.Scope == "" || l.Version < 0 || l.Entries == nil {
		return List{}, fmt.Errorf("decode list: missing scope, version or entries")
	}
	if got := EntriesSHA256(l.Entries); got != l.SHA256 {
		return List{}, fmt.Errorf("list sha256 %s does not match its entries (%s)", l.SHA256, got)
	}
	for _, e := range l.Entries {
		p, err := ParsePattern(e.Pattern)
		if err != nil || p.String() != e.Pattern {
			return List{}, fmt.Errorf("list entry %q is not a normalised pattern", e.Pattern)
		}
	}
	return l, nil
}

// Patterns returns the parsed patterns of the list's entries, in order, for
// Compile.
func (l List) Patterns() []Pattern {
	out := make([]Pattern, len(l.Entries))
	for i, e := range l.Entries {
		if name, ok := cutWildcard(e.Pattern); ok {
			out[i] = Pattern{Name: name, Wildcard: true}
		} else {
			out[i] = Pattern{Name: e.Pattern}
		}
	}
	return out
}

func cutWildcard(s string) (string, bool) {
	if len(s) > 2 && s[0] == '*' && s[1] == '.' {
		return s[2:], true
	}
	return s, false
}

// VerifyList checks a base64 signature over the exact bytes of body.
func VerifyList(pub ed25519.PublicKey, body []byte, signature string) error {
	sig, err := decodeSignature(pub, signature)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, body, sig) {
		return errBadSignature
	}
	return nil
}

var errBadSignature = errors.New("list signature does not verify")

// decodeSignature decodes a base64 list signature and checks its length
// and the key's.
func decodeSignature(pub ed25519.PublicKey, signature string) ([]byte, error) {
	if signature == "" {
		return nil, fmt.Errorf("list has no signature")
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return nil, fmt.Errorf("list signature is not base64: %w", err)
	}
	if len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return nil, errBadSignature
	}
	return sig, nil
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Diff returns the entries of b not in a (added) and of a not in b
// (removed), each sorted. Entries are compared whole: a pattern that moved
// to another site or category is in both.
func Diff(a, b []Entry) (added, removed []Entry) {
	if sortedUnique(a) && sortedUnique(b) {
		// Published lists: one merge, no maps.
		added, removed = []Entry{}, []Entry{}
		DiffFunc(a, b, func(e Entry) { added = append(added, e) }, func(e Entry) { removed = append(removed, e) })
		return added, removed
	}
	key := func(e Entry) string { return e.Pattern + "\x00" + e.Site + "\x00" + e.Category }
	inA := map[string]bool{}
	for _, e := range a {
		inA[key(e)] = true
	}
	inB := map[string]bool{}
	for _, e := range b {
		inB[key(e)] = true
		if !inA[key(e)] {
			added = append(added, e)
		}
	}
	for _, e := range a {
		if !inB[key(e)] {
			removed = append(removed, e)
		}
	}
	return SortEntries(added), SortEntries(removed)
}

// sortedUnique reports whether entries are as SortEntries leaves them:
// strictly increasing patterns.
func sortedUnique(entries []Entry) bool {
	for i := 1; i < len(entries); i++ {
		if entries[i-1].Pattern >= entries[i].Pattern {
			return false
		}
	}
	return true
}

// DiffFunc merges two lists in SortEntries order (strictly increasing
// patterns) and reports each entry of b not in a, and each of a not in b,
// in order. A pattern that moved to another site or category is both.
func DiffFunc(a, b []Entry, added, removed func(Entry)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Pattern < b[j].Pattern:
			removed(a[i])
			i++
		case i == len(a) || b[j].Pattern < a[i].Pattern:
			added(b[j])
			j++
		default:
			if a[i] != b[j] {
				removed(a[i])
				added(b[j])
			}
			i++
			j++
		}
	}
}
