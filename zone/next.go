package zone

import (
	"slices"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
)

// nextZone builds a version's zone from the previous version's and the
// entries the version added and removed, without decoding the list or
// recomputing every name: at a million entries, a tenth of the time.
//
// Only names at or below a changed entry's name can change: an owner name
// is decided by its own entry and the wildcard entries at or above it
// (allowlist.RPZOwners leaves out what a wildcard covers). So the names
// in that region are recomputed from the entries in it, together with the
// wildcards above it, and the rest are kept. TestNextZoneMatchesFullBuild
// holds this against a full build. It reports false when the changes do
// not fit the previous entries (the caller then builds in full).
func nextZone(prev *zoneData, added, removed []allowlist.Entry, count int) (*zoneData, bool) {
	entries, ok := applyChanges(prev.entries, added, removed)
	if !ok || len(entries) != count {
		return nil, false
	}
	changed := map[string]bool{}
	above := map[string]bool{}
	for _, e := range slices.Concat(added, removed) {
		base := strings.TrimPrefix(e.Pattern, "*.")
		changed[base] = true
		for p := parent(base); p != ""; p = parent(p) {
			above[p] = true
		}
	}
	inRegion := func(name string) bool {
		for n := name; n != ""; n = parent(n) {
			if changed[n] {
				return true
			}
		}
		return false
	}
	region := func(es []allowlist.Entry) []string {
		var rel []allowlist.Entry
		for _, e := range es {
			base, wild := strings.CutPrefix(e.Pattern, "*.")
			if inRegion(base) || (wild && above[base]) {
				rel = append(rel, e)
			}
		}
		var out []string
		for _, o := range allowlist.RPZOwners(rel) {
			if inRegion(strings.TrimPrefix(o, "*.")) {
				out = append(out, o)
			}
		}
		slices.Sort(out)
		return out
	}
	gone, come := region(prev.entries), region(entries)
	names := make([]string, 0, len(prev.names)-len(gone)+len(come))
	g, c := 0, 0
	for _, n := range prev.names {
		if g < len(gone) && gone[g] == n {
			g++
			continue
		}
		for c < len(come) && come[c] < n {
			names = append(names, come[c])
			c++
		}
		names = append(names, n)
	}
	if g != len(gone) {
		return nil, false // a name the region had is not in the zone
	}
	names = append(names, come[c:]...)
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			return nil, false // a name in the region is also kept outside it
		}
	}
	return &zoneData{names: names, entries: entries, size: prev.size}, true
}

// applyChanges returns entries (sorted by pattern, unique) without the
// removed ones and with the added ones, or false if they do not fit.
func applyChanges(entries, added, removed []allowlist.Entry) ([]allowlist.Entry, bool) {
	drop := make(map[allowlist.Entry]bool, len(removed))
	for _, e := range removed {
		drop[e] = true
	}
	add := slices.Clone(added)
	slices.SortFunc(add, func(a, b allowlist.Entry) int { return strings.Compare(a.Pattern, b.Pattern) })
	out := make([]allowlist.Entry, 0, len(entries)+len(add)-len(removed))
	a := 0
	for _, e := range entries {
		if drop[e] {
			delete(drop, e)
			continue
		}
		for a < len(add) && add[a].Pattern < e.Pattern {
			out = append(out, add[a])
			a++
		}
		if a < len(add) && add[a].Pattern == e.Pattern {
			return nil, false
		}
		out = append(out, e)
	}
	out = append(out, add[a:]...)
	for i := 1; i < len(out); i++ {
		if out[i-1].Pattern >= out[i].Pattern {
			return nil, false
		}
	}
	return out, len(drop) == 0
}

// parent returns the name without its first label, or "" for a single
// label.
func parent(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return ""
}
