package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// Reader is a reader token's actor bound to dept (a resolver sending usage
// reports).
func Reader(dept string) allowlist.Actor {
	return allowlist.Actor{Role: allowlist.RoleReader, Department: dept, Name: "resolver-" + dept}
}

// UsageReport is a valid report from dept for the 15 minutes before end,
// with report id n.
func UsageReport(dept string, n int, end time.Time) allowlist.UsageReport {
	return allowlist.UsageReport{
		ReportID: fmt.Sprintf("%032x", n), Department: dept, Scope: dept, ListVersion: 1, Mode: allowlist.ModeEnforce,
		PeriodStart: end.Add(-15 * time.Minute), PeriodEnd: end, K: 5,
	}
}

func usageStore(t *testing.T, db Store) allowlist.UsageStore {
	u, ok := db.(allowlist.UsageStore)
	if !ok {
		t.Fatal("the store keeps no usage reports (allowlist.UsageStore)")
	}
	return u
}

// testUsage: reports are counted once per report_id, only a reader of the
// report's own department may send one, entries not on the list are
// ignored, sums per department and across departments are right, and the
// sweep deletes what is older than the retention.
func testUsage(t *testing.T, b Backend) {
	db := b.open(t, 2)
	u := usageStore(t, db)
	Seed(t, db, "dept-a", "dept-b")
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"*.wiki.example.org", "files.example.net"}, Owner: allowlist.Owner{Name: "Ops"},
	}))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", ""))

	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	r := UsageReport("dept-a", 1, now)
	r.Entries = []allowlist.UsageEntry{{Pattern: "*.wiki.example.org", Hits: 1200}, {Pattern: "gone.example.org", Hits: 10}}
	r.Refused = []allowlist.UsageRefused{{Domain: "example.com", Queries: 150, Clients: 10}, {Domain: "tool-example.net", Queries: 20, Clients: 5}}

	// Refused, and nothing counted: the wrong department, an owner, a
	// reader with no department, clients below the report's own k.
	for name, a := range map[string]allowlist.Actor{
		"other department": Reader("dept-b"), "owner": Owner("dept-a"), "admin": allowlist.System,
		"reader of no department": {Role: allowlist.RoleReader, Name: "r"},
	} {
		if _, _, err := u.RecordUsage(ctx, a, r, now, 5); allowlist.ErrorCode(err) != allowlist.EFORBIDDEN {
			t.Errorf("%s: %v, want EFORBIDDEN", name, err)
		}
	}
	under := r
	under.K = 10
	if _, _, err := u.RecordUsage(ctx, Reader("dept-a"), under, now, 5); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Errorf("clients 5 under the report's own k of 10: %v, want EINVALID", err)
	}
	old := UsageReport("dept-a", 99, now.Add(-allowlist.UsageRetention-time.Hour))
	if _, _, err := u.RecordUsage(ctx, Reader("dept-a"), old, now, 5); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Errorf("report older than the retention: %v, want EINVALID", err)
	}
	day := allowlist.UsageFilter{From: now.Truncate(24 * time.Hour), To: now.Truncate(24 * time.Hour).Add(24 * time.Hour)}
	if s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, day)); s.Reports != 0 || len(s.Refused) != 0 || len(s.Entries) != 0 {
		t.Fatalf("refused reports counted: %+v", s)
	}

	rc, fresh, err := u.RecordUsage(ctx, Reader("dept-a"), r, now, 5)
	if err != nil || !fresh {
		t.Fatalf("RecordUsage = %+v, %v, %v", rc, fresh, err)
	}
	want := allowlist.UsageReceipt{ReportID: r.ReportID, Entries: 1, IgnoredEntries: 1, Refused: 2}
	if rc != want {
		t.Errorf("receipt %+v, want %+v", rc, want)
	}
	// Sent again (a retry whose answer was lost): the same receipt, counted once.
	again, fresh, err := u.RecordUsage(ctx, Reader("dept-a"), r, now, 5)
	if err != nil || fresh || again != want {
		t.Errorf("report sent again: %+v, %v, %v", again, fresh, err)
	}
	// The same id from another department is not the same report.
	rb := UsageReport("dept-b", 1, now)
	if _, _, err := u.RecordUsage(ctx, Reader("dept-b"), rb, now, 5); allowlist.ErrorCode(err) != allowlist.ECONFLICT {
		t.Errorf("report_id reused by another department: %v, want ECONFLICT", err)
	}
	// A second period of dept-a the same day, and one of dept-b.
	r2 := UsageReport("dept-a", 2, now.Add(15*time.Minute))
	r2.Entries = []allowlist.UsageEntry{{Pattern: "*.wiki.example.org", Hits: 30}, {Pattern: "files.example.net", Hits: 10}}
	r2.Refused = []allowlist.UsageRefused{{Domain: "example.com", Queries: 10, Clients: 5}}
	Must[allowlist.UsageReceipt](t)(func() (allowlist.UsageReceipt, error) {
		rc, _, err := u.RecordUsage(ctx, Reader("dept-a"), r2, now.Add(15*time.Minute), 5)
		return rc, err
	}())
	rb = UsageReport("dept-b", 3, now)
	rb.Refused = []allowlist.UsageRefused{{Domain: "example.com", Queries: 40, Clients: 5}}
	Must[allowlist.UsageReceipt](t)(func() (allowlist.UsageReceipt, error) {
		rc, _, err := u.RecordUsage(ctx, Reader("dept-b"), rb, now, 5)
		return rc, err
	}())

	a := day
	a.Department = "dept-a"
	s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, a))
	if s.Reports != 2 || len(s.Refused) != 2 || s.Refused[0] != (allowlist.RefusedUsage{Domain: "example.com", Queries: 160, Clients: 10, Departments: 1}) ||
		s.Refused[1] != (allowlist.RefusedUsage{Domain: "tool-example.net", Queries: 20, Clients: 5, Departments: 1}) {
		t.Errorf("dept-a refused: %d reports, %+v", s.Reports, s.Refused)
	}
	if len(s.Entries) != 2 || s.Entries[0].Pattern != "*.wiki.example.org" || s.Entries[0].Hits != 1230 || s.Entries[0].Site != "wiki" ||
		!s.Entries[0].LastHit.Equal(now.Add(15*time.Minute)) || s.Entries[1].Pattern != "files.example.net" || s.Entries[1].Hits != 10 {
		t.Errorf("dept-a entries: %+v", s.Entries)
	}
	if len(s.Days) != 1 || s.Days[0] != (allowlist.UsageDay{Day: "2026-12-03", Hits: 1240, RefusedQueries: 180, RefusedDomains: 2}) {
		t.Errorf("dept-a days: %+v", s.Days)
	}
	all := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, day))
	if all.Reports != 3 || len(all.Refused) != 2 || all.Refused[0] != (allowlist.RefusedUsage{Domain: "example.com", Queries: 200, Clients: 15, Departments: 2}) {
		t.Errorf("all departments: %d reports, %+v", all.Reports, all.Refused)
	}
	// The thresholds apply before the limit: a limit of 1 still finds the
	// one domain that reaches them, whatever ranks above it.
	for _, c := range []struct {
		minDepts, minClients, limit int
		want                        []string
	}{
		{2, 0, 1, []string{"example.com"}},
		{1, 5, 0, []string{"example.com", "tool-example.net"}},
		{1, 6, 0, []string{"example.com"}},
		{2, 16, 0, nil},
		{3, 0, 0, nil},
	} {
		f := day
		f.MinDepartments, f.MinClients, f.Limit = c.minDepts, c.minClients, c.limit
		var got []string
		for _, r := range Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, f)).Refused {
			got = append(got, r.Domain)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("at least %d departments and %d clients, limit %d: %v, want %v", c.minDepts, c.minClients, c.limit, got, c.want)
		}
	}
	if f := allowlist.PublicFilter(day, 0); f.MinDepartments != allowlist.UsagePublicDepartments || f.MinClients != allowlist.UsageMinK {
		t.Errorf("public filter %+v", f)
	}
	b2 := day
	b2.Department = "dept-b"
	if s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, b2)); s.Reports != 1 || len(s.Refused) != 1 || s.Refused[0].Queries != 40 || len(s.Entries) != 0 {
		t.Errorf("dept-b sees %+v", s)
	}
	if _, err := u.FindUsage(ctx, allowlist.UsageFilter{Department: "nope", From: day.From, To: day.To}); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Errorf("unknown department: %v", err)
	}

	sites, first := func() (map[string]allowlist.SiteUsage, map[string]time.Time) {
		m, f, err := u.FindSiteUsage(ctx, allowlist.MonthStart(now))
		if err != nil {
			t.Fatal(err)
		}
		return m, f
	}()
	if w := sites["wiki"]; w.Hits != 1240 || !w.LastHit.Equal(now.Add(15*time.Minute)) || len(first) != 2 || !first["dept-a"].Equal(now) || !first["dept-b"].Equal(now) || len(sites) != 1 {
		t.Errorf("site usage %+v, first report %v", sites, first)
	}

	entries, first, err := u.FindEntryUsage(ctx, "wiki", now.Add(15*time.Minute))
	if err != nil || len(first) != 2 || len(entries) != 2 || entries[0] != (allowlist.EntryUsage{Pattern: "*.wiki.example.org", Site: "wiki", Hits: 1230, LastHit: now.Add(15 * time.Minute)}) ||
		entries[1] != (allowlist.EntryUsage{Pattern: "files.example.net", Site: "wiki", Hits: 10, LastHit: now.Add(15 * time.Minute)}) {
		t.Errorf("entry usage of wiki: %+v, %v", entries, err)
	}
	if entries, _, _ := u.FindEntryUsage(ctx, "wiki", now.Add(24*time.Hour)); len(entries) != 2 || entries[0].Hits != 0 || entries[0].LastHit.IsZero() {
		t.Errorf("entry usage of wiki since tomorrow: %+v", entries)
	}

	// The sweep: nothing is younger than the cutoff yet.
	if n := Must[int64](t)(u.SweepUsage(ctx, now.Add(-time.Hour))); n != 0 {
		t.Errorf("sweep deleted %d rows of today", n)
	}
	// 401 days on, a new report sweeps everything older than 400 days.
	later := now.Add(401 * 24 * time.Hour)
	Must[allowlist.UsageReceipt](t)(func() (allowlist.UsageReceipt, error) {
		rc, _, err := u.RecordUsage(ctx, Reader("dept-a"), UsageReport("dept-a", 4, later), later, 5)
		return rc, err
	}())
	if s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, day)); s.Reports != 0 || len(s.Refused) != 0 || len(s.Entries) != 0 {
		t.Errorf("kept past the retention: %+v", s)
	}
	if m, _, _ := u.FindSiteUsage(ctx, now); len(m) != 0 {
		t.Errorf("site usage kept past the retention: %+v", m)
	}
	// Under a registry k larger than the report's, the domains below it
	// are left out and the rest of the report still counts.
	r5 := UsageReport("dept-a", 5, later)
	r5.Refused = []allowlist.UsageRefused{{Domain: "example.com", Queries: 40, Clients: 10}, {Domain: "tool-example.net", Queries: 20, Clients: 5}}
	rc5, _, err := u.RecordUsage(ctx, Reader("dept-a"), r5, later, 10)
	if err != nil || rc5.Refused != 1 || rc5.IgnoredRefused != 1 {
		t.Errorf("a report under a registry k of 10: %+v, %v; want 1 refused domain kept, 1 left out", rc5, err)
	}
	lday := allowlist.UsageFilter{Department: "dept-a", From: later.Truncate(24 * time.Hour), To: later.Truncate(24 * time.Hour).Add(24 * time.Hour)}
	if s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, lday)); len(s.Refused) != 1 || s.Refused[0].Domain != "example.com" {
		t.Errorf("kept under a registry k of 10: %+v", s.Refused)
	}
	// Swept reports are gone for good: the old id may not come back.
	if _, _, err := u.RecordUsage(ctx, Reader("dept-a"), r, later, 5); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Errorf("report older than the retention accepted: %v", err)
	}
}

