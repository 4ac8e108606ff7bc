package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewListIsCanonical(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := []Entry{{"b.example.org", "s1", "wiki"}, {"*.example.net", "s2", "other"}}
	b := []Entry{{"*.example.net", "s2", "other"}, {"b.example.org", "s1", "wiki"}}
	la, ba := NewList("common", 3, at, a)
	lb, bb := NewList("common", 3, at, b)
	if string(ba) != string(bb) || la.SHA256 != lb.SHA256 {
		t.Fatalf("order changed the bytes:\n%s\n%s", ba, bb)
	}
	want := `{"scope":"common","version":3,"generated_at":"2026-11-23T12:00:00Z","sha256":"` + la.SHA256 + `","entries":[{"pattern":"*.example.net","site":"s2","category":"other"},{"pattern":"b.example.org","site":"s1","category":"wiki"}]}` + "\n"
	if string(ba) != want {
		t.Errorf("body\n got %s\nwant %s", ba, want)
	}
	_, empty := NewList("dept-a", 0, at, nil)
	if !strings.Contains(string(empty), `"entries":[]`) {
		t.Errorf("empty list body %s", empty)
	}
}

func TestParseListAndSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	l, body := NewList("common", 7, time.Now(), []Entry{{"*.example.org", "s", "wiki"}})
	sig := SignList(priv, body)
	got, err := ParseList(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != l.SHA256 || got.Version != 7 || len(got.Entries) != 1 {
		t.Errorf("ParseList = %+v", got)
	}
	if err := VerifyList(pub, body, sig); err != nil {
		t.Errorf("VerifyList: %v", err)
	}
	for name, check := range map[string]error{
		"other key":     VerifyList(otherPub, body, sig),
		"no signature":  VerifyList(pub, body, ""),
		"not base64":    VerifyList(pub, body, "!!"),
		"changed bytes": VerifyList(pub, append([]byte(" "), body...), sig),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
	tampered := strings.Replace(string(body), "*.example.org", "*.example.com", 1)
	if _, err := ParseList([]byte(tampered)); err == nil {
		t.Error("ParseList accepted entries that do not match sha256")
	}
	for _, bad := range []string{"", "{", "[]", `{"scope":"common"}`, string(body) + "{}", `{"scope":"c","version":1,"sha256":"x","entries":[],"extra":1}`} {
		if _, err := ParseList([]byte(bad)); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
	// An entry that is not in normal form is refused even with a good hash.
	entries := []Entry{{"*.COM", "s", "wiki"}}
	l2 := List{Scope: "common", Version: 1, SHA256: EntriesSHA256(entries), Entries: entries}
	_, body2 := NewList(l2.Scope, 1, time.Now(), entries)
	if _, err := ParseList(body2); err == nil {
		t.Error("ParseList accepted a non-normal pattern")
	}
}

func TestDiff(t *testing.T) {
	a := []Entry{{"a.example.org", "s", "wiki"}, {"b.example.org", "s", "wiki"}}
	b := []Entry{{"b.example.org", "s", "wiki"}, {"c.example.org", "s", "wiki"}}
	added, removed := Diff(a, b)
	if len(added) != 1 || added[0].Pattern != "c.example.org" || len(removed) != 1 || removed[0].Pattern != "a.example.org" {
		t.Errorf("Diff = %v, %v", added, removed)
	}
}

func TestAuditChain(t *testing.T) {
	var entries []AuditEntry
	prev := ""
	for i := 1; i <= 3; i++ {
		e := AuditEntry{Seq: int64(i), At: time.Unix(int64(i), 0), Actor: "admin", Action: "site.create", Object: "site/x", Detail: "{}", PrevHash: prev}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		entries = append(entries, e)
	}
	if seq, ok := VerifyAudit(entries, ""); !ok {
		t.Fatalf("intact chain broken at %d", seq)
	}
	entries[1].Detail = `{"x":1}`
	if seq, ok := VerifyAudit(entries, ""); ok || seq != 2 {
		t.Fatalf("VerifyAudit = %d, %v; want 2, false", seq, ok)
	}
}

// FuzzParseList feeds arbitrary bytes to the list decoder: it must never
// panic, and whatever it accepts must have a matching hash and entries in
// normal form that compile.
func FuzzParseList(f *testing.F) {
	_, body := NewList("common", 3, time.Unix(0, 0), []Entry{{"*.example.org", "s", "wiki"}, {"meet.example.net", "m", "other"}})
	f.Add(body)
	f.Add([]byte(`{"scope":"common","version":0,"generated_at":"2026-01-01T00:00:00Z","sha256":"","entries":[]}`))
	f.Add([]byte(`{"entries":[{"pattern":"*.COM"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseList(b)
		// The streaming reader accepts only what ParseList accepts, and
		// reads the same list from it.
		h, _, streamed, serr := readAll(bytes.NewReader(b))
		if serr == nil {
			if err != nil {
				t.Fatalf("ReadList accepted what ParseList refuses (%v)", err)
			}
			if h != (ListHeader{l.Scope, l.Version, l.GeneratedAt, l.SHA256}) || fmt.Sprint(streamed) != fmt.Sprint(l.Patterns()) {
				t.Fatalf("ReadList and ParseList disagree: %+v / %+v", h, l)
			}
		}
		if err != nil {
			return
		}
		// ...and every list in the registry's own form.
		if _, canonical := NewList(l.Scope, l.Version, l.GeneratedAt, l.Entries); serr != nil && bytes.Equal(canonical, b) {
			t.Fatalf("ReadList refused a canonical body: %v", serr)
		}
		if EntriesSHA256(l.Entries) != l.SHA256 {
			t.Fatal("accepted a list whose hash does not match")
		}
		m := Compile(l.Patterns())
		for i, e := range l.Entries {
			name, _ := cutWildcard(e.Pattern)
			if m.Match(name) < 0 {
				t.Fatalf("entry %d (%s) does not match its own name", i, e.Pattern)
			}
		}
	})
}

// TestEncodingMatchesEncodingJSON: the hand-written encoder gives the
// bytes encoding/json gives, for awkward strings too.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	awkward := []string{"", "plain.example.org", "quote\"d", `back\slash`, "<tag>&amp;", "tab\there", "nl\n", "é-ünïcode", "\u2028line", "bad\xffutf8", "\x7f", "~"}
	var entries []Entry
	for i, p := range awkward {
		for j, s := range awkward {
			entries = append(entries, Entry{Pattern: fmt.Sprintf("%s-%d-%d", p, i, j), Site: s, Category: awkward[(i+j)%len(awkward)]})
		}
	}
	at := time.Date(2026, 11, 24, 1, 2, 3, 999, time.UTC)
	for _, scope := range []string{"common", "dept-<a>", ""} {
		l, body := NewList(scope, 12, at, entries)
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != string(want)+"\n" {
			t.Fatalf("scope %q: body differs from encoding/json:\n got %.300s\nwant %.300s", scope, body, want)
		}
		canon, _ := json.Marshal(l.Entries)
		if sum := sha256.Sum256(canon); l.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("scope %q: sha256 is not that of the canonical entries", scope)
		}
	}
}

// TestDiffMergeAgreesWithMaps: the merge used for published lists gives
// what the general comparison gives.
func TestDiffMergeAgreesWithMaps(t *testing.T) {
	mk := func(seed, n int) []Entry {
		var out []Entry
		for i := 0; i < n; i++ {
			k := (i*7 + seed) % 50
			out = append(out, Entry{Pattern: fmt.Sprintf("p%02d.example.org", k), Site: fmt.Sprintf("s%d", (k+seed)%3), Category: "wiki"})
		}
		return SortEntries(out)
	}
	for seed := 0; seed < 20; seed++ {
		a, b := mk(seed, 30), mk(seed+1, 25)
		added, removed := Diff(a, b)
		// The same inputs, shuffled, take the map path.
		ra, rb := append([]Entry(nil), a...), append([]Entry(nil), b...)
		slices.Reverse(ra)
		slices.Reverse(rb)
		wantAdded, wantRemoved := Diff(ra, rb)
		if fmt.Sprint(added) != fmt.Sprint(wantAdded) || fmt.Sprint(removed) != fmt.Sprint(wantRemoved) {
			t.Fatalf("seed %d: merge %v / %v, maps %v / %v", seed, added, removed, wantAdded, wantRemoved)
		}
	}
	if added, removed := Diff(mk(1, 10), mk(1, 10)); added == nil || removed == nil || len(added)+len(removed) != 0 {
		t.Errorf("equal lists: %v %v (want empty, not nil)", added, removed)
	}
}

// BenchmarkEncodeEntries is the registry's encoding of a list's entries
// (canonical JSON and its SHA-256) at 100k entries.
func BenchmarkEncodeEntries(b *testing.B) {
	entries := make([]Entry, 100_000)
	for i := range entries {
		entries[i] = Entry{Pattern: fmt.Sprintf("*.svc%d.tool%d.example.net", i%10, i/10), Site: fmt.Sprintf("site-%d", i/10), Category: "other"}
	}
	for b.Loop() {
		EncodeEntries(entries)
	}
}
