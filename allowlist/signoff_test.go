package allowlist

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func site(id string, status string, revs map[int][]string, signoffs ...Signoff) Site {
	cur := 0
	for r := range revs {
		cur = max(cur, r)
	}
	return Site{ID: id, Category: "wiki", Status: status, Revision: cur, Domains: revs[cur], History: revs, Signoffs: signoffs}
}

func ok(dept string, rev int) Signoff {
	return Signoff{Department: dept, Decision: DecisionApprove, Revision: rev}
}

func no(dept string, rev int) Signoff {
	return Signoff{Department: dept, Decision: DecisionObject, Revision: rev}
}

// patterns lists a scope's patterns as "site:pattern".
func patterns(entries []Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Site+":"+e.Pattern)
	}
	return out
}

func TestScopes(t *testing.T) {
	depts := []string{"dept-a", "dept-b", "dept-c"}
	v1 := map[int][]string{1: {"*.wiki.example.org"}}
	widened := map[int][]string{1: {"*.wiki.example.org"}, 2: {"*.wiki.example.org", "files.example.net"}}
	narrowed := map[int][]string{1: {"*.wiki.example.org", "files.example.net"}, 2: {"*.wiki.example.org"}}
	tests := []struct {
		name   string
		quorum int
		sites  []Site
		want   map[string][]string
	}{
		{"nothing signed", 2, []Site{site("w", StatusProposed, v1)},
			map[string][]string{"common": {}, "dept-a": {}, "dept-b": {}, "dept-c": {}}},
		{"one approval is below quorum but in the approver's own scope", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1))},
			map[string][]string{"common": {}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {}, "dept-c": {}}},
		{"quorum reached: common and every department", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1), ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"quorum of one", 1,
			[]Site{site("w", StatusProposed, v1, ok("dept-c", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"an objection removes the site from the objector's scope only", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1), ok("dept-b", 1), no("dept-c", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {}}},
		{"objections do not count toward quorum", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1), no("dept-b", 1), no("dept-c", 1))},
			map[string][]string{"common": {}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {}, "dept-c": {}}},
		{"suspended leaves every list", 2,
			[]Site{site("w", StatusSuspended, v1, ok("dept-a", 1), ok("dept-b", 1))},
			map[string][]string{"common": {}, "dept-a": {}, "dept-b": {}, "dept-c": {}}},
		{"withdrawn leaves every list", 1,
			[]Site{site("w", StatusWithdrawn, v1, ok("dept-a", 1))},
			map[string][]string{"common": {}, "dept-a": {}, "dept-b": {}, "dept-c": {}}},
		{"a widening change waits for a new quorum", 2,
			[]Site{site("w", StatusApproved, widened, ok("dept-a", 1), ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"a widening change approved by one department widens only its scope", 2,
			[]Site{site("w", StatusApproved, widened, ok("dept-a", 2), ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org", "w:files.example.net"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"a widening change reaching quorum is published", 2,
			[]Site{site("w", StatusApproved, widened, ok("dept-a", 2), ok("dept-c", 2), ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org", "w:files.example.net"}, "dept-a": {"w:*.wiki.example.org", "w:files.example.net"}, "dept-b": {"w:*.wiki.example.org", "w:files.example.net"}, "dept-c": {"w:*.wiki.example.org", "w:files.example.net"}}},
		{"a narrowing change applies at once", 2,
			[]Site{site("w", StatusApproved, narrowed, ok("dept-a", 1), ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"unknown departments' sign-offs are ignored for scopes", 2,
			[]Site{site("w", StatusProposed, v1, ok("gone", 1), ok("dept-a", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org"}, "dept-a": {"w:*.wiki.example.org"}, "dept-b": {"w:*.wiki.example.org"}, "dept-c": {"w:*.wiki.example.org"}}},
		{"two sites, sorted by pattern bytes (* before letters)", 1,
			[]Site{site("z", StatusProposed, map[int][]string{1: {"a.example.org"}}, ok("dept-a", 1)), site("w", StatusProposed, v1, ok("dept-b", 1))},
			map[string][]string{"common": {"w:*.wiki.example.org", "z:a.example.org"}, "dept-a": {"w:*.wiki.example.org", "z:a.example.org"}, "dept-b": {"w:*.wiki.example.org", "z:a.example.org"}, "dept-c": {"w:*.wiki.example.org", "z:a.example.org"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string][]string{}
			for scope, entries := range Scopes(tt.sites, depts, tt.quorum) {
				got[scope] = patterns(entries)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Scopes:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

func TestSiteStatus(t *testing.T) {
	v1 := map[int][]string{1: {"*.wiki.example.org"}}
	for _, tt := range []struct {
		site Site
		want string
	}{
		{site("w", StatusProposed, v1), StatusProposed},
		{site("w", StatusProposed, v1, ok("a", 1), ok("b", 1)), StatusApproved},
		{site("w", StatusApproved, v1, ok("a", 1), no("b", 1)), StatusProposed},
		{site("w", StatusSuspended, v1, ok("a", 1), ok("b", 1)), StatusSuspended},
		{site("w", StatusWithdrawn, v1), StatusWithdrawn},
	} {
		if got := siteStatus(tt.site, 2); got != tt.want {
			t.Errorf("siteStatus(%+v) = %q, want %q", tt.site.Signoffs, got, tt.want)
		}
	}
}

// TestScopeBuilderAgreesWithScopes changes random sites in random ways
// (domains widened or narrowed, decisions, suspension, category, sites
// added and removed, the quorum, patterns shared between sites) and holds
// the incremental builder to Scopes after every change.
func TestScopeBuilderAgreesWithScopes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	depts := []string{"dept-a", "dept-b", "dept-c"}
	pool := []string{"a.example.org", "*.b.example.org", "c.example.net", "*.d.example.net", "e.example.com", "f.example.com", "*.g.example.org", "h.example.net"}
	pick := func() []string {
		n := 1 + rng.IntN(3)
		seen := map[string]bool{}
		var out []string
		for len(out) < n {
			p := pool[rng.IntN(len(pool))]
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		return out
	}
	var sites []Site
	newSite := func(id string) Site {
		return Site{ID: id, Category: "wiki", Status: StatusProposed, Revision: 1, History: map[int][]string{1: pick()}}
	}
	for i := 0; i < 12; i++ {
		sites = append(sites, newSite(fmt.Sprintf("s%02d", i)))
	}
	var b ScopeBuilder
	quorum := 2
	for step := 0; step < 3000; step++ {
		i := rng.IntN(len(sites))
		s := &sites[i]
		switch rng.IntN(8) {
		case 0: // a new revision of the domains
			s.Revision++
			s.History[s.Revision] = pick()
		case 1, 2: // a decision on some revision
			d := depts[rng.IntN(len(depts))]
			dec := DecisionApprove
			if rng.IntN(4) == 0 {
				dec = DecisionObject
			}
			s.Signoffs = append([]Signoff{{Department: d, Decision: dec, Revision: 1 + rng.IntN(s.Revision)}}, s.Signoffs...)
		case 3:
			s.Status = []string{StatusProposed, StatusSuspended, StatusWithdrawn, StatusApproved}[rng.IntN(4)]
		case 4:
			s.Category = Categories[rng.IntN(len(Categories))]
		case 5: // a site goes, another comes (sorted by id, as the store keeps them)
			sites = append(sites[:i], sites[i+1:]...)
			sites = append(sites, newSite(fmt.Sprintf("s%02d-%d", i, step)))
			slices.SortFunc(sites, func(a, b Site) int { return strings.Compare(a.ID, b.ID) })
		case 6:
			quorum = 1 + rng.IntN(3)
		case 7: // decisions withdrawn
			s.Signoffs = nil
		}
		// Sites are values: give Scopes and the builder their own copies
		// of the slices, as the store does, so that sharing is not what
		// makes them agree.
		snapshot := make([]Site, len(sites))
		for k, st := range sites {
			st.History = maps.Clone(st.History)
			for r, d := range st.History {
				st.History[r] = slices.Clone(d)
			}
			st.Signoffs = slices.Clone(st.Signoffs)
			snapshot[k] = st
		}
		want := Scopes(snapshot, depts, quorum)
		got := b.Scopes(snapshot, depts, quorum)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: builder\n%v\nScopes\n%v", step, got, want)
		}
	}
}

// TestCovers holds covers' shortcuts (the same slice, a linear search of
// small slices) to a set built from have, at sizes on both sides of the
// cut-over.
func TestCovers(t *testing.T) {
	domains := func(n, from int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, fmt.Sprintf("d%d.example.org", i))
		}
		return out
	}
	model := func(have, want []string) bool {
		set := map[string]bool{}
		for _, h := range have {
			set[h] = true
		}
		for _, w := range want {
			if !set[w] {
				return false
			}
		}
		return len(have) > 0
	}
	for _, n := range []int{0, 1, 3, 16, 17, 40} {
		have := domains(n, 0)
		cases := map[string][]string{
			"itself": have, "a copy": slices.Clone(have), "nothing": nil,
			"fewer": domains(n/2, 0), "one more": domains(n+1, 0), "shifted": domains(n, 1),
		}
		for name, want := range cases {
			if got, exp := covers(have, want), model(have, want); got != exp {
				t.Errorf("%d domains, %s: covers = %v, want %v", n, name, got, exp)
			}
		}
	}
}
