package list_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// spliceCases are lists and changes at the edges a bisection gets wrong:
// empty lists, changes at either end, every entry removed, an entry that
// changed site, and entries longer than the reader's window.
func spliceCases() [][2][]list.Entry {
	e := func(p, site string) list.Entry { return list.Entry{Pattern: p, Site: site, Category: "wiki"} }
	long := strings.Repeat("s", 3000)
	abc := []list.Entry{e("a.example", "s1"), e("b.example", "s2"), e("c.example", "s3")}
	return [][2][]list.Entry{
		{{}, {}},
		{{}, {e("a.example", "s1")}},
		{abc, {}},
		{abc, abc},
		{abc, {e("0.example", "s0"), e("a.example", "s1"), e("b.example", "s2"), e("c.example", "s3"), e("d.example", "s4")}},
		{abc, {e("b.example", "s2")}},
		{abc, {e("a.example", "s1"), e("b.example", "other"), e("c.example", "s3")}},
		{abc, {e("a.example", "s1"), e("bb.example", "s9"), e("c.example", "s3")}},
		{[]list.Entry{e("a.example", long), e("b.example", "s"), e("c.example", long), e("d.example", long)},
			[]list.Entry{e("a.example", long), e("c.example", long), e("ca.example", long), e("d.example", "short")}},
		// A site written escaped (as encoding/json writes '&') stays as
		// it was, and can be removed.
		{[]list.Entry{e("a.example", "s&t"), e("b.example", "s2")}, []list.Entry{e("b.example", "s2")}},
	}
}

// TestSpliceIsEncode: the splice of one version's array with the changes
// to the next is, byte for byte, the next version's array as EncodeArray
// writes it; from an array inside a larger file too.
func TestSpliceIsEncode(t *testing.T) {
	cases := spliceCases()
	rng := rand.New(rand.NewPCG(3, 5))
	for n := range 40 {
		var old []list.Entry
		for i := range rng.IntN(3000) {
			old = append(old, list.Entry{Pattern: fmt.Sprintf("%s%d.example.org", []string{"*.", "", "app."}[i%3], rng.IntN(100000)), Site: fmt.Sprintf("site-%d", i), Category: "other"})
		}
		old = list.SortEntries(old)
		cases = append(cases, [2][]list.Entry{old, randomChange(rng, old, n)})
	}
	for i, c := range cases {
		old, next := list.SortEntries(c[0]), list.SortEntries(c[1])
		added, removed := list.Diff(old, next)
		body := list.EncodeArray(old)
		want := list.EncodeArray(next)
		got, err := list.SpliceArray(body, added, removed)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: spliced\n%.300s\nwant\n%.300s", i, got, want)
		}
		// In a larger file, as a resolver's cache holds it.
		file := append(append([]byte("head"), body...), "tail"...)
		sp, err := list.PlanSplice(bytes.NewReader(file), 4, int64(len(body)), added, removed)
		if err != nil {
			t.Fatalf("case %d, in a file: %v", i, err)
		}
		var w bytes.Buffer
		if n, err := sp.WriteTo(bytes.NewReader(file), &w); err != nil || n != int64(len(want)) || sp.Size != int64(len(want)) || !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("case %d: WriteTo wrote %d (size %d) %v, want the %d bytes of the array", i, n, sp.Size, err, len(want))
		}
		// The patterns a matcher gains and loses.
		var add, remove []string
		list.DiffFunc(old, next, func(e list.Entry) { add = append(add, e.Pattern) }, func(e list.Entry) { remove = append(remove, e.Pattern) })
		if !samePatternChanges(sp.Add, sp.Remove, add, remove) {
			t.Fatalf("case %d: add %v remove %v", i, sp.Add, sp.Remove)
		}
	}
}

// samePatternChanges compares the splice's pattern changes with the
// entries' (a pattern in both is an entry that changed, in neither).
func samePatternChanges(gotAdd, gotRemove, add, remove []string) bool {
	in := func(s []string, p string) bool {
		for _, x := range s {
			if x == p {
				return true
			}
		}
		return false
	}
	var wantAdd, wantRemove []string
	for _, p := range add {
		if !in(remove, p) {
			wantAdd = append(wantAdd, p)
		}
	}
	for _, p := range remove {
		if !in(add, p) {
			wantRemove = append(wantRemove, p)
		}
	}
	return fmt.Sprint(wantAdd) == fmt.Sprint(gotAdd) && fmt.Sprint(wantRemove) == fmt.Sprint(gotRemove)
}

