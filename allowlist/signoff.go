package allowlist

import (
	"slices"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Scopes computes the content of scope "common" and of every department's
// scope from the sites, their sign-offs and the quorum:
//
//   - common: every site that at least quorum departments approved, unless
//     suspended or withdrawn;
//   - a department: common, plus the sites that department approved, minus
//     those it objected to.
//
// A decision covers the domains of the revision it was made on. It counts
// for any revision whose domains it covers entirely, so narrowing a site
// keeps its approvals, while widening one waits for a new quorum: until
// then the last revision with enough approvals stays published, and a list
// never silently grows. The result maps each scope to sorted entries; a
// pattern held by two sites is listed once, for the first site by id.
// Scopes may share one slice: callers must not change the entries.
func Scopes(sites []Site, departments []string, quorum int) map[string][]Entry {
	return scopes(sites, departments, quorum, nil)
}

// ScopeBuilder gives what Scopes gives, but keeps common's sorted entries
// between calls: the next call merges in only the sites whose published
// domains changed, instead of sorting every entry again (most of a
// publication at a million entries). Its zero value is ready; it is not
// safe for concurrent use. TestScopeBuilderAgreesWithScopes holds it to
// Scopes over random changes.
type ScopeBuilder struct {
	published map[string]contribution // by site: what it put on common last time
	sorted    []Entry                 // common's entries, sorted, duplicates kept
}

type contribution struct {
	domains  []string
	category string
}

// Scopes is Scopes, computed incrementally.
func (b *ScopeBuilder) Scopes(sites []Site, departments []string, quorum int) map[string][]Entry {
	return scopes(sites, departments, quorum, b)
}

func scopes(sites []Site, departments []string, quorum int, b *ScopeBuilder) map[string][]Entry {
	return scopesOf(sites, publishedDomains(sites, quorum), departments, b)
}

// publishedDomains is PublishedDomains for each site, in order.
func publishedDomains(sites []Site, quorum int) [][]string {
	published := make([][]string, len(sites))
	for i, s := range sites {
		published[i] = PublishedDomains(s, quorum)
	}
	return published
}

// scopesOf is Scopes given each site's published domains (published[i]
// for sites[i]), computed once by the caller.
func scopesOf(sites []Site, published [][]string, departments []string, b *ScopeBuilder) map[string][]Entry {
	isDept := make(map[string]bool, len(departments))
	for _, d := range departments {
		isDept[d] = true
	}
	// Each site's domains on common, and, per department, only the sites
	// where its scope differs from common (it objected, or approved more).
	// A department with no such site shares common's sorted entries:
	// building and sorting a million entries once per scope would be most
	// of a publication.
	overrides := map[string]map[int][]string{}
	total := 0
	for i, s := range sites {
		common := published[i]
		total += len(common)
		if !live(s) {
			continue
		}
		// A department's first sign-off counts. Sites have a handful, so
		// a search of those before beats a map per site (a map each for
		// 100,000 sites was a quarter of a second per publication).
		for k, so := range s.Signoffs {
			if !isDept[so.Department] || slices.ContainsFunc(s.Signoffs[:k], func(o Signoff) bool { return o.Department == so.Department }) {
				continue
			}
			var domains []string
			if so.Decision == DecisionApprove {
				covered := latestCovered(s, s.History[so.Revision])
				if sameSlice(covered, common) {
					domains = common // the usual case: nothing to merge
				} else {
					domains = union(common, covered)
				}
			}
			if len(domains) != len(common) { // domains is common or a superset
				if overrides[so.Department] == nil {
					overrides[so.Department] = map[int][]string{}
				}
				overrides[so.Department][i] = domains
			}
		}
	}
	build := func(override map[int][]string) []Entry {
		entries := make([]Entry, 0, total)
		for i, s := range sites {
			domains := published[i]
			if d, ok := override[i]; ok {
				domains = d
			}
			for _, p := range domains {
				entries = append(entries, Entry{Pattern: p, Site: s.ID, Category: s.Category})
			}
		}
		return list.SortEntries(entries)
	}
	var common []Entry
	if b != nil {
		common = dedupeSorted(b.update(sites, published))
	} else {
		common = build(nil)
	}
	out := map[string][]Entry{ScopeCommon: common}
	for _, d := range departments {
		switch {
		case len(overrides[d]) == 0:
			out[d] = out[ScopeCommon]
		case b != nil:
			// Common's entries with the department's few sites swapped:
			// a merge, where sorting a million entries again for each
			// department with a decision of its own took half a second.
			out[d] = b.department(sites, published, overrides[d], func() []Entry { return build(overrides[d]) })
		default:
			out[d] = build(overrides[d])
		}
	}
	return out
}

// department returns a department's entries: common's (as update left
// them, duplicates kept) with the domains of the sites in override in
// place of what they put on common, deduplicated. whole builds them from
// scratch, should the two ever disagree.
func (b *ScopeBuilder) department(sites []Site, published [][]string, override map[int][]string, whole func() []Entry) []Entry {
	var removed, added []Entry
	for i, domains := range override {
		s := sites[i]
		for _, p := range published[i] {
			removed = append(removed, Entry{Pattern: p, Site: s.ID, Category: s.Category})
		}
		for _, p := range domains {
			added = append(added, Entry{Pattern: p, Site: s.ID, Category: s.Category})
		}
	}
	merged, ok := mergeSorted(b.sorted, removed, added)
	if !ok {
		return whole()
	}
	return dedupeSorted(merged)
}

// latestCovered returns the domains of the latest revision that approved
// (the domains a decision was made on) covers entirely.
func latestCovered(s Site, approved []string) []string {
	for rev := s.Revision; rev >= 1; rev-- {
		if d, ok := s.History[rev]; ok && covers(approved, d) {
			return d
		}
	}
	return nil
}

// covers reports whether every pattern of want is in have. It runs for
// every sign-off of every site at each publication: the usual cases (one
// revision's domains against themselves, a handful of domains) are
// answered without building a set (a set per site was a fifth of a
// publication at 100,000 sites).
func covers(have, want []string) bool {
	if len(have) == 0 {
		return false
	}
	if sameSlice(have, want) {
		return true
	}
	if len(have)*len(want) <= 256 {
		for _, w := range want {
			if !slices.Contains(have, w) {
				return false
			}
		}
		return true
	}
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// sameSlice reports whether a and b are the same slice (one revision's
// domains, returned twice).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range [][]string{a, b} {
		for _, p := range l {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// update returns common's entries for sites, sorted by pattern then site
// with duplicates kept, from the previous result and the sites whose
// published domains or category changed, and remembers them.
func (b *ScopeBuilder) update(sites []Site, published [][]string) []Entry {
	if b.published == nil {
		// First call: everything is new.
		b.published = map[string]contribution{}
		b.sorted = []Entry{}
	}
	var removed, added []Entry
	// Sites that publish now: once the loop has recorded them, when they
	// are all of b.published, no site is gone and the search below is
	// skipped (a set of 100,000 ids per publication was a tenth of it).
	present := 0
	for i, s := range sites {
		prev, had := b.published[s.ID]
		cur := published[i]
		if len(cur) > 0 {
			present++
		}
		if had && prev.category == s.Category && slices.Equal(prev.domains, cur) {
			continue
		}
		for _, p := range prev.domains {
			removed = append(removed, Entry{Pattern: p, Site: s.ID, Category: prev.category})
		}
		for _, p := range cur {
			added = append(added, Entry{Pattern: p, Site: s.ID, Category: s.Category})
		}
		if len(cur) == 0 {
			delete(b.published, s.ID)
		} else {
			b.published[s.ID] = contribution{domains: cur, category: s.Category}
		}
	}
	if present < len(b.published) {
		here := make(map[string]bool, len(sites))
		for _, s := range sites {
			here[s.ID] = true
		}
		for id, prev := range b.published {
			if !here[id] { // the site is gone
				for _, p := range prev.domains {
					removed = append(removed, Entry{Pattern: p, Site: id, Category: prev.category})
				}
				delete(b.published, id)
			}
		}
	}
	if len(removed) == 0 && len(added) == 0 {
		return b.sorted
	}
	out, ok := mergeSorted(b.sorted, removed, added)
	if !ok {
		// Cannot happen while sorted and published agree; start over
		// rather than publish something else than Scopes would.
		*b = ScopeBuilder{}
		return b.update(sites, published)
	}
	b.sorted = out
	return out
}

// mergeSorted returns a new slice: sorted (ordered by list.Compare) less
// removed, plus added, in order, without sorting sorted again. removed and
// added are sorted in place. ok is false if an entry of removed is not in
// sorted.
func mergeSorted(sorted, removed, added []Entry) (out []Entry, ok bool) {
	slices.SortFunc(removed, list.Compare)
	slices.SortFunc(added, list.Compare)
	out = make([]Entry, 0, len(sorted)-len(removed)+len(added))
	j, k := 0, 0
	for _, e := range sorted {
		for k < len(added) && list.Compare(added[k], e) < 0 {
			out = append(out, added[k])
			k++
		}
		if j < len(removed) && list.Compare(removed[j], e) == 0 {
			j++ // this site no longer publishes it
			continue
		}
		out = append(out, e)
	}
	return append(out, added[k:]...), j == len(removed)
}

// dedupeSorted drops, from entries sorted by list.Compare, a pattern
// already listed for an earlier site. It returns entries itself when there
// is nothing to drop, a new slice otherwise: never changes entries.
func dedupeSorted(entries []Entry) []Entry {
	for i := 1; i < len(entries); i++ {
		if entries[i].Pattern == entries[i-1].Pattern {
			out := append(make([]Entry, 0, len(entries)-1), entries[:i]...)
			for _, e := range entries[i+1:] {
				if out[len(out)-1].Pattern != e.Pattern {
					out = append(out, e)
				}
			}
			return out
		}
	}
	return entries
}
