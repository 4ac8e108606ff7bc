package list_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// TestEncodingMatchesEncodingJSON: the hand-written encoder gives the
// bytes encoding/json gives, for awkward strings too.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	awkward := []string{"", "plain.example.org", "quote\"d", `back\slash`, "<tag>&amp;", "tab\there", "nl\n", "é-ünïcode", "\u2028line", "bad\xffutf8", "\x7f", "~"}
	var entries []list.Entry
	for i, p := range awkward {
		for j, s := range awkward {
			entries = append(entries, list.Entry{Pattern: fmt.Sprintf("%s-%d-%d", p, i, j), Site: s, Category: awkward[(i+j)%len(awkward)]})
		}
	}
	at := time.Date(2026, 11, 24, 1, 2, 3, 999, time.UTC)
	for _, scope := range []string{"common", "dept-<a>", ""} {
		l, body := allowlist.NewList(scope, 12, at, entries)
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

func TestDiff(t *testing.T) {
	a := []list.Entry{{"a.example.org", "s", "wiki"}, {"b.example.org", "s", "wiki"}}
	b := []list.Entry{{"b.example.org", "s", "wiki"}, {"c.example.org", "s", "wiki"}}
	added, removed := list.Diff(a, b)
	if len(added) != 1 || added[0].Pattern != "c.example.org" || len(removed) != 1 || removed[0].Pattern != "a.example.org" {
		t.Errorf("Diff = %v, %v", added, removed)
	}
}

// TestDiffMergeAgreesWithMaps: the merge used for published lists gives
// what the general comparison gives.
func TestDiffMergeAgreesWithMaps(t *testing.T) {
	mk := func(seed, n int) []list.Entry {
		var out []list.Entry
		for i := 0; i < n; i++ {
			k := (i*7 + seed) % 50
			out = append(out, list.Entry{Pattern: fmt.Sprintf("p%02d.example.org", k), Site: fmt.Sprintf("s%d", (k+seed)%3), Category: "wiki"})
		}
		return list.SortEntries(out)
	}
	for seed := 0; seed < 20; seed++ {
		a, b := mk(seed, 30), mk(seed+1, 25)
		added, removed := list.Diff(a, b)
		// The same inputs, shuffled, take the map path.
		ra, rb := append([]list.Entry(nil), a...), append([]list.Entry(nil), b...)
		slices.Reverse(ra)
		slices.Reverse(rb)
		wantAdded, wantRemoved := list.Diff(ra, rb)
		if fmt.Sprint(added) != fmt.Sprint(wantAdded) || fmt.Sprint(removed) != fmt.Sprint(wantRemoved) {
			t.Fatalf("seed %d: merge %v / %v, maps %v / %v", seed, added, removed, wantAdded, wantRemoved)
		}
	}
	if added, removed := list.Diff(mk(1, 10), mk(1, 10)); added == nil || removed == nil || len(added)+len(removed) != 0 {
		t.Errorf("equal lists: %v %v (want empty, not nil)", added, removed)
	}
}

// BenchmarkEncodeEntries is the registry's encoding of a list's entries
// (canonical JSON and its SHA-256) at 100k entries.
func BenchmarkEncodeEntries(b *testing.B) {
	entries := make([]list.Entry, 100_000)
	for i := range entries {
		entries[i] = list.Entry{Pattern: fmt.Sprintf("*.svc%d.tool%d.example.net", i%10, i/10), Site: fmt.Sprintf("site-%d", i/10), Category: "other"}
	}
	for b.Loop() {
		list.Encode(entries)
	}
}
