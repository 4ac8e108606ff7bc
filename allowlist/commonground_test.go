package allowlist

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// groundLists publishes sites with the real rules (Scopes) and returns the
// lists CommonGround reads for the departments asked about, as the API
// picks them (GroundScope: common for a department whose list is common's),
// each at version 7.
func groundLists(sites []Site, all, asked []string, quorum int) []GroundList {
	scopes := Scopes(sites, all, quorum)
	out := []GroundList{}
	for _, d := range asked {
		scope := GroundScope(d, list.EntriesSHA256(scopes[d]), list.EntriesSHA256(scopes[ScopeCommon]))
		out = append(out, GroundList{Department: Department{ID: d, Name: "Dept " + d}, Scope: scope, Version: 7, Entries: scopes[scope]})
	}
	return out
}

// summary writes a group as "site(allowed_by)[dept=ok:patterns dept=reason]".
func summary(group []GroundSite) []string {
	out := []string{}
	for _, s := range group {
		var cells []string
		for _, c := range s.Departments {
			if c.Allowed {
				cells = append(cells, c.Department+"=ok:"+strings.Join(c.Patterns, ","))
			} else {
				cells = append(cells, c.Department+"="+c.Reason)
			}
		}
		w := ""
		if s.WaitingFor != "" {
			w = "->" + s.WaitingFor
		}
		out = append(out, s.ID+"("+strconv.Itoa(s.AllowedBy)+")"+w+"["+strings.Join(cells, " ")+"]")
	}
	return out
}

