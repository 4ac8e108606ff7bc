package allowlist

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

func okAt(dept string, rev, d int) Signoff {
	so := ok(dept, rev)
	so.At = day(d)
	return so
}

func noAt(dept string, rev, d int, comment string) Signoff {
	so := no(dept, rev)
	so.At, so.Comment = day(d), comment
	return so
}

func TestConsensusDue(t *testing.T) {
	v1 := map[int][]string{1: {"wiki.example.org"}}
	widened := map[int][]string{1: {"wiki.example.org"}, 2: {"wiki.example.org", "files.example.org"}}
	lazy := Policy{Quorum: 2, ConsensusSponsors: 1, ConsensusAfter: 14 * 24 * time.Hour}
	tests := []struct {
		name      string
		site      Site
		policy    Policy
		due       time.Time
		ok        bool
		withdrawn time.Time
	}{
		{"off by default", site("w", StatusProposed, v1, okAt("a", 1, 0)), Policy{Quorum: 2}, time.Time{}, false, time.Time{}},
		{"one sponsor, no objection: 14 days after the approval", site("w", StatusProposed, v1, okAt("a", 1, 3)), lazy, day(17), true, time.Time{}},
		{"no sponsor: no clock", site("w", StatusProposed, v1), lazy, time.Time{}, false, time.Time{}},
		{"an objection stops the clock", site("w", StatusProposed, v1, okAt("a", 1, 0), noAt("b", 1, 5, "no")), lazy, time.Time{}, false, time.Time{}},
		{"two sponsors needed: the clock starts at the second", site("w", StatusProposed, v1, okAt("a", 1, 0), okAt("b", 1, 4)),
			Policy{Quorum: 3, ConsensusSponsors: 2, ConsensusAfter: 10 * 24 * time.Hour}, day(14), true, time.Time{}},
		{"two sponsors needed, one given", site("w", StatusProposed, v1, okAt("a", 1, 0)),
			Policy{Quorum: 3, ConsensusSponsors: 2, ConsensusAfter: 10 * 24 * time.Hour}, time.Time{}, false, time.Time{}},
		{"already on common by quorum", site("w", StatusApproved, v1, okAt("a", 1, 0), okAt("b", 1, 0)), lazy, time.Time{}, false, time.Time{}},
		{"suspended sites wait", site("w", StatusSuspended, v1, okAt("a", 1, 0)), lazy, time.Time{}, false, time.Time{}},
		{"a widened site needs a sponsor for its new domains", site("w", StatusProposed, widened, okAt("a", 1, 0)), lazy, time.Time{}, false, time.Time{}},
		{"a later decision restarts the clock", site("w", StatusProposed, widened, okAt("a", 2, 1), okAt("c", 1, 6)), lazy, day(20), true, time.Time{}},
		{"a withdrawn objection restarts it", site("w", StatusProposed, v1, okAt("a", 1, 0)), lazy, day(44), true, day(30)},
		{"an older withdrawal does not", site("w", StatusProposed, v1, okAt("a", 1, 5)), lazy, day(19), true, day(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, ok := ConsensusDue(tt.site, tt.policy, tt.withdrawn)
			if ok != tt.ok || !due.Equal(tt.due) {
				t.Errorf("got %v %v, want %v %v", due, ok, tt.due, tt.ok)
			}
		})
	}
}

func TestConsensusPublishes(t *testing.T) {
	v1 := map[int][]string{1: {"wiki.example.org"}}
	s := site("w", StatusProposed, v1, okAt("a", 1, 0))
	if got := PublishedDomains(s, 2); len(got) != 0 {
		t.Fatalf("before consensus: %v", got)
	}
	s.Consensus = 1
	if got := PublishedDomains(s, 2); !reflect.DeepEqual(got, []string{"wiki.example.org"}) {
		t.Fatalf("after consensus: %v", got)
	}
	got := Scopes([]Site{s}, []string{"a", "b"}, 2)
	if len(got["common"]) != 1 || len(got["b"]) != 1 {
		t.Fatalf("scopes after consensus: %v", got)
	}
	// An objection later takes it off common again; the objector's scope
	// too. Explicit quorum still works beside it.
	s.Signoffs = append(s.Signoffs, noAt("b", 1, 20, "data residency"))
	if got := PublishedDomains(s, 2); len(got) != 0 {
		t.Fatalf("objection after consensus: %v", got)
	}
	s.Signoffs = []Signoff{okAt("a", 1, 0), okAt("c", 1, 1), noAt("b", 1, 20, "")}
	if got := PublishedDomains(s, 2); len(got) != 1 {
		t.Fatalf("quorum beside consensus: %v", got)
	}
	// Widening after consensus: the old revision stays published.
	s = site("w", StatusProposed, map[int][]string{1: {"wiki.example.org"}, 2: {"files.example.org", "wiki.example.org"}}, okAt("a", 1, 0))
	s.Consensus = 1
	if got := PublishedDomains(s, 2); !reflect.DeepEqual(got, []string{"wiki.example.org"}) {
		t.Fatalf("widened after consensus: %v", got)
	}
}