// TestSpliceRefuses: changes that do not fit the old array, added strings
// that need escaping, and an old array not written canonically are
// refused, never spliced into a wrong array.
func TestSpliceRefuses(t *testing.T) {
	e := func(p, site string) list.Entry { return list.Entry{Pattern: p, Site: site, Category: "wiki"} }
	old := list.EncodeArray([]list.Entry{e("a.example", "s1"), e("c.example", "s3")})
	for name, c := range map[string]struct {
		old            []byte
		added, removed []list.Entry
	}{
		"removes what old lacks":          {old, nil, []list.Entry{e("b.example", "s2")}},
		"removes another site's":          {old, nil, []list.Entry{e("a.example", "s9")}},
		"adds what old has":               {old, []list.Entry{e("a.example", "s1")}, nil},
		"adds a string needing escapes":   {old, []list.Entry{e("b.example", "s<2>")}, nil},
		"adds out of order":               {old, []list.Entry{e("d.example", "s"), e("b.example", "s")}, nil},
		"removes twice":                   {old, nil, []list.Entry{e("a.example", "s1"), e("a.example", "s1")}},
		"not an array":                    {[]byte(`{"pattern":"a.example"}`), []list.Entry{e("b.example", "s")}, nil},
		"too short":                       {[]byte(`[`), nil, nil},
		"escaped pattern in old":          {[]byte(`[{"pattern":"a\u0026.example","site":"s","category":"c"}]`), []list.Entry{e("b.example", "s")}, nil},
		"garbage between entries":         {[]byte(`[{"pattern":"a.example","site":"s","category":"c"},xx]`), nil, []list.Entry{{Pattern: "a.example", Site: "s", Category: "c"}}},
		"truncated entry before a change": {[]byte(`[{"pattern":"a.exa`), []list.Entry{e("b.example", "s")}, nil},
	} {
		if got, err := list.SpliceArray(c.old, c.added, c.removed); err == nil {
			t.Errorf("%s: spliced %s", name, got)
		}
	}
}

// FuzzSplice: for any two sets of entries, the splice of the first's array
// with their diff is the second's array.
func FuzzSplice(f *testing.F) {
	f.Add("a.example b.example c.example", "b.example c.example d.example", uint8(1))
	f.Add("", "x.example", uint8(0))
	f.Fuzz(func(t *testing.T, a, b string, site uint8) {
		entries := func(s string, salt uint8) []list.Entry {
			var out []list.Entry
			for i, p := range strings.Fields(s) {
				out = append(out, list.Entry{Pattern: p, Site: fmt.Sprintf("s%d", (int(salt)+i)%3), Category: "c"})
			}
			return list.SortEntries(out)
		}
		old, next := entries(a, 0), entries(b, site)
		added, removed := list.Diff(old, next)
		got, err := list.SpliceArray(list.EncodeArray(old), added, removed)
		if err != nil {
			// Refusing is allowed only for strings a canonical body
			// writes escaped.
			for _, e := range append(append([]list.Entry{}, old...), next...) {
				if !list.PlainString(e.Pattern) {
					return
				}
			}
			t.Fatalf("refused: %v", err)
		}
		if want := list.EncodeArray(next); !bytes.Equal(got, want) {
			t.Fatalf("spliced %s, want %s", got, want)
		}
	})
}

