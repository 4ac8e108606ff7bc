package sqlite

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

// BenchmarkRecordUsage stores the largest usage report the contract allows
// (50,000 entries, all on the list, and 1,000 refused domains) into a
// registry whose list has 50,000 entries, the periods of one day after
// another, as a department's resolver sends them every 15 minutes.
func BenchmarkRecordUsage(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := Open(filepath.Join(b.TempDir(), "registry.db"), Options{Quorum: 2, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c := allowlist.Catalogue{Departments: []allowlist.CatalogueDepartment{{ID: "bench-a", Name: "A", Kind: "other"}, {ID: "bench-b", Name: "B", Kind: "other"}}}
	var patterns []string
	for s := 0; s < allowlist.UsageMaxEntries/10; s++ {
		site := allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: "S", Category: "other", Owner: allowlist.Owner{Name: "x"},
			Signoffs: []allowlist.CatalogueSignoff{{Department: "bench-a", Decision: "approve"}, {Department: "bench-b", Decision: "approve"}}}
		for d := 0; d < 10; d++ {
			site.Domains = append(site.Domains, fmt.Sprintf("*.svc%d.tool%d.example.net", d, s))
		}
		patterns = append(patterns, site.Domains...)
		c.Sites = append(c.Sites, site)
	}
	if err := db.Import(ctx, allowlist.System, c); err != nil {
		b.Fatal(err)
	}
	if err := db.Warm(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	report := func(i int) allowlist.UsageReport {
		r := storetest.UsageReport("bench-a", i+1, start.Add(time.Duration(i+1)*15*time.Minute))
		r.Entries = make([]allowlist.UsageEntry, len(patterns))
		for j, p := range patterns {
			r.Entries[j] = allowlist.UsageEntry{Pattern: p, Hits: 10}
		}
		r.Refused = make([]allowlist.UsageRefused, allowlist.UsageMaxRefused)
		for j := range r.Refused {
			r.Refused[j] = allowlist.UsageRefused{Domain: fmt.Sprintf("refused-%d-example.net", j), Queries: 10, Clients: 5}
		}
		return r
	}
	a := storetest.Reader("bench-a")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := report(i)
		b.StartTimer()
		rc, _, err := db.RecordUsage(ctx, a, r, r.PeriodEnd, 5)
		if err != nil || rc.Entries != len(patterns) {
			b.Fatalf("%+v, %v", rc, err)
		}
	}
}

// BenchmarkUsageDashboard reads the dashboard's 30 days of
// cross-government totals from a store of about a million refused-domain
// rows (10 departments, 30 days, 3,400 domains each a day: under the
// day's cap) and 300,000 hit rows: FindUsage, which the dashboard once
// ran (it sums every domain too), against UsageDays, which it runs now.
func BenchmarkUsageDashboard(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(b.TempDir(), "registry.db")
	db, err := Open(path, Options{Quorum: 2, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var c allowlist.Catalogue
	for d := 0; d < 10; d++ {
		c.Departments = append(c.Departments, allowlist.CatalogueDepartment{ID: fmt.Sprintf("bench-%d", d), Name: "D", Kind: "other"})
	}
	if err := db.Import(ctx, allowlist.System, c); err != nil {
		b.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path+"?_busy_timeout=10000")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	from := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	const fill = `WITH RECURSIVE dept(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM dept WHERE d < 9),
		day(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM day WHERE n < 29),
		item(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM item WHERE i < %d)
		INSERT INTO %s SELECT 'bench-' || d, date('2026-11-04', '+' || n || ' days'), %s FROM dept, day, item`
	for _, stmt := range []string{
		fmt.Sprintf(fill, 3399, "usage_refused (department, day, domain, queries, clients)", "'d' || i || '-example.com', 10 * (1 + i % 50), 5"),
		fmt.Sprintf(fill, 999, "usage_hits (department, day, pattern, site, hits, last_hit)", "'*.s' || i || '.example.org', 'site', 10 * (1 + i % 50), '2026-11-04T10:00:00Z'"),
	} {
		if _, err := raw.Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := raw.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	var rows int
	if err := raw.QueryRow("SELECT COUNT(*) FROM usage_refused").Scan(&rows); err != nil || rows != 1020000 {
		b.Fatalf("%d rows, %v", rows, err)
	}
	to := from.AddDate(0, 0, 30)
	b.Run("FindUsage", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s, err := db.FindUsage(ctx, allowlist.UsageFilter{From: from, To: to, Limit: 1})
			if err != nil || len(s.Days) != 30 || s.Days[0].RefusedDomains != 3400 {
				b.Fatalf("%v, %v", len(s.Days), err)
			}
		}
	})
	b.Run("UsageDays", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			days, err := db.UsageDays(ctx, from, to)
			if err != nil || len(days) != 30 || days[0].RefusedDomains != 3400 {
				b.Fatalf("%v, %v", len(days), err)
			}
		}
	})
}
