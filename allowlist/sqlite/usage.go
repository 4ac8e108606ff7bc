package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

var _ allowlist.UsageStore = (*DB)(nil)

// usageTS is how usage times are stored: whole seconds in one width, so
// that text order is time order on both databases.
const usageTS = "2006-01-02T15:04:05Z"

func usageTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(usageTS) }

func usageDay(t time.Time) string { return t.UTC().Format(allowlist.UsageDayLayout) }

func parseUsageTime(s string) time.Time {
	t, _ := time.Parse(usageTS, s)
	return t
}

// usageBatch is how many rows one INSERT carries (6 values each: well
// under SQLite's and PostgreSQL's limits on parameters).
const usageBatch = 500

// RecordUsage stores a usage report. It is counted in the UTC day its
// period starts; nothing of it enters the audit log (which is kept for
// ever) and every row is deleted after allowlist.UsageRetention, which
// each report also sweeps.
func (db *DB) RecordUsage(ctx context.Context, a allowlist.Actor, r allowlist.UsageReport, now time.Time, registryK int) (allowlist.UsageReceipt, bool, error) {
	rc := allowlist.UsageReceipt{ReportID: r.ReportID}
	if a.Role != allowlist.RoleReader || a.Department == "" {
		return rc, false, allowlist.Errorf(allowlist.EFORBIDDEN, "only a reader token bound to a department sends usage reports")
	}
	if r.Department != a.Department {
		return rc, false, allowlist.Errorf(allowlist.EFORBIDDEN, "this token sends reports for %s only", a.Department)
	}
	if err := r.Validate(now, registryK); err != nil {
		return rc, false, err
	}
	cutoff := now.Add(-allowlist.UsageRetention)
	if r.PeriodEnd.Before(cutoff) {
		return rc, false, allowlist.Invalid(allowlist.FieldError{Field: "period_end", Message: "is older than the registry keeps usage (400 days)"})
	}
	fresh := false
	err := db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		var dept string
		err := tx.QueryRowContext(ctx, "SELECT department, entries, ignored_entries, refused, ignored_refused FROM usage_reports WHERE report_id = ?", r.ReportID).
			Scan(&dept, &rc.Entries, &rc.IgnoredEntries, &rc.Refused, &rc.IgnoredRefused)
		switch {
		case err == nil && dept == r.Department:
			return "", "", nil, nil // sent again: the first receipt
		case err == nil:
			return "", "", nil, allowlist.Errorf(allowlist.ECONFLICT, "report_id %s was already used", r.ReportID)
		case err != sql.ErrNoRows:
			return "", "", nil, fmt.Errorf("usage report: %w", err)
		}
		if err := departmentExists(ctx, tx, r.Department); err != nil {
			return "", "", nil, err
		}
		if err := sweepUsage(ctx, tx, cutoff); err != nil {
			return "", "", nil, err
		}
		listed, err := db.scopeEntries(ctx, tx, r.Scope)
		if err != nil {
			return "", "", nil, err
		}
		day, end := usageDay(r.PeriodStart), usageTime(r.PeriodEnd)
		var hits [][]any
		for _, e := range r.Entries {
			i := sort.Search(len(listed), func(i int) bool { return listed[i].Pattern >= e.Pattern })
			if i == len(listed) || listed[i].Pattern != e.Pattern {
				rc.IgnoredEntries++
				continue
			}
			hits = append(hits, []any{r.Department, day, e.Pattern, listed[i].Site, e.Hits, end})
		}
		above, _ := r.AboveThreshold(registryK)
		kept, err := refusedRoom(ctx, tx, r.Department, day, above)
		if err != nil {
			return "", "", nil, err
		}
		rc.Entries, rc.Refused, rc.IgnoredRefused = len(hits), len(kept), len(r.Refused)-len(kept)
		if err := insertRows(ctx, tx, "INSERT INTO usage_hits (department, day, pattern, site, hits, last_hit) VALUES ",
			" ON CONFLICT (department, day, pattern) DO UPDATE SET hits = "+cappedAdd("usage_hits.hits", "excluded.hits")+", site = excluded.site,"+
				" last_hit = CASE WHEN excluded.last_hit > usage_hits.last_hit THEN excluded.last_hit ELSE usage_hits.last_hit END", hits); err != nil {
			return "", "", nil, fmt.Errorf("usage hits: %w", err)
		}
		refused := make([][]any, len(kept))
		for i, d := range kept {
			refused[i] = []any{r.Department, day, d.Domain, d.Queries, d.Clients}
		}
		if err := insertRows(ctx, tx, "INSERT INTO usage_refused (department, day, domain, queries, clients) VALUES ",
			" ON CONFLICT (department, day, domain) DO UPDATE SET queries = "+cappedAdd("usage_refused.queries", "excluded.queries")+","+
				" clients = CASE WHEN excluded.clients > usage_refused.clients THEN excluded.clients ELSE usage_refused.clients END", refused); err != nil {
			return "", "", nil, fmt.Errorf("usage refused: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO usage_reports (report_id, department, scope, list_version, mode, period_start, period_end, k, received_at, entries, ignored_entries, refused, ignored_refused)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ReportID, r.Department, r.Scope, r.ListVersion, r.Mode, usageTime(r.PeriodStart), end,
			allowlist.UsageK(r.K, registryK), usageTime(now), rc.Entries, rc.IgnoredEntries, rc.Refused, rc.IgnoredRefused)
		if err != nil {
			return "", "", nil, fmt.Errorf("usage report: %w", err)
		}
		fresh = true
		return "", "", nil, nil
	})
	return rc, fresh, err
}