// usageSetup is a store with departments dept-a and dept-b and a site
// wiki (*.wiki.example.org, files.example.net) on both departments'
// lists, and the name of its database.
func usageSetup(t *testing.T, b Backend) (allowlist.UsageStore, string) {
	name := b.New(t)
	db := b.openOn(t, name, 2, newKey())
	Seed(t, db, "dept-a", "dept-b")
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"*.wiki.example.org", "files.example.net"}, Owner: allowlist.Owner{Name: "Ops"},
	}))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", ""))
	return usageStore(t, db), name
}

// testUsageSaturates: however many reports arrive, a stored count stops
// at allowlist.UsageMaxTotal instead of overflowing, and so does every
// sum the store returns, even over rows whose total passes int64 (once a
// 500 on GET /v1/usage, and a SQLite column turned REAL).
func testUsageSaturates(t *testing.T, b Backend) {
	u, name := usageSetup(t, b)
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	send := func(n int) {
		t.Helper()
		r := UsageReport("dept-a", n, now)
		r.Entries = []allowlist.UsageEntry{{Pattern: "*.wiki.example.org", Hits: allowlist.UsageMaxCount}}
		r.Refused = []allowlist.UsageRefused{{Domain: "example.com", Queries: allowlist.UsageMaxCount, Clients: allowlist.UsageMaxClients}}
		if _, _, err := u.RecordUsage(ctx, Reader("dept-a"), r, now, 5); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	// A day's count just under the cap (as after 1,000 reports at the cap).
	for _, stmt := range []string{
		fmt.Sprintf("UPDATE usage_hits SET hits = %d", allowlist.UsageMaxTotal-10),
		fmt.Sprintf("UPDATE usage_refused SET queries = %d", allowlist.UsageMaxTotal-10),
	} {
		if err := b.Exec(name, stmt); err != nil {
			t.Fatal(err)
		}
	}
	send(2)
	day := allowlist.UsageFilter{From: now.Truncate(24 * time.Hour), To: now.Truncate(24 * time.Hour).Add(24 * time.Hour), Department: "dept-a"}
	s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, day))
	if len(s.Entries) != 1 || s.Entries[0].Hits != allowlist.UsageMaxTotal || len(s.Refused) != 1 || s.Refused[0].Queries != allowlist.UsageMaxTotal {
		t.Errorf("after a report at the cap: entries %+v, refused %+v; want both at %d", s.Entries, s.Refused, int64(allowlist.UsageMaxTotal))
	}

	// 10,000 rows at the cap, on one day: 10^19 in all, past int64.
	for _, stmt := range []string{
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
			INSERT INTO usage_hits (department, day, pattern, site, hits, last_hit)
			SELECT 'dept-b', '2026-12-03', 'p' || CAST(i AS TEXT) || '.wiki.example.org', 'wiki', %d, '2026-12-03T10:15:00Z' FROM n`, allowlist.UsageMaxTotal),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
			INSERT INTO usage_refused (department, day, domain, queries, clients)
			SELECT 'dept-b', '2026-12-03', 'd' || CAST(i AS TEXT) || '.com', %d, %d FROM n`, allowlist.UsageMaxTotal, allowlist.UsageMaxClients),
	} {
		if err := b.Exec(name, stmt); err != nil {
			t.Fatal(err)
		}
	}
	day.Department = ""
	all, err := u.FindUsage(ctx, day)
	if err != nil {
		t.Fatalf("FindUsage over sums past int64: %v", err)
	}
	if len(all.Days) != 1 || all.Days[0].Hits != allowlist.UsageMaxTotal || all.Days[0].RefusedQueries != allowlist.UsageMaxTotal || all.Days[0].RefusedDomains != 10001 {
		t.Errorf("days %+v, want hits and refused queries at %d", all.Days, int64(allowlist.UsageMaxTotal))
	}
	sites, _, err := u.FindSiteUsage(ctx, allowlist.MonthStart(now))
	if err != nil || sites["wiki"].Hits != allowlist.UsageMaxTotal {
		t.Errorf("FindSiteUsage: %+v, %v", sites["wiki"], err)
	}
	if _, _, err := u.FindEntryUsage(ctx, "wiki", allowlist.MonthStart(now)); err != nil {
		t.Errorf("FindEntryUsage: %v", err)
	}
}

