package allowlist

import (
	"testing"
	"time"
)

// TestUsageStaleAndSince: an entry is flagged for review only after more
// than 90 days in which a department whose list holds it was reporting
// and no report hit it; 89 days is not enough, 91 is.
func TestUsageStaleAndSince(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name                string
		lastHit, since, now time.Time
		stale               bool
	}{
		{"hit 89 days ago", t0, t0, t0.Add(89 * day), false},
		{"hit 91 days ago", t0, t0, t0.Add(91 * day), true},
		{"never hit, reports for 89 days", time.Time{}, t0, t0.Add(89 * day), false},
		{"never hit, reports for 91 days", time.Time{}, t0, t0.Add(91 * day), true},
		{"hit 91 days ago but reports began 80 days ago", t0, t0.Add(11 * day), t0.Add(91 * day), false},
		{"no reporting department", time.Time{}, time.Time{}, t0.Add(900 * day), false},
	} {
		if got := UsageStale(tc.lastHit, tc.since, tc.now); got != tc.stale {
			t.Errorf("%s: stale %v, want %v", tc.name, got, tc.stale)
		}
	}

	firsts := map[string]time.Time{"dept-a": t0.Add(10 * day), "dept-b": t0.Add(5 * day)}
	site := func(status string, approvers ...string) Site {
		s := Site{Status: status, Revision: 1, Domains: []string{"wiki.example.org"}, History: map[int][]string{1: {"wiki.example.org"}}, CreatedAt: t0}
		for _, d := range approvers {
			s.Signoffs = append(s.Signoffs, Signoff{Department: d, Decision: DecisionApprove, Revision: 1, At: t0})
		}
		return s
	}
	late := site(StatusApproved)
	late.CreatedAt = t0.Add(20 * day)
	for _, tc := range []struct {
		name string
		s    Site
		want time.Time
	}{
		{"on common: the first report of any department", site(StatusApproved, "dept-c", "dept-d"), t0.Add(5 * day)},
		{"on dept-a's list only", site(StatusProposed, "dept-a"), t0.Add(10 * day)},
		{"on the list of a department that does not report", site(StatusProposed, "dept-c"), time.Time{}},
		{"on no list", site(StatusProposed), time.Time{}},
		{"suspended", site(StatusSuspended, "dept-a", "dept-b"), time.Time{}},
		{"created after the first reports", late, t0.Add(20 * day)},
	} {
		if got := UsageSince(tc.s, firsts); !got.Equal(tc.want) {
			t.Errorf("%s: since %v, want %v", tc.name, got, tc.want)
		}
	}
}
