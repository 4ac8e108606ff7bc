package allowlist

import (
	"context"
	"time"
)

// What the registry keeps of usage reports, and who may see what of it
// (docs/privacy.md).

const (
	// UsageRetention is how long the registry keeps usage counts: rows
	// whose period ended longer ago are deleted, and such reports refused.
	UsageRetention = 400 * 24 * time.Hour
	// UsageStaleAfter is how long an entry may go without a hit from any
	// reporting resolver before it is flagged for review.
	UsageStaleAfter = 90 * 24 * time.Hour
	// UsageDayLayout is the layout of the days usage is counted in (UTC).
	UsageDayLayout = "2006-01-02"
)

// UsageFilter narrows FindUsage: one department ("" for every one
// together) over the UTC days from From up to, not including, To.
type UsageFilter struct {
	Department string
	From, To   time.Time
	// Limit bounds the refused domains and entries listed (the most asked
	// or hit first); 0 means 100.
	Limit int
	// MinDepartments and MinClients, when above 0, list only the refused
	// domains that many departments reported and whose clients, summed
	// over them, reach MinClients. They apply before Limit, so that what
	// falls below them (one department's names, however often asked) does
	// not take the places of what reaches them.
	MinDepartments, MinClients int
}

// UsageSummary is what reports said over a range of days.
type UsageSummary struct {
	Department string    `json:"department,omitempty"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	// Reports is the number of reports received for the range.
	Reports int            `json:"reports"`
	Refused []RefusedUsage `json:"refused"`
	Entries []EntryUsage   `json:"entries"`
	Days    []UsageDay     `json:"days"`
}

// RefusedUsage is a refused registrable domain over a range of days.
// Clients is, for each department, the most distinct clients any one
// period saw (a lower bound of the people who asked), summed over the
// departments; Departments is how many reported the domain.
type RefusedUsage struct {
	Domain      string `json:"domain"`
	Queries     int64  `json:"queries"`
	Clients     int    `json:"clients"`
	Departments int    `json:"departments,omitempty"`
}

// EntryUsage is a list entry's hits over a range of days, and the end of
// the latest period that hit it.
type EntryUsage struct {
	Pattern string    `json:"pattern"`
	Site    string    `json:"site"`
	Hits    int64     `json:"hits"`
	LastHit time.Time `json:"last_hit"`
}

// UsageDay is one UTC day's totals: the trend the dashboard plots.
type UsageDay struct {
	Day            string `json:"day"`
	Hits           int64  `json:"hits"`
	RefusedQueries int64  `json:"refused_queries"`
	RefusedDomains int    `json:"refused_domains"`
}

// SiteUsage is a site's hits from every department: the latest hit kept,
// and the hits since a given day.
type SiteUsage struct {
	Site    string    `json:"site"`
	LastHit time.Time `json:"last_hit"`
	Hits    int64     `json:"hits"`
	// Departments is how many departments' reports the hits since the
	// given day came from.
	Departments int `json:"departments"`
}

// UsageStore is the part of a store that keeps usage reports.
// Implementations: allowlist/sqlite (SQLite and PostgreSQL).
type UsageStore interface {
	// RecordUsage stores a report received at now from a, a reader token
	// of the report's department, holding refused domains to the larger
	// of the report's k and registryK. It returns the receipt and whether
	// the report is new: a report_id already received from the department
	// returns the first receipt and counts nothing again. EINVALID,
	// EFORBIDDEN (another department's report, or not a reader),
	// ECONFLICT (a report_id another department used).
	RecordUsage(ctx context.Context, a Actor, r UsageReport, now time.Time, registryK int) (UsageReceipt, bool, error)
	// FindUsage sums the reports over f. ENOTFOUND (no such department).
	FindUsage(ctx context.Context, f UsageFilter) (UsageSummary, error)
	// UsageDays returns the cross-government totals of each day from
	// from to to (excluded) that has any, in order: what the dashboard
	// shows, read without the per-domain sums FindUsage makes.
	UsageDays(ctx context.Context, from, to time.Time) ([]UsageDay, error)
	// FindSiteUsage returns, by site id, every department's latest hit on
	// the site's entries and the hits counted since the UTC day of since,
	// and when each department's first report kept was received.
	FindSiteUsage(ctx context.Context, since time.Time) (map[string]SiteUsage, map[string]time.Time, error)
	// FindEntryUsage returns each entry of site that a report hit, from
	// every department: its hits since the UTC day of since and its
	// latest hit kept, by pattern; and when each department's first
	// report kept was received.
	FindEntryUsage(ctx context.Context, site string, since time.Time) ([]EntryUsage, map[string]time.Time, error)
	// SweepUsage deletes the reports and counts whose period ended before
	// before, and returns how many rows went.
	SweepUsage(ctx context.Context, before time.Time) (int64, error)
}

// PublicRefused is what anyone may see of cross-government refused
// domains: those reported by at least UsagePublicDepartments departments
// whose clients, summed over them, reach k (at least UsageMinK), without
// saying how many departments reported them. PublicFilter asks the store
// for no others, so that a limit counts only these.
func PublicRefused(in []RefusedUsage, k int) []RefusedUsage {
	k = max(k, UsageMinK)
	out := []RefusedUsage{}
	for _, r := range in {
		if r.Clients >= k && r.Departments >= UsagePublicDepartments {
			r.Departments = 0
			out = append(out, r)
		}
	}
	return out
}

// PublicFilter is f narrowed to the refused domains PublicRefused with k
// lets through.
func PublicFilter(f UsageFilter, k int) UsageFilter {
	f.MinDepartments, f.MinClients = UsagePublicDepartments, max(k, UsageMinK)
	return f
}

// UsageStale says whether an entry last hit at lastHit (zero: never)
// should be reviewed at now: usage has been reported, and the entry
// listed, for longer than UsageStaleAfter (since is the later of the
// first report and the entry's listing), and no report hit it in that
// time.
func UsageStale(lastHit, since, now time.Time) bool {
	if since.IsZero() || now.Sub(since) <= UsageStaleAfter {
		return false
	}
	return lastHit.IsZero() || now.Sub(lastHit) > UsageStaleAfter
}

// UsageSince is when reporting resolvers could first have hit s's entries:
// the earliest first report (firstReports, by department) of the
// departments whose lists hold s (every department's when s is on the
// common list), and never before s was created. Zero when s is on no list,
// or no department whose list holds it reports.
func UsageSince(s Site, firstReports map[string]time.Time) time.Time {
	if s.Status == StatusSuspended || s.Status == StatusWithdrawn {
		return time.Time{}
	}
	var since time.Time
	consider := func(dept string) {
		if t, ok := firstReports[dept]; ok && (since.IsZero() || t.Before(since)) {
			since = t
		}
	}
	if s.Status == StatusApproved {
		for dept := range firstReports {
			consider(dept)
		}
	} else {
		for _, so := range Sponsors(s) {
			consider(so.Department)
		}
	}
	if !since.IsZero() && s.CreatedAt.After(since) {
		since = s.CreatedAt
	}
	return since
}

// MonthStart is the first instant of t's month, in UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