// refusedRoom returns the refused domains of a report that the day's cap
// leaves room for: all those department already has that day, and of the
// new ones the most asked, up to allowlist.UsageMaxRefusedPerDay in all.
func refusedRoom(ctx context.Context, tx *sql.Tx, department, day string, refused []allowlist.UsageRefused) ([]allowlist.UsageRefused, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM usage_refused WHERE department = ? AND day = ?", department, day).Scan(&n); err != nil {
		return nil, fmt.Errorf("usage refused: %w", err)
	}
	if n+len(refused) <= allowlist.UsageMaxRefusedPerDay {
		return refused, nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT domain FROM usage_refused WHERE department = ? AND day = ?", department, day)
	if err != nil {
		return nil, fmt.Errorf("usage refused: %w", err)
	}
	have := make(map[string]bool, n)
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, err
		}
		have[d] = true
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	byQueries := append([]allowlist.UsageRefused(nil), refused...)
	sort.SliceStable(byQueries, func(i, j int) bool { return byQueries[i].Queries > byQueries[j].Queries })
	kept := byQueries[:0]
	for _, d := range byQueries {
		if have[d.Domain] || n < allowlist.UsageMaxRefusedPerDay {
			if !have[d.Domain] {
				n++
			}
			kept = append(kept, d)
		}
	}
	return kept, nil
}

// usageCap is allowlist.UsageMaxTotal in SQL.
var usageCap = strconv.FormatInt(allowlist.UsageMaxTotal, 10)

// cappedAdd is a + b saturated at allowlist.UsageMaxTotal, in the SQL
// both databases share: a stored count is at most the cap and an added
// one at most allowlist.UsageMaxCount, so a + b never overflows.
func cappedAdd(a, b string) string {
	return "CASE WHEN " + a + " + " + b + " > " + usageCap + " THEN " + usageCap + " ELSE " + a + " + " + b + " END"
}

// cappedSum is SUM(expr) saturated at allowlist.UsageMaxTotal, an integer
// on both databases. It sums in double precision, which never overflows
// (an integer SUM errs on SQLite past int64, and PostgreSQL's numeric
// one does not fit an int64): every count is under 2^53, so a sum under
// the cap is exact.
func cappedSum(expr string) string {
	s := "SUM(CAST(" + expr + " AS DOUBLE PRECISION))"
	return "CAST(CASE WHEN " + s + " > " + usageCap + " THEN " + usageCap + " ELSE " + s + " END AS BIGINT)"
}

