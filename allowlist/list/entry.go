package list

import (
	"slices"
	"strings"
)

// Entry is one line of a published list: a pattern and the site it serves.
type Entry struct {
	Pattern  string `json:"pattern"`
	Site     string `json:"site"`
	Category string `json:"category"`
}

// Compare orders entries by pattern, then site.
func Compare(a, b Entry) int {
	if c := strings.Compare(a.Pattern, b.Pattern); c != 0 {
		return c
	}
	return strings.Compare(a.Site, b.Site)
}

// SortEntries sorts entries by pattern, then site, and drops a pattern
// already listed for an earlier site: the canonical order of a body's
// entries. It sorts in place and never returns nil.
func SortEntries(entries []Entry) []Entry {
	// Published lists arrive sorted: checking is linear, sorting is not.
	if !slices.IsSortedFunc(entries, Compare) {
		slices.SortFunc(entries, Compare)
	}
	out := entries[:0]
	for _, e := range entries {
		if len(out) > 0 && out[len(out)-1].Pattern == e.Pattern {
			continue
		}
		out = append(out, e)
	}
	if out == nil {
		out = []Entry{}
	}
	return out
}

// Diff returns the entries of b not in a (added) and of a not in b
// (removed), each sorted. Entries are compared whole: a pattern that moved
// to another site or category is in both. It is the one way the registry
// computes the changes between two versions (publication, the diff
// endpoint, the pages).
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