func TestApprovalExpiry(t *testing.T) {
	p := Policy{Quorum: 2, ApprovalMaxAge: 365 * 24 * time.Hour, ApprovalWarning: 30 * 24 * time.Hour}
	tests := []struct {
		name          string
		clock         ApprovalClock
		policy        Policy
		now           time.Time
		warn, expires time.Time
		state         string
	}{
		{"off", ApprovalClock{Since: day(0)}, Policy{Quorum: 2}, day(1000), time.Time{}, time.Time{}, ApprovalCurrent},
		{"fresh", ApprovalClock{Since: day(0)}, p, day(10), day(335), time.Time{}, ApprovalCurrent},
		{"inside the warning period, not warned yet: never expires unwarned", ApprovalClock{Since: day(0)}, p, day(400), day(335), time.Time{}, ApprovalExpiring},
		{"warned on time: expires at 365 days", ApprovalClock{Since: day(0), WarnedAt: day(335)}, p, day(365), day(335), day(365), ApprovalExpired},
		{"warned on time, a day before the end", ApprovalClock{Since: day(0), WarnedAt: day(335)}, p, day(364), day(335), day(365), ApprovalExpiring},
		{"warned late: a full warning period follows the notice", ApprovalClock{Since: day(0), WarnedAt: day(360)}, p, day(380), day(335), day(390), ApprovalExpiring},
		{"renewal resets it: an old warning no longer counts", ApprovalClock{Since: day(370), WarnedAt: day(335)}, p, day(400), day(705), time.Time{}, ApprovalCurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warn, expires, _ := ApprovalTimes(tt.clock, tt.policy)
			if !warn.Equal(tt.warn) || !expires.Equal(tt.expires) {
				t.Errorf("times: got warn %v expires %v, want %v %v", warn, expires, tt.warn, tt.expires)
			}
			if got := ApprovalState(tt.clock, tt.now, tt.policy); got != tt.state {
				t.Errorf("state: got %s, want %s", got, tt.state)
			}
		})
	}
}

func TestFallsBelowQuorum(t *testing.T) {
	v1 := map[int][]string{1: {"wiki.example.org"}}
	two := site("w", StatusApproved, v1, ok("a", 1), ok("b", 1))
	three := site("w", StatusApproved, v1, ok("a", 1), ok("b", 1), ok("c", 1))
	if !FallsBelowQuorum(two, "a", 2) {
		t.Error("two approvals, one expires: below quorum")
	}
	if FallsBelowQuorum(three, "a", 2) {
		t.Error("three approvals, one expires: still at quorum")
	}
	if FallsBelowQuorum(site("w", StatusProposed, v1, ok("a", 1)), "a", 2) {
		t.Error("not listed: nothing to fall from")
	}
}

