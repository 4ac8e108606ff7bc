package allowlist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/net/publicsuffix"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Entry is one line of a published list: a pattern and the site it serves.
// The list format is package list's; the core builds entries from sites
// and their sign-offs (Scopes).
type Entry = list.Entry

// List is one published version of a scope: the JSON form that the API
// serves and the resolver consumes. Its bytes are package list's
// canonical layout; the API's other formats are rendered from it.
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

// NewList builds the list for a version and its exact JSON body, the bytes
// that are signed, stored and served unchanged forever.
func NewList(scope string, version int64, at time.Time, entries []Entry) (List, []byte) {
	return NewListSorted(scope, version, at, list.SortEntries(append([]Entry(nil), entries...)))
}

// NewListSorted is NewList for entries that list.SortEntries has already
// put in order (as Scopes returns them); it does not copy them.
func NewListSorted(scope string, version int64, at time.Time, sorted []Entry) (List, []byte) {
	enc := list.Encode(sorted)
	l, head := NewListHead(scope, version, at, enc)
	return l, list.Join(head, enc.JSON)
}

// NewListHead builds a list and the head of its body (what list.Split
// gives): the body is the head, enc.JSON, then list.Tail. Scopes that list
// the same entries share enc.JSON instead of each holding a body.
func NewListHead(scope string, version int64, at time.Time, enc list.Encoded) (List, []byte) {
	l := List{Scope: scope, Version: version, GeneratedAt: at.UTC().Truncate(time.Second), SHA256: enc.SHA256, Entries: enc.Entries}
	h := list.Header{Scope: scope, Version: version, GeneratedAt: l.GeneratedAt, SHA256: enc.SHA256}
	return l, list.AppendHead(make([]byte, 0, 160+len(scope)), h)
}

// ReadList is list.Read with the registry's rule for patterns in normal
// form (normalPattern): what a resolver reads from the network.
func ReadList(r io.Reader, fn func(name string, wildcard bool) error) (list.Header, list.Stats, error) {
	return list.Read(r, normalPattern, fn)
}

// Patched is what PatchList learns while it writes a list's next version:
// list.Patched, with the changes to the set of patterns for Matcher.Patch.
type Patched struct {
	Old         list.Header
	Stats       list.Stats
	Add, Remove []Pattern
}

// PatchList is list.Patch with the registry's rule for patterns in normal
// form, giving the changed patterns as a Matcher takes them.
func PatchList(old io.Reader, next list.Header, added, removed []Entry, w io.Writer) (Patched, error) {
	res, err := list.Patch(old, next, added, removed, normalPattern, w)
	return Patched{Old: res.Old, Stats: res.Stats, Add: splitPatterns(res.Add), Remove: splitPatterns(res.Remove)}, err
}

// PatchListAt is list.PatchAt with the registry's rule for patterns in
// normal form: PatchList for a held body that can be read at any offset
// (n bytes of old from off), with the held version's stats.
func PatchListAt(old io.ReaderAt, off, n int64, oldStats list.Stats, next list.Header, added, removed []Entry, w io.Writer) (Patched, error) {
	res, err := list.PatchAt(old, off, n, oldStats, next, added, removed, normalPattern, w)
	return Patched{Old: res.Old, Stats: res.Stats, Add: splitPatterns(res.Add), Remove: splitPatterns(res.Remove)}, err
}

func splitPatterns(patterns []string) []Pattern {
	out := make([]Pattern, 0, len(patterns))
	for _, p := range patterns {
		name, wildcard := list.CutWildcard(p)
		out = append(out, Pattern{Name: name, Wildcard: wildcard})
	}
	return out
}

// DecodeList decodes a list body the registry wrote itself (stored,
// signed), checking its form and hash but not re-validating each pattern,
// and without copying: the entries' strings share body's memory, which
// must not change afterwards. At a million entries this is a tenth of a
// second where ParseList takes seconds.
func DecodeList(body []byte) (List, error) {
	var entries []Entry
	h, err := list.Walk(body, func(pattern, site, category []byte) error {
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

// ParseList decodes a list body strictly and checks that its sha256 matches
// its entries and that every pattern is in normal form. It does not check
// the signature: see list.Verify.
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
	if got := list.EntriesSHA256(l.Entries); got != l.SHA256 {
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
		name, wildcard := list.CutWildcard(e.Pattern)
		out[i] = Pattern{Name: name, Wildcard: wildcard}
	}
	return out
}

// normalPattern reports whether s is a pattern in the normal form
// ParsePattern gives, exactly when ParsePattern(s) succeeds with String()
// equal to s, and splits it: the list.Check of the registry. Plain ASCII
// names take a short path; the rest (A-labels) go through ParsePattern.
// FuzzParsePattern checks the two agree.
func normalPattern(s string) (name string, wildcard bool, ok bool) {
	name, wildcard = list.CutWildcard(s)
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
