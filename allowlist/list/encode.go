package list

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Encoded is a list's entries in canonical JSON with their hash: the part
// of a body that scopes with the same content share.
type Encoded struct {
	Entries []Entry
	JSON    []byte
	SHA256  string
}

// Encode encodes sorted entries (SortEntries order) once. The bytes are
// written by hand, byte for byte as encoding/json writes them
// (TestEncodingMatchesEncodingJSON), because at a million entries the
// registry would otherwise spend most of a publication in reflection.
func Encode(sorted []Entry) Encoded {
	if sorted == nil {
		sorted = []Entry{}
	}
	b := EncodeArray(sorted)
	sum := sha256.Sum256(b)
	return Encoded{Entries: sorted, JSON: b, SHA256: hex.EncodeToString(sum[:])}
}

// EntriesSHA256 returns the hex SHA-256 of the canonical JSON of entries
// (sorted and de-duplicated first, in a copy): a list's sha256 field.
func EntriesSHA256(entries []Entry) string {
	return Encode(SortEntries(append([]Entry(nil), entries...))).SHA256
}

// AppendHead appends a body's fields up to its entries array (what Split
// gives as the head); the entries array and Tail follow. GeneratedAt is
// written as given: the registry truncates it to whole seconds in UTC.
func AppendHead(b []byte, h Header) []byte {
	b = append(b, `{"scope":`...)
	b = appendString(b, h.Scope)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, h.Version, 10)
	b = append(b, `,"generated_at":`...)
	b = appendString(b, h.GeneratedAt.Format(time.RFC3339Nano))
	b = append(b, `,"sha256":"`...)
	b = append(b, h.SHA256...)
	return append(b, `","entries":`...)
}

// Tail ends a body, after its entries array.
const Tail = "}\n"

// Split splits a body Encode's head and array make up into the bytes
// before its entries array (the head) and the array, so that a store can
// keep one copy of entries that several versions share. No string in a
// body holds an unescaped quote, so the first `,"entries":` is the
// field's.
func Split(body []byte) (head, entries []byte, ok bool) {
	i := bytes.Index(body, []byte(`,"entries":`))
	if i < 0 || !bytes.HasSuffix(body, []byte(Tail)) {
		return nil, nil, false
	}
	i += len(`,"entries":`)
	if i > len(body)-len(Tail) {
		return nil, nil, false
	}
	return body[:i], body[i : len(body)-len(Tail)], true
}

// Join is the body Split split.
func Join(head, entries []byte) []byte {
	out := make([]byte, 0, len(head)+len(entries)+len(Tail))
	out = append(out, head...)
	out = append(out, entries...)
	return append(out, Tail...)
}

// EncodeArray encodes entries, in the order given, as the canonical JSON
// array a list body holds (and encoding/json would write).
func EncodeArray(entries []Entry) []byte {
	size := 2
	for _, e := range entries {
		size += 42 + len(e.Pattern) + len(e.Site) + len(e.Category)
	}
	b := append(make([]byte, 0, size), '[')
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

// plainString reports whether s is written as itself between quotes in a
// canonical body (appendString copies it), as every string a list reader
// accepts is.
func plainString(s string) bool {
	b := appendString(make([]byte, 0, len(s)+2), s)
	return len(b) == len(s)+2 && string(b[1:len(b)-1]) == s
}
