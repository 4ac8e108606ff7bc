package list_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// randomChange returns entries with some removed, some added (new
// patterns, some of them wildcards under names already listed) and some
// moved to another site or category, as sign-offs and edits do.
func randomChange(rng *rand.Rand, old []list.Entry, round int) []list.Entry {
	var next []list.Entry
	for _, e := range old {
		switch rng.IntN(10) {
		case 0: // removed
		case 1: // same pattern, another site
			next = append(next, list.Entry{Pattern: e.Pattern, Site: e.Site + "-b", Category: e.Category})
		case 2: // another category
			next = append(next, list.Entry{Pattern: e.Pattern, Site: e.Site, Category: "wiki"})
		default:
			next = append(next, e)
		}
	}
	for i := range rng.IntN(len(old)/5 + 3) {
		p := fmt.Sprintf("r%d-%d.example.%s", round, i, []string{"org", "net", "gov.uk"}[rng.IntN(3)])
		if rng.IntN(3) == 0 && len(old) > 0 {
			// A wildcard over a name that may be listed exactly.
			name, _ := list.CutWildcard(old[rng.IntN(len(old))].Pattern)
			p = "*." + name
		}
		next = append(next, list.Entry{Pattern: p, Site: fmt.Sprintf("new-%d-%d", round, i), Category: "video"})
	}
	return list.SortEntries(next)
}

// probes are names to ask both matchers: every pattern's own name, a name
// below it, and names near it that no pattern covers.
func probes(entries ...[]list.Entry) []string {
	var out []string
	for _, es := range entries {
		for _, e := range es {
			name, _ := list.CutWildcard(e.Pattern)
			out = append(out, name, "x."+name, "X.Y."+strings.ToUpper(name)+".", "not"+name)
		}
	}
	return out
}

func TestPatchListGivesTheNextVersion(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	old := list.SortEntries(sampleEntries(300))
	_, body := allowlist.NewListSorted("common", 1, at, old)
	m := allowlist.Compile(entryPatterns(old))
	// index -> pattern, for the patched matcher's indexes.
	byIndex := entryPatterns(old)
	for round := range 30 {
		next := randomChange(rng, old, round)
		if round == 7 {
			next = []list.Entry{} // everything removed
		}
		l, want := allowlist.NewListSorted("common", int64(round+2), at.Add(time.Duration(round)*time.Second), next)
		added, removed := list.Diff(old, next)
		rng.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
		var got bytes.Buffer
		res, err := allowlist.PatchList(iotest.HalfReader(bytes.NewReader(body)), list.Header{Scope: l.Scope, Version: l.Version, GeneratedAt: l.GeneratedAt, SHA256: l.SHA256}, added, removed, &got)
		if err != nil {
			g := got.Bytes()
			i := 0
			for i < len(g) && i < len(want) && g[i] == want[i] {
				i++
			}
			t.Fatalf("round %d: %v\n%s\n%s", round, err, g[max(0, i-200):min(len(g), i+100)], want[max(0, i-200):min(len(want), i+100)])
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("round %d: patched body differs from NewList's", round)
		}
		if res.Old.Version != int64(round+1) || res.Stats.Entries != len(next) {
			t.Fatalf("round %d: old %+v stats %+v", round, res.Old, res.Stats)
		}
		_, st, _, err := readAll(bytes.NewReader(want))
		if err != nil || st != res.Stats {
			t.Fatalf("round %d: stats %+v, allowlist.ReadList says %+v (%v)", round, res.Stats, st, err)
		}
		pm := m.Patch(res.Remove, res.Add)
		byIndex = append(byIndex, res.Add...)
		fresh := allowlist.Compile(entryPatterns(next))
		freshPatterns := entryPatterns(next)
		if pm.Len() != fresh.Len() {
			t.Fatalf("round %d: patched matcher holds %d patterns, compiled %d", round, pm.Len(), fresh.Len())
		}
		for _, name := range probes(old, next) {
			gi, wi := pm.Match(name), fresh.Match(name)
			if (gi < 0) != (wi < 0) || (gi >= 0 && byIndex[gi] != freshPatterns[wi]) {
				t.Fatalf("round %d: %q: patched matcher says %d, compiled %d", round, name, gi, wi)
			}
		}
		// The old matcher is untouched.
		for _, e := range old {
			if name, _ := list.CutWildcard(e.Pattern); m.Match(name) < 0 && !strings.HasPrefix(e.Pattern, "*.") {
				t.Fatalf("round %d: old matcher lost %q", round, e.Pattern)
			}
		}
		old, body, m = next, want, pm
	}
	if m.Stale() == 0 {
		t.Error("no pattern was counted stale after removals")
	}
}