// insertRows inserts rows with head + "(?, ...), ..." + tail, a batch at a time.
func insertRows(ctx context.Context, tx *sql.Tx, head, tail string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), usageBatch)
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, n*len(rows[0]))
		one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
		for i, row := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(one)
			args = append(args, row...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// scopeEntries returns the latest version of scope's entries, sorted by
// pattern: those the publisher holds, or else read from the version.
// The caller holds db.mu.
func (db *DB) scopeEntries(ctx context.Context, tx *sql.Tx, scope string) ([]allowlist.Entry, error) {
	v, ok, err := latestVersion(ctx, tx, scope)
	if err != nil || !ok {
		return nil, err
	}
	if entries, ok := db.pub.Entries(scope, v.Version); ok {
		return entries, nil
	}
	body, err := readBody(ctx, tx, scope, v.Version)
	if err != nil {
		return nil, fmt.Errorf("read %s version %d: %w", scope, v.Version, err)
	}
	l, err := allowlist.DecodeList(body)
	if err != nil {
		return nil, err
	}
	return l.Entries, nil // already in pattern order: DecodeList refuses a body whose entries are not
}

func sweepUsage(ctx context.Context, tx *sql.Tx, before time.Time) error {
	_, err := deleteUsage(ctx, tx, before)
	return err
}

func deleteUsage(ctx context.Context, tx *sql.Tx, before time.Time) (int64, error) {
	// A day is deleted once all of it is older than before.
	day := usageDay(before)
	var n int64
	for _, q := range []struct{ stmt, arg string }{
		{"DELETE FROM usage_hits WHERE day < ?", day},
		{"DELETE FROM usage_refused WHERE day < ?", day},
		{"DELETE FROM usage_reports WHERE period_end < ?", usageTime(before)},
	} {
		res, err := tx.ExecContext(ctx, q.stmt, q.arg)
		if err != nil {
			return n, fmt.Errorf("sweep usage: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// SweepUsage deletes usage counted before before.
func (db *DB) SweepUsage(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.record(ctx, allowlist.System, func(tx *sql.Tx) (string, string, any, error) {
		var err error
		n, err = deleteUsage(ctx, tx, before)
		return "", "", nil, err
	})
	return n, err
}

// FindUsage sums reports over a department (or all) and a range of days.
func (db *DB) FindUsage(ctx context.Context, f allowlist.UsageFilter) (allowlist.UsageSummary, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	out := allowlist.UsageSummary{Department: f.Department, From: f.From, To: f.To, Refused: []allowlist.RefusedUsage{}, Entries: []allowlist.EntryUsage{}, Days: []allowlist.UsageDay{}}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, err
	}
	defer tx.Rollback()
	if f.Department != "" {
		if err := departmentExists(ctx, tx, f.Department); err != nil {
			return out, err
		}
	}
	from, to := usageDay(f.From), usageDay(f.To)
	where, args := "day >= ? AND day < ?", []any{from, to}
	if f.Department != "" {
		where, args = where+" AND department = ?", append(args, f.Department)
	}
	// Reports are counted by the day their period starts, as the rows are.
	repWhere := strings.ReplaceAll(where, "day", "substr(period_start, 1, 10)")
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM usage_reports WHERE "+repWhere, args...).Scan(&out.Reports); err != nil {
		return out, fmt.Errorf("usage reports: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT domain, `+cappedSum("q")+` AS sq, `+cappedSum("c")+`, COUNT(*) FROM
		(SELECT department, domain, `+cappedSum("queries")+` AS q, MAX(clients) AS c FROM usage_refused WHERE `+where+` GROUP BY department, domain) AS per_department
		GROUP BY domain HAVING COUNT(*) >= ? AND `+cappedSum("c")+` >= ? ORDER BY sq DESC, domain LIMIT ?`, append(args, f.MinDepartments, f.MinClients, f.Limit)...)
	if err != nil {
		return out, fmt.Errorf("usage refused: %w", err)
	}
	for rows.Next() {
		var r allowlist.RefusedUsage
		if err := rows.Scan(&r.Domain, &r.Queries, &r.Clients, &r.Departments); err != nil {
			rows.Close()
			return out, err
		}
		out.Refused = append(out.Refused, r)
	}
	if err := closeRows(rows); err != nil {
		return out, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT pattern, MAX(site), `+cappedSum("hits")+` AS sh, MAX(last_hit) FROM usage_hits WHERE `+where+`
		GROUP BY pattern ORDER BY sh DESC, pattern LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return out, fmt.Errorf("usage hits: %w", err)
	}
	for rows.Next() {
		var e allowlist.EntryUsage
		var last string
		if err := rows.Scan(&e.Pattern, &e.Site, &e.Hits, &last); err != nil {
			rows.Close()
			return out, err
		}
		e.LastHit = parseUsageTime(last)
		out.Entries = append(out.Entries, e)
	}
	if err := closeRows(rows); err != nil {
		return out, err
	}
	if out.Days, err = usageDays(ctx, tx, where, args); err != nil {
		return out, err
	}
	return out, nil
}

// UsageDays returns the cross-government totals of the days from from to
// to (excluded), from the indexes on (day, hits) and (day, domain,
// queries) alone.
func (db *DB) UsageDays(ctx context.Context, from, to time.Time) ([]allowlist.UsageDay, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return usageDays(ctx, tx, "day >= ? AND day < ?", []any{usageDay(from), usageDay(to)})
}

// usageDays sums the rows matching where by day, in order of day.
func usageDays(ctx context.Context, tx *sql.Tx, where string, args []any) ([]allowlist.UsageDay, error) {
	days := map[string]*allowlist.UsageDay{}
	dayOf := func(d string) *allowlist.UsageDay {
		if days[d] == nil {
			days[d] = &allowlist.UsageDay{Day: d}
		}
		return days[d]
	}
	rows, err := tx.QueryContext(ctx, "SELECT day, "+cappedSum("hits")+" FROM usage_hits WHERE "+where+" GROUP BY day", args...)
	if err != nil {
		return nil, fmt.Errorf("usage days: %w", err)
	}
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			rows.Close()
			return nil, err
		}
		dayOf(d).Hits = n
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, "SELECT day, "+cappedSum("queries")+", COUNT(DISTINCT domain) FROM usage_refused WHERE "+where+" GROUP BY day", args...)
	if err != nil {
		return nil, fmt.Errorf("usage days: %w", err)
	}
	for rows.Next() {
		var d string
		var q int64
		var n int
		if err := rows.Scan(&d, &q, &n); err != nil {
			rows.Close()
			return nil, err
		}
		dayOf(d).RefusedQueries, dayOf(d).RefusedDomains = q, n
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	out := make([]allowlist.UsageDay, 0, len(days))
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day < out[j].Day })
	return out, nil
}

// closeRows closes rows read to the end and says whether reading failed.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	rows.Close()
	return err
}

// FindSiteUsage returns each site's latest hit and its hits since a day.
func (db *DB) FindSiteUsage(ctx context.Context, since time.Time) (map[string]allowlist.SiteUsage, map[string]time.Time, error) {
	out := map[string]allowlist.SiteUsage{}
	first, err := db.firstReports(ctx)
	if err != nil {
		return nil, first, err
	}
	rows, err := db.read.QueryContext(ctx, "SELECT site, MAX(last_hit), "+cappedSum("CASE WHEN day >= ? THEN hits ELSE 0 END")+
		", COUNT(DISTINCT CASE WHEN day >= ? THEN department END) FROM usage_hits GROUP BY site",
		usageDay(since), usageDay(since), usageDay(since)) // cappedSum names its sum twice
	if err != nil {
		return nil, nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s allowlist.SiteUsage
		var last string
		if err := rows.Scan(&s.Site, &last, &s.Hits, &s.Departments); err != nil {
			return nil, nil, err
		}
		s.LastHit = parseUsageTime(last)
		out[s.Site] = s
	}
	return out, first, rows.Err()
}

// firstReports is when each department's first report kept was received.
func (db *DB) firstReports(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT department, MIN(received_at) FROM usage_reports GROUP BY department")
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var dept, first string
		if err := rows.Scan(&dept, &first); err != nil {
			return nil, err
		}
		out[dept] = parseUsageTime(first)
	}
	return out, rows.Err()
}

// FindEntryUsage returns a site's entries' hits since a day and last hits.
func (db *DB) FindEntryUsage(ctx context.Context, site string, since time.Time) ([]allowlist.EntryUsage, map[string]time.Time, error) {
	first, err := db.firstReports(ctx)
	if err != nil {
		return nil, first, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT pattern, `+cappedSum("CASE WHEN day >= ? THEN hits ELSE 0 END")+`, MAX(last_hit)
		FROM usage_hits WHERE site = ? GROUP BY pattern ORDER BY pattern`, usageDay(since), usageDay(since), site)
	if err != nil {
		return nil, first, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	out := []allowlist.EntryUsage{}
	for rows.Next() {
		e := allowlist.EntryUsage{Site: site}
		var last string
		if err := rows.Scan(&e.Pattern, &e.Hits, &last); err != nil {
			return nil, first, err
		}
		e.LastHit = parseUsageTime(last)
		out = append(out, e)
	}
	return out, first, rows.Err()
}