func TestCommonGround(t *testing.T) {
	all := []string{"dept-a", "dept-b", "dept-c", "dept-d"}
	v1 := map[int][]string{1: {"*.wiki.example.org"}}
	widened := map[int][]string{1: {"*.wiki.example.org"}, 2: {"*.wiki.example.org", "files.example.net"}}
	named := func(s Site, name, category string) Site { s.Name, s.Category = name, category; return s }
	suspended := site("s", StatusSuspended, v1, ok("dept-a", 1), ok("dept-b", 1))
	suspended.Reason = "security review"
	tests := []struct {
		name     string
		quorum   int
		sites    []Site
		asked    []string
		category string
		// groups: allowed for all, one decision away, others
		allowed, one, others []string
		scopes               []string // the scope each column was read from
	}{
		{"nothing decided: every department is awaited", 2,
			[]Site{site("w", StatusProposed, v1)}, []string{"dept-a", "dept-b"}, "",
			[]string{}, []string{}, []string{"w(0)[dept-a=awaiting-decision dept-b=awaiting-decision]"},
			[]string{"common", "common"}},
		{"on common: allowed for all; lists that are common's are read from common", 2,
			[]Site{site("w", StatusApproved, v1, ok("dept-a", 1), ok("dept-b", 1))}, []string{"dept-a", "dept-b", "dept-c"}, "",
			[]string{"w(3)[dept-a=ok:*.wiki.example.org dept-b=ok:*.wiki.example.org dept-c=ok:*.wiki.example.org]"}, []string{}, []string{},
			[]string{"common", "common", "common"}},
		{"one approval below quorum: one decision away from the other", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1))}, []string{"dept-a", "dept-b"}, "",
			[]string{}, []string{"w(1)->dept-b[dept-a=ok:*.wiki.example.org dept-b=awaiting-decision]"}, []string{},
			[]string{"dept-a", "common"}},
		{"a department's own approval counts for it alone", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-c", 1))}, []string{"dept-a", "dept-b", "dept-c"}, "",
			[]string{}, []string{}, []string{"w(1)[dept-a=awaiting-decision dept-b=awaiting-decision dept-c=ok:*.wiki.example.org]"},
			[]string{"common", "common", "dept-c"}},
		{"an objection is not one decision away", 2,
			[]Site{site("w", StatusApproved, v1, ok("dept-a", 1), ok("dept-b", 1), no("dept-c", 1))}, []string{"dept-a", "dept-b", "dept-c"}, "",
			[]string{}, []string{}, []string{"w(2)[dept-a=ok:*.wiki.example.org dept-b=ok:*.wiki.example.org dept-c=objected]"},
			[]string{"common", "common", "dept-c"}},
		{"an objection only stops the objector", 2,
			[]Site{site("w", StatusApproved, v1, ok("dept-a", 1), ok("dept-b", 1), no("dept-c", 1))}, []string{"dept-a", "dept-d"}, "",
			[]string{"w(2)[dept-a=ok:*.wiki.example.org dept-d=ok:*.wiki.example.org]"}, []string{}, []string{},
			[]string{"common", "common"}},
		{"suspended: on no list, whoever approved", 2,
			[]Site{suspended}, []string{"dept-a", "dept-c"}, "",
			[]string{}, []string{}, []string{"s(0)[dept-a=suspended dept-c=suspended]"},
			[]string{"common", "common"}},
		{"withdrawn: not proposed", 1,
			[]Site{site("w", StatusWithdrawn, v1, ok("dept-a", 1))}, []string{"dept-a", "dept-b"}, "",
			[]string{}, []string{}, []string{"w(0)[dept-a=not-proposed dept-b=not-proposed]"},
			[]string{"common", "common"}},
		{"widened domains waiting for quorum: judged on the published ones", 2,
			[]Site{site("w", StatusApproved, widened, ok("dept-a", 2), ok("dept-b", 1))}, []string{"dept-a", "dept-b", "dept-c"}, "",
			[]string{"w(3)[dept-a=ok:*.wiki.example.org,files.example.net dept-b=ok:*.wiki.example.org dept-c=ok:*.wiki.example.org]"}, []string{}, []string{},
			[]string{"dept-a", "common", "common"}},
		{"widened domains of a site not yet on common: the approver's list has the new ones", 2,
			[]Site{site("w", StatusProposed, widened, ok("dept-a", 1), ok("dept-b", 2), no("dept-d", 2))}, []string{"dept-a", "dept-b", "dept-c", "dept-d"}, "",
			[]string{}, []string{}, []string{"w(3)[dept-a=ok:*.wiki.example.org dept-b=ok:*.wiki.example.org,files.example.net dept-c=ok:*.wiki.example.org dept-d=objected]"},
			[]string{"common", "dept-b", "common", "dept-d"}},
		{"two departments undecided: further than one decision", 2,
			[]Site{site("w", StatusProposed, v1, ok("dept-a", 1))}, []string{"dept-a", "dept-b", "dept-c"}, "",
			[]string{}, []string{}, []string{"w(1)[dept-a=ok:*.wiki.example.org dept-b=awaiting-decision dept-c=awaiting-decision]"},
			[]string{"dept-a", "common", "common"}},
		{"groups ordered by how many allow, then name; category filters", 3,
			[]Site{
				named(site("z", StatusApproved, map[int][]string{1: {"z.example.org"}}, ok("dept-a", 1), ok("dept-b", 1), ok("dept-d", 1)), "Alpha", "wiki"),
				named(site("y", StatusApproved, map[int][]string{1: {"y.example.org"}}, ok("dept-a", 1), ok("dept-b", 1), ok("dept-d", 1)), "beta", "wiki"),
				named(site("x", StatusProposed, map[int][]string{1: {"x.example.org"}}, ok("dept-a", 1)), "Gamma", "wiki"),
				named(site("v", StatusProposed, map[int][]string{1: {"v.example.org"}}, ok("dept-a", 1), ok("dept-c", 1)), "Omega", "wiki"),
				named(site("u", StatusProposed, map[int][]string{1: {"u.example.org"}}), "Delta", "wiki"),
				named(site("t", StatusApproved, map[int][]string{1: {"t.example.org"}}, ok("dept-a", 1), ok("dept-b", 1)), "Chat", "messaging"),
			}, []string{"dept-a", "dept-b", "dept-c"}, "wiki",
			[]string{"z(3)[dept-a=ok:z.example.org dept-b=ok:z.example.org dept-c=ok:z.example.org]", "y(3)[dept-a=ok:y.example.org dept-b=ok:y.example.org dept-c=ok:y.example.org]"},
			[]string{"v(2)->dept-b[dept-a=ok:v.example.org dept-b=awaiting-decision dept-c=ok:v.example.org]"},
			[]string{"x(1)[dept-a=ok:x.example.org dept-b=awaiting-decision dept-c=awaiting-decision]", "u(0)[dept-a=awaiting-decision dept-b=awaiting-decision dept-c=awaiting-decision]"},
			[]string{"dept-a", "dept-b", "dept-c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := CommonGround(tt.sites, groundLists(tt.sites, all, tt.asked, tt.quorum), tt.category, tt.quorum)
			if got := summary(g.AllowedForAll); !reflect.DeepEqual(got, tt.allowed) {
				t.Errorf("allowed for all:\n got %q\nwant %q", got, tt.allowed)
			}
			if got := summary(g.OneDecisionAway); !reflect.DeepEqual(got, tt.one) {
				t.Errorf("one decision away:\n got %q\nwant %q", got, tt.one)
			}
			if got := summary(g.Others); !reflect.DeepEqual(got, tt.others) {
				t.Errorf("others:\n got %q\nwant %q", got, tt.others)
			}
			var scopes []string
			for i, c := range g.Departments {
				scopes = append(scopes, c.Scope)
				if c.ID != tt.asked[i] || c.Version != 7 || c.Name != "Dept "+tt.asked[i] {
					t.Errorf("column %d: %+v", i, c)
				}
			}
			if !reflect.DeepEqual(scopes, tt.scopes) {
				t.Errorf("scopes read: got %q, want %q", scopes, tt.scopes)
			}
		})
	}
}