// TestPatchAtIsPatch: PatchAt, reading the held body at offsets in a
// larger file, gives Patch's body, old header, stats and pattern changes,
// round after round of changes of every kind.
func TestPatchAtIsPatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	old := list.SortEntries(sampleEntries(2000))
	_, body := allowlist.NewListSorted("common", 1, at, old)
	_, st, _, err := readAll(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 30 {
		next := randomChange(rng, old, round)
		if round == 9 {
			next = []list.Entry{}
		}
		l, want := allowlist.NewListSorted("common", int64(round+2), at.Add(time.Duration(round)*time.Second), next)
		hdr := list.Header{Scope: l.Scope, Version: l.Version, GeneratedAt: l.GeneratedAt, SHA256: l.SHA256}
		added, removed := list.Diff(old, next)
		rng.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
		var viaPatch, viaAt bytes.Buffer
		res, err := allowlist.PatchList(bytes.NewReader(body), hdr, added, removed, &viaPatch)
		if err != nil {
			t.Fatalf("round %d: Patch: %v", round, err)
		}
		file := append(append([]byte("allowlist-cache v1\nsig\n"), body...), "junk after"...)
		resAt, err := allowlist.PatchListAt(bytes.NewReader(file), 23, int64(len(body)), st, hdr, added, removed, &viaAt)
		if err != nil {
			t.Fatalf("round %d: PatchAt: %v", round, err)
		}
		if !bytes.Equal(viaAt.Bytes(), want) || !bytes.Equal(viaPatch.Bytes(), want) {
			t.Fatalf("round %d: PatchAt's body differs from NewList's", round)
		}
		if fmt.Sprint(res) != fmt.Sprint(resAt) {
			t.Fatalf("round %d: Patch gives %+v, PatchAt %+v", round, res, resAt)
		}
		old, body, st = next, want, resAt.Stats
	}
}

// TestPatchAtRefuses: what Patch refuses, PatchAt refuses too, and a
// held body not written as a list body is refused rather than spliced.
func TestPatchAtRefuses(t *testing.T) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	old := list.SortEntries(sampleEntries(20))
	_, body := allowlist.NewListSorted("common", 4, at, old)
	_, st, _, _ := readAll(bytes.NewReader(body))
	next := list.SortEntries(append(slices.Clone(old[1:]), list.Entry{Pattern: "fresh.example.org", Site: "f", Category: "wiki"}))
	l, _ := allowlist.NewListSorted("common", 5, at, next)
	hdr := list.Header{Scope: "common", Version: 5, GeneratedAt: at, SHA256: l.SHA256}
	added, removed := list.Diff(old, next)
	patch := func(body []byte, hdr list.Header, added, removed []list.Entry) error {
		_, err := allowlist.PatchListAt(bytes.NewReader(body), 0, int64(len(body)), st, hdr, added, removed, new(bytes.Buffer))
		return err
	}
	if err := patch(body, hdr, added, removed); err != nil {
		t.Fatalf("the good patch fails: %v", err)
	}
	tampered := bytes.Replace(body, []byte("site-3"), []byte("site-9"), 1)
	for name, c := range map[string]struct {
		body           []byte
		added, removed []list.Entry
	}{
		"removes what is not there":         {body, added, append(slices.Clone(removed), list.Entry{Pattern: "nothere.example.org", Site: "s", Category: "other"})},
		"removes with another site":         {body, added, []list.Entry{{Pattern: old[0].Pattern, Site: "someone-else", Category: old[0].Category}}},
		"adds what is there":                {body, append(slices.Clone(added), old[3]), removed},
		"adds twice":                        {body, append(slices.Clone(added), added[0]), removed},
		"removes twice":                     {body, added, append(slices.Clone(removed), removed[0])},
		"adds a pattern not in normal form": {body, []list.Entry{{Pattern: "Fresh.Example.org", Site: "f", Category: "wiki"}}, removed},
		"adds a public suffix":              {body, []list.Entry{{Pattern: "*.gov.uk", Site: "f", Category: "wiki"}}, removed},
		"adds a string that needs escaping": {body, []list.Entry{{Pattern: "fresh.example.org", Site: "f<script>", Category: "wiki"}}, removed},
		"gives another list than announced": {body, nil, removed},
		"patches a tampered body":           {tampered, added, removed},
		"patches a truncated body":          {body[:len(body)/2], added, removed},
		"patches a body without its tail":   {body[:len(body)-2], added, removed},
		"patches a body with no head":       {body[bytes.IndexByte(body, '['):], added, removed},
		"patches nothing":                   {nil, added, removed},
	} {
		if err := patch(c.body, hdr, c.added, c.removed); err == nil {
			t.Errorf("%s: patched", name)
		}
	}
}
