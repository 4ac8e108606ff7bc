package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
}

// CanonicalEntries returns the canonical JSON of entries: sorted by
// pattern then site, compact, fields in a fixed order. Its SHA-256 is the
// list's content hash.
func CanonicalEntries(entries []Entry) []byte {
	sorted := SortEntries(append([]Entry(nil), entries...))
	b, _ := json.Marshal(sorted) // cannot fail: strings only
	return b
}

// EntriesSHA256 returns the hex SHA-256 of the canonical JSON of entries.
func EntriesSHA256(entries []Entry) string {
	sum := sha256.Sum256(CanonicalEntries(entries))
	return hex.EncodeToString(sum[:])
}

// NewList builds the list for a version and its exact JSON body, the bytes
// that are signed, stored and served unchanged forever.
func NewList(scope string, version int64, at time.Time, entries []Entry) (List, []byte) {
	l := List{
		Scope:       scope,
		Version:     version,
		GeneratedAt: at.UTC().Truncate(time.Second),
		Entries:     SortEntries(append([]Entry(nil), entries...)),
	}
	l.SHA256 = EntriesSHA256(l.Entries)
	body, _ := json.Marshal(l)
	return l, append(body, '\n')
}

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

// SignList returns the base64 Ed25519 signature of a list body.
func SignList(key ed25519.PrivateKey, body []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))
}

// VerifyList checks a base64 signature over the exact bytes of body.
func VerifyList(pub ed25519.PublicKey, body []byte, signature string) error {
	if signature == "" {
		return fmt.Errorf("list has no signature")
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("list signature is not base64: %w", err)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, body, sig) {
		return fmt.Errorf("list signature does not verify")
	}
	return nil
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Diff returns the entries of b not in a (added) and of a not in b
// (removed), each sorted. Entries are compared by pattern and site.
func Diff(a, b []Entry) (added, removed []Entry) {
	key := func(e Entry) string { return e.Pattern + "\x00" + e.Site }
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