func TestSLA(t *testing.T) {
	p := Policy{Quorum: 2, DecisionSLA: 10 * 24 * time.Hour}
	v1 := map[int][]string{1: {"wiki.example.org"}}
	widened := map[int][]string{1: {"wiki.example.org"}, 2: {"wiki.example.org", "files.example.org"}}
	tests := []struct {
		name     string
		site     Site
		dept     string
		awaits   bool
		now      time.Time
		overdue  bool
		policyOn bool
	}{
		{"undecided, 5 days", site("w", StatusProposed, v1), "a", true, day(5), false, true},
		{"undecided, 11 days", site("w", StatusProposed, v1), "a", true, day(11), true, true},
		{"undecided, 11 days, SLA off", site("w", StatusProposed, v1), "a", true, day(11), false, false},
		{"decided", site("w", StatusProposed, v1, ok("a", 1)), "a", false, day(11), true, true},
		{"an objection is a decision", site("w", StatusProposed, v1, no("a", 1)), "a", false, day(11), true, true},
		{"a decision on old domains leaves the new ones waiting", site("w", StatusProposed, widened, ok("a", 1)), "a", true, day(11), true, true},
		{"on common already: nothing waits", site("w", StatusApproved, v1, ok("b", 1), ok("c", 1)), "a", false, day(11), true, true},
		{"suspended: nothing waits", site("w", StatusSuspended, v1), "a", false, day(11), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := awaitsDecision(tt.site, tt.dept, 2); got != tt.awaits {
				t.Errorf("awaits: got %v, want %v", got, tt.awaits)
			}
			pol := p
			if !tt.policyOn {
				pol.DecisionSLA = 0
			}
			if got := Overdue(day(0), tt.now, pol); got != tt.overdue {
				t.Errorf("overdue: got %v, want %v", got, tt.overdue)
			}
		})
	}
	items := []QueueItem{{ID: "new", Since: day(9)}, {ID: "late", Since: day(1), Overdue: true}, {ID: "older", Since: day(2)}, {ID: "later", Since: day(3), Overdue: true}}
	SortQueue(items)
	var got []string
	for _, it := range items {
		got = append(got, it.ID)
	}
	if want := []string{"late", "later", "older", "new"}; !reflect.DeepEqual(got, want) {
		t.Errorf("queue order: got %v, want %v", got, want)
	}
}

func TestGroupRequests(t *testing.T) {
	rs := []Request{
		{ID: 1, Tool: "Miro", URL: "https://miro.com/app", Department: "a", Status: RequestReceived, CreatedAt: day(1)},
		{ID: 2, Tool: "miro board", URL: "https://www.MIRO.com/", Department: "a", Status: RequestInReview, CreatedAt: day(2)},
		{ID: 3, Tool: "Miro", URL: "https://miro.com", Department: "b", Status: RequestReceived, CreatedAt: day(3)},
		{ID: 4, Tool: "  Trello  Boards", Department: "a", Status: RequestDeclined, CreatedAt: day(4)},
		{ID: 5, Tool: "trello boards", Department: "a", Status: RequestDeclined, CreatedAt: day(5)},
		{ID: 6, Tool: "Miro", URL: "miro", Department: "a", Status: RequestAllowed, CreatedAt: day(6)},
	}
	got := GroupRequests(rs)
	type g struct {
		dept, key   string
		count, open int
		ids         []int64
	}
	var short []g
	for _, x := range got {
		short = append(short, g{x.Department, x.Key, x.Count, x.Open, x.Requests})
	}
	want := []g{
		{"a", "miro.com", 2, 2, []int64{1, 2}},
		{"b", "miro.com", 1, 1, []int64{3}},
		{"a", "trello boards", 2, 0, []int64{4, 5}},
		{"a", "miro", 1, 0, []int64{6}},
	}
	if !reflect.DeepEqual(short, want) {
		t.Errorf("got %+v\nwant %+v", short, want)
	}
	if got[0].Tool != "miro board" || !got[0].First.Equal(day(1)) || !got[0].Last.Equal(day(2)) {
		t.Errorf("group a/miro.com: %+v", got[0])
	}
}

