package zone

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

func fullZone(entries []allowlist.Entry) *zoneData {
	names := allowlist.RPZOwners(entries)
	slices.Sort(names)
	return &zoneData{names: names, entries: entries}
}

// TestNextZoneMatchesFullBuild: a zone built from the previous one and a
// version's changes has exactly the names a full build gives, over random
// lists dense with wildcards covering other entries (the case where a
// change reaches names other than its own).
func TestNextZoneMatchesFullBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []string{"a", "b", "c"}
	pattern := func() string {
		n := "example.org"
		for range 1 + rng.IntN(3) {
			n = labels[rng.IntN(len(labels))] + "." + n
		}
		if rng.IntN(3) == 0 {
			n = "*." + n
		}
		return n
	}
	for round := range 3000 {
		set := map[string]allowlist.Entry{}
		for range rng.IntN(20) {
			p := pattern()
			set[p] = allowlist.Entry{Pattern: p, Site: "s", Category: "other"}
		}
		var prev []allowlist.Entry
		for _, e := range set {
			prev = append(prev, e)
		}
		prev = list.SortEntries(prev)
		var added, removed []allowlist.Entry
		next := map[string]allowlist.Entry{}
		for _, e := range prev {
			if rng.IntN(4) == 0 {
				removed = append(removed, e)
			} else {
				next[e.Pattern] = e
			}
		}
		for range rng.IntN(4) {
			p := pattern()
			if _, ok := set[p]; !ok {
				if _, ok := next[p]; !ok {
					e := allowlist.Entry{Pattern: p, Site: "t", Category: "other"}
					next[p] = e
					added = append(added, e)
				}
			}
		}
		var want []allowlist.Entry
		for _, e := range next {
			want = append(want, e)
		}
		want = list.SortEntries(want)
		got, ok := nextZone(fullZone(prev), added, removed, len(want))
		if !ok {
			t.Fatalf("round %d: changes refused\nprev %v\nadded %v\nremoved %v", round, prev, added, removed)
		}
		if full := fullZone(want); !slices.Equal(got.names, full.names) || !slices.Equal(got.entries, want) {
			t.Fatalf("round %d:\nprev %v\nadded %v\nremoved %v\nincremental %v\nfull        %v", round, prev, added, removed, got.names, full.names)
		}
	}
	// Changes that do not fit are refused, not applied.
	base := list.SortEntries([]allowlist.Entry{{Pattern: "a.example.org", Site: "s"}})
	for _, c := range []struct{ added, removed []allowlist.Entry }{
		{nil, []allowlist.Entry{{Pattern: "b.example.org", Site: "s"}}},
		{[]allowlist.Entry{{Pattern: "a.example.org", Site: "t"}}, nil},
	} {
		if _, ok := nextZone(fullZone(base), c.added, c.removed, 1); ok {
			t.Errorf("accepted %v / %v", c.added, c.removed)
		}
	}
}