// testUsageDayCap: a department's day keeps at most
// allowlist.UsageMaxRefusedPerDay refused domains; past it a report's new
// domains are left out (counted in the receipt) while domains the day
// already has are still counted; another department and the next day
// are not affected. UsageDays gives FindUsage's daily totals.
func testUsageDayCap(t *testing.T, b Backend) {
	u, _ := usageSetup(t, b)
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	n := 0
	send := func(dept string, end time.Time, domains ...string) allowlist.UsageReceipt {
		t.Helper()
		n++
		r := UsageReport(dept, n, end)
		for i, d := range domains {
			r.Refused = append(r.Refused, allowlist.UsageRefused{Domain: d, Queries: int64(10 * (i + 1)), Clients: 5})
		}
		rc, _, err := u.RecordUsage(ctx, Reader(dept), r, end, 5)
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	names := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("d%d-example.com", i))
		}
		return out
	}
	per := allowlist.UsageMaxRefused
	for i := 0; i < allowlist.UsageMaxRefusedPerDay; i += per {
		if rc := send("dept-a", now, names(i, i+per)...); rc.Refused != per || rc.IgnoredRefused != 0 {
			t.Fatalf("filling the day: %+v", rc)
		}
	}
	// Full: 3 new domains (the most asked of them would be first) are left
	// out; d0 and d1, which the day has, are counted.
	over := append(names(0, 2), names(allowlist.UsageMaxRefusedPerDay, allowlist.UsageMaxRefusedPerDay+3)...)
	if rc := send("dept-a", now, over...); rc.Refused != 2 || rc.IgnoredRefused != 3 {
		t.Errorf("report past the day's cap: %+v, want refused 2, ignored_refused 3", rc)
	}
	day := allowlist.UsageFilter{From: now.Truncate(24 * time.Hour), To: now.Truncate(24 * time.Hour).Add(24 * time.Hour), Department: "dept-a", Limit: 1000}
	s := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, day))
	if len(s.Days) != 1 || s.Days[0].RefusedDomains != allowlist.UsageMaxRefusedPerDay {
		t.Errorf("dept-a days %+v, want %d domains", s.Days, allowlist.UsageMaxRefusedPerDay)
	}
	for _, r := range s.Refused {
		if r.Domain == "d0-example.com" && r.Queries != 10+10 || r.Domain == fmt.Sprintf("d%d-example.com", allowlist.UsageMaxRefusedPerDay) {
			t.Errorf("refused %+v", r)
		}
	}
	// Another department, and the next day, have their own room.
	if rc := send("dept-b", now, names(0, 3)...); rc.Refused != 3 || rc.IgnoredRefused != 0 {
		t.Errorf("dept-b: %+v", rc)
	}
	if rc := send("dept-a", now.Add(24*time.Hour), names(9000, 9003)...); rc.Refused != 3 || rc.IgnoredRefused != 0 {
		t.Errorf("the next day: %+v", rc)
	}
	all := Must[allowlist.UsageSummary](t)(u.FindUsage(ctx, allowlist.UsageFilter{From: day.From, To: day.To.Add(24 * time.Hour)}))
	days := Must[[]allowlist.UsageDay](t)(u.UsageDays(ctx, day.From, day.To.Add(24*time.Hour)))
	if fmt.Sprint(days) != fmt.Sprint(all.Days) || len(days) != 2 || days[0].RefusedDomains != allowlist.UsageMaxRefusedPerDay {
		t.Errorf("UsageDays %+v, FindUsage days %+v", days, all.Days)
	}
}