func TestWhyNot(t *testing.T) {
	v1 := map[int][]string{1: {"wiki.example.org"}}
	widened := map[int][]string{1: {"wiki.example.org"}, 2: {"files.example.org", "wiki.example.org"}}
	p := Policy{Quorum: 2}
	suspended := site("w", StatusSuspended, v1, ok("a", 1), ok("b", 1))
	suspended.Name, suspended.Reason = "Wiki", "a data breach"
	stopped := suspended
	stopped.Reason = "Under review!"
	named := func(s Site) *Site { s.Name = "Wiki"; return &s }
	tests := []struct {
		name     string
		site     *Site
		scope    string
		expired  []Signoff
		reason   string
		needed   int
		contains string
	}{
		{"not in the catalogue", nil, "common", nil, WhyNotListed, 0, "https://reg.example.org/request"},
		{"proposed, 1 of 2", named(site("w", StatusProposed, v1, ok("a", 1))), "common", nil, WhyProposed, 1, "approved by a; it needs 1 approval more"},
		{"proposed, none", named(site("w", StatusProposed, v1)), "common", nil, WhyProposed, 2, "needs 2 approvals more"},
		{"objected by the asking department", named(site("w", StatusProposed, v1, ok("a", 1), noAt("b", 1, 2, "stores data abroad"))), "b", nil, WhyObjected, 1, "objected to Wiki on 3 May 2026: stores data abroad"},
		{"another department's objection is not yours", named(site("w", StatusProposed, v1, noAt("b", 1, 2, "x"))), "a", nil, WhyProposed, 2, "proposed"},
		{"suspended", &suspended, "common", nil, WhySuspended, 0, "suspended: a data breach."},
		{"suspended, the reason a sentence already", &stopped, "common", nil, WhySuspended, 0, "suspended: Under review!"},
		{"objected, the comment a sentence already", named(site("w", StatusProposed, v1, noAt("b", 1, 2, "Data leaves the UK."))), "b", nil, WhyObjected, 2, "on 3 May 2026: Data leaves the UK. Ask your filtering owners"},
		{"objected without a comment", named(site("w", StatusProposed, v1, noAt("b", 1, 2, ""))), "b", nil, WhyObjected, 2, "objected to Wiki on 3 May 2026. Ask your filtering owners"},
		{"approval expired", named(site("w", StatusProposed, v1, ok("a", 1))), "common", []Signoff{okAt("b", 1, 0)}, WhyExpired, 1, "approval of b expired"},
		{"a new domain waits", named(site("w", StatusApproved, widened, ok("a", 1), ok("b", 1))), "common", nil, WhyChangePending, 2, "added recently"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := WhyNot(tt.site, tt.scope, tt.expired, p, "https://reg.example.org/request")
			if e.Reason != tt.reason || e.Needed != tt.needed || !strings.Contains(e.Message, tt.contains) {
				t.Errorf("got %s (%d needed) %q; want %s (%d) containing %q", e.Reason, e.Needed, e.Message, tt.reason, tt.needed, tt.contains)
			}
			if strings.Contains(e.Message, "..") || strings.Contains(e.Message, "!.") {
				t.Errorf("a sentence ends twice: %q", e.Message)
			}
			if strings.Contains(e.Message, "/v1/") {
				t.Errorf("the answer sends staff to an API call: %q", e.Message)
			}
		})
	}
}

func TestValidateRequestAnswer(t *testing.T) {
	tests := []struct {
		in    RequestAnswer
		field string
	}{
		{RequestAnswer{Status: RequestDeclined, Answer: "we use another tool"}, ""},
		{RequestAnswer{Status: RequestDeclined}, "answer"},
		{RequestAnswer{Status: "received"}, "status"},
		{RequestAnswer{Site: "zoom"}, ""},
		{RequestAnswer{Site: "Not An Id"}, "site"},
		{RequestAnswer{}, "status"},
		{RequestAnswer{Answer: "hello\x1b[2J"}, "answer"},
	}
	for _, tt := range tests {
		err := ValidateRequestAnswer(tt.in)
		var got string
		if err != nil {
			got = err.(*Error).Fields[0].Field
		}
		if got != tt.field {
			t.Errorf("%+v: got field %q, want %q (%v)", tt.in, got, tt.field, err)
		}
	}
}

// TestAwaitsEndpointChange: a change of networks waits for decisions as a
// change of domains does (the one queue rule, for the API's queue and the
// owner's page): a department that approved the old networks is asked
// again; one that approved the new ones is not; once the quorum approved
// them, nothing waits.
func TestAwaitsEndpointChange(t *testing.T) {
	same := map[int][]string{1: {"meet.example.org"}, 2: {"meet.example.org"}}
	wider := map[int]Endpoints{
		1: {Handling: Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}},
		2: {Networks: []Network{{Prefix: "192.0.2.0/24", Protocol: ProtocolUDP, Ports: "3478"}}, Handling: Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}},
	}
	s := site("m", StatusApproved, same, ok("a", 1), ok("b", 1), ok("c", 2))
	s.EndpointHistory = wider
	s.Networks, s.Handling = wider[2].Networks, wider[2].Handling
	if !awaitsDecision(s, "a", 2) {
		t.Error("a approved the old networks only: the new ones should wait for it")
	}
	if awaitsDecision(s, "c", 2) {
		t.Error("c approved the new networks: nothing waits for it")
	}
	s.Signoffs = append(s.Signoffs, ok("d", 2))
	if awaitsDecision(s, "a", 2) {
		t.Error("two approvals of the new networks: common lists them, nothing waits")
	}
}