// TestCommonGroundSaysWhy checks the details of a "why not": the
// objection's comment and date, the suspension's reason, and counts.
func TestCommonGroundSaysWhy(t *testing.T) {
	at := time.Date(2026, 5, 3, 10, 0, 0, 0, time.UTC)
	v1 := map[int][]string{1: {"*.wiki.example.org"}}
	objected := site("w", StatusApproved, v1, ok("dept-a", 1), ok("dept-b", 1),
		Signoff{Department: "dept-c", Decision: DecisionObject, Comment: "data held abroad", At: at, Revision: 1})
	suspended := site("s", StatusSuspended, v1, ok("dept-a", 1))
	suspended.Reason = "breach under investigation"
	sites := []Site{objected, suspended}
	g := CommonGround(sites, groundLists(sites, []string{"dept-a", "dept-b", "dept-c"}, []string{"dept-c"}, 2), "", 2)
	if len(g.Others) != 2 {
		t.Fatalf("others: %+v", g.Others)
	}
	for _, s := range g.Others {
		c := s.Departments[0]
		switch s.ID {
		case "w":
			if c.Reason != ReasonObjected || c.Comment != "data held abroad" || c.At == nil || !c.At.Equal(at) || s.Approvals != 2 || s.Quorum != 2 {
				t.Errorf("objected: %+v %+v", s, c)
			}
		case "s":
			if c.Reason != ReasonSuspended || c.Comment != "breach under investigation" || c.At != nil {
				t.Errorf("suspended: %+v", c)
			}
		}
	}
}

// TestCommonGroundReadsTheList holds the answer to the list read, not to
// the decisions: a department that approved but whose list version does
// not carry the site yet is not counted as allowing it, and a list that
// carries a site counts whatever the decisions say.
func TestCommonGroundReadsTheList(t *testing.T) {
	v1 := map[int][]string{1: {"*.wiki.example.org"}}
	sites := []Site{site("w", StatusProposed, v1, ok("dept-a", 1))}
	stale := []GroundList{
		{Department: Department{ID: "dept-a"}, Scope: "dept-a", Version: 3, Entries: []Entry{}},
		{Department: Department{ID: "dept-b"}, Scope: "common", Version: 9, Entries: []Entry{{Pattern: "*.wiki.example.org", Site: "w", Category: "wiki"}}},
	}
	g := CommonGround(sites, stale, "", 2)
	got := summary(g.Others)
	want := []string{"w(1)[dept-a=not-published dept-b=ok:*.wiki.example.org]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if v := g.Others[0].Departments[0].Version; v != 3 {
		t.Errorf("version of dept-a's cell: %d", v)
	}
}