// TestPatchListReadsInPieces patches a body far larger than the reader's
// buffer, delivered a byte at a time, so that every field of an entry is
// at some point split across reads.
func TestPatchListReadsInPieces(t *testing.T) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	old := list.SortEntries(sampleEntries(4000))
	_, body := allowlist.NewListSorted("common", 1, at, old)
	next := list.SortEntries(append(slices.Clone(old[5:]), list.Entry{"zz.example.org", "zz", "wiki"}, list.Entry{"*.a.example.org", "a", "video"}))
	l, want := allowlist.NewListSorted("common", 2, at, next)
	added, removed := list.Diff(old, next)
	var got bytes.Buffer
	if _, err := allowlist.PatchList(iotest.OneByteReader(bytes.NewReader(body)), list.Header{Scope: "common", Version: 2, GeneratedAt: at, SHA256: l.SHA256}, added, removed, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("patched body differs from NewList's")
	}
}

func entryPatterns(entries []list.Entry) []allowlist.Pattern {
	out := make([]allowlist.Pattern, len(entries))
	for i, e := range entries {
		name, wildcard := list.CutWildcard(e.Pattern)
		out[i] = allowlist.Pattern{Name: name, Wildcard: wildcard}
	}
	return out
}

func TestPatchListRefuses(t *testing.T) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	old := list.SortEntries(sampleEntries(20))
	_, body := allowlist.NewListSorted("common", 4, at, old)
	next := slices.Clone(old[1:])
	next = list.SortEntries(append(next, list.Entry{"fresh.example.org", "f", "wiki"}))
	l, _ := allowlist.NewListSorted("common", 5, at, next)
	hdr := list.Header{Scope: "common", Version: 5, GeneratedAt: at, SHA256: l.SHA256}
	added, removed := list.Diff(old, next)
	if _, err := allowlist.PatchList(bytes.NewReader(body), hdr, added, removed, new(bytes.Buffer)); err != nil {
		t.Fatalf("the good patch fails: %v", err)
	}
	tampered := bytes.Replace(body, []byte("site-3"), []byte("site-9"), 1)
	cases := []struct {
		name           string
		body           []byte
		hdr            list.Header
		added, removed []list.Entry
		want           string
	}{
		{"removes what is not there", body, hdr, added, append(slices.Clone(removed), list.Entry{"nothere.example.org", "s", "other"}), "does not hold"},
		{"removes with another site", body, hdr, added, []list.Entry{{old[0].Pattern, "someone-else", old[0].Category}}, "holds for site"},
		{"adds what is there", body, hdr, append(slices.Clone(added), old[3]), removed, "holds already"},
		{"adds twice", body, hdr, append(slices.Clone(added), added[0]), removed, "added twice"},
		{"removes twice", body, hdr, added, append(slices.Clone(removed), removed[0]), "removed twice"},
		{"adds a pattern not in normal form", body, hdr, []list.Entry{{"Fresh.Example.org", "f", "wiki"}}, removed, "not a normalised pattern"},
		{"adds a public suffix", body, hdr, []list.Entry{{"*.gov.uk", "f", "wiki"}}, removed, "not a normalised pattern"},
		{"adds a string that needs escaping", body, hdr, []list.Entry{{"fresh.example.org", "f<script>", "wiki"}}, removed, "needs escaping"},
		{"gives another list than announced", body, hdr, nil, removed, "not to"},
		{"patches a tampered body", tampered, hdr, added, removed, "not to"},
		{"patches a truncated body", body[:len(body)/2], hdr, added, removed, "ends early"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := allowlist.PatchList(bytes.NewReader(c.body), c.hdr, c.added, c.removed, new(bytes.Buffer))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
}

// BenchmarkPatchList takes the next version of a list with one site added
// (what a sign-off reaching quorum publishes), by Patch and by PatchAt,
// against the peer they replace measured in the same run: reading, checking and compiling the
// whole new body (allowlist.ReadList then allowlist.Compile through a Builder).
func BenchmarkPatchList(b *testing.B) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		old := make([]list.Entry, n)
		for i := range old {
			p := fmt.Sprintf("*.tool%d-%x.example.net", i, i*7919)
			if i%3 == 0 {
				p = fmt.Sprintf("app.tool%d-%x.example.org", i, i*7919)
			}
			old[i] = list.Entry{Pattern: p, Site: fmt.Sprintf("site-%d", i), Category: "other"}
		}
		old = list.SortEntries(old)
		_, oldBody := allowlist.NewListSorted("common", 1, at, old)
		m := allowlist.Compile(entryPatterns(old))
		added := []list.Entry{{"meet.reload.example.org", "reload", "video"}, {"*.files.reload.example.org", "reload", "files"}}
		next := list.SortEntries(append(slices.Clone(old), added...))
		l, newBody := allowlist.NewListSorted("common", 2, at, next)
		hdr := list.Header{Scope: "common", Version: 2, GeneratedAt: at, SHA256: l.SHA256}
		old, next = nil, nil
		b.Run(fmt.Sprintf("entries=%d/patch", n), func(b *testing.B) {
			b.SetBytes(int64(len(newBody)))
			for b.Loop() {
				res, err := allowlist.PatchList(bytes.NewReader(oldBody), hdr, added, nil, discard{})
				if err != nil {
					b.Fatal(err)
				}
				m.Patch(res.Remove, res.Add)
			}
		})
		// PatchAt, as the resolver takes a patch: the held body read only
		// around the changes.
		_, st, _, err := readAll(bytes.NewReader(oldBody))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d/patch-at", n), func(b *testing.B) {
			b.SetBytes(int64(len(newBody)))
			for b.Loop() {
				res, err := allowlist.PatchListAt(bytes.NewReader(oldBody), 0, int64(len(oldBody)), st, hdr, added, nil, discard{})
				if err != nil {
					b.Fatal(err)
				}
				m.Patch(res.Remove, res.Add)
			}
		})
		b.Run(fmt.Sprintf("entries=%d/full", n), func(b *testing.B) {
			b.SetBytes(int64(len(newBody)))
			for b.Loop() {
				_, st, err := allowlist.ReadList(bytes.NewReader(newBody), func(string, bool) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				bl := allowlist.NewBuilder(st.Entries, st.NameBytes, st.Keys)
				if _, _, err := list.Reread(bytes.NewReader(newBody), func(name string, wildcard bool) error { bl.Add(name, wildcard); return nil }); err != nil {
					b.Fatal(err)
				}
				bl.Matcher()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzPatchList applies diffs made from fuzz bytes to a small list. A
// diff that fits the list (it removes entries the list holds, exactly, and
// adds patterns it does not hold once those are gone) must give exactly
// the body allowlist.NewList gives for the result; any other must be refused, even
// when the announced hash is that of a naive application of it.
func FuzzPatchList(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte{9, 4})
	f.Add([]byte{}, []byte{1, 1, 1})
	f.Add([]byte{5, 5}, []byte{0x85, 0x86, 3})
	patterns := []string{"a.example.org", "*.a.example.org", "b.example.org", "*.b.example.net", "c.example.gov.uk", "Bad.Example.org", "*.gov.uk", "d.example.org"}
	sites := []string{"s1", "s2", "s<3>"}
	cats := []string{"wiki", "other"}
	entry := func(b byte) list.Entry {
		return list.Entry{Pattern: patterns[int(b)%len(patterns)], Site: sites[int(b>>3)%len(sites)], Category: cats[int(b>>5)%len(cats)]}
	}
	at := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, base, ops []byte) {
		var old []list.Entry
		for _, b := range base {
			if e := entry(b); e.Pattern != "Bad.Example.org" && e.Pattern != "*.gov.uk" && e.Site != "s<3>" {
				old = append(old, e)
			}
		}
		old = list.SortEntries(old)
		_, body := allowlist.NewListSorted("common", 1, at, old)
		var added, removed []list.Entry
		for _, b := range ops {
			if b&0x80 != 0 {
				removed = append(removed, entry(b&0x7f))
			} else {
				added = append(added, entry(b))
			}
		}
		// A naive application: drop what matches, then add.
		next := map[string]list.Entry{}
		for _, e := range old {
			next[e.Pattern] = e
		}
		fits := true
		seen := map[string]bool{}
		for _, r := range removed {
			if next[r.Pattern] != r || seen["-"+r.Pattern] {
				fits = false
			}
			seen["-"+r.Pattern] = true
			delete(next, r.Pattern)
		}
		for _, a := range added {
			p, err := allowlist.ParsePattern(a.Pattern)
			ok := err == nil && p.String() == a.Pattern
			if _, there := next[a.Pattern]; there || seen["+"+a.Pattern] || !ok || !list.PlainString(a.Site) {
				fits = false
			}
			seen["+"+a.Pattern] = true
			next[a.Pattern] = a
		}
		var want []list.Entry
		for _, e := range next {
			want = append(want, e)
		}
		l, wantBody := allowlist.NewList("common", 2, at, want)
		var got bytes.Buffer
		_, err := allowlist.PatchList(bytes.NewReader(body), list.Header{Scope: "common", Version: 2, GeneratedAt: at, SHA256: l.SHA256}, added, removed, &got)
		switch {
		case fits && err != nil:
			t.Fatalf("a diff that fits was refused: %v (+%v -%v on %v)", err, added, removed, old)
		case fits && !bytes.Equal(got.Bytes(), wantBody):
			t.Fatalf("patched body differs:\n%s\n%s", got.Bytes(), wantBody)
		case !fits && err == nil:
			t.Fatalf("a diff that does not fit was taken: +%v -%v on %v", added, removed, old)
		}
	})
}

// TestPatchListCorruptHeldBody: allowlist.PatchList copies the held body's strings
// without checking each byte (they were checked when the body was taken);
// a held body corrupted since, in an entry the diff keeps, still gives no
// result: what is written fails the new version's hash.
func TestPatchListCorruptHeldBody(t *testing.T) {
	at := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)
	old := []list.Entry{{"a.example.org", "a", "wiki"}, {"b.example.org", "b", "wiki"}, {"c.example.org", "c", "wiki"}}
	_, body := allowlist.NewList("common", 1, at, old)
	added := []list.Entry{{"d.example.org", "d", "wiki"}}
	l, _ := allowlist.NewList("common", 2, at, append(slices.Clone(old), added...))
	next := list.Header{Scope: "common", Version: 2, GeneratedAt: at, SHA256: l.SHA256}
	if _, err := allowlist.PatchList(bytes.NewReader(body), next, added, nil, io.Discard); err != nil {
		t.Fatalf("the intact body: %v", err)
	}
	for _, bad := range []string{"\x01", "\xff", "\\"} {
		corrupt := bytes.Replace(body, []byte(`"site":"b"`), []byte(`"site":"`+bad+`"`), 1)
		if _, err := allowlist.PatchList(bytes.NewReader(corrupt), next, added, nil, io.Discard); err == nil {
			t.Errorf("a held body with %q in a kept entry was patched", bad)
		}
	}
}
