package sqlite

import (
	"crypto/ed25519"
	"crypto/rand"
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
			r.Refused[j] = allowlist.UsageRefused{Domain: fmt.Sprintf("refused-%d.example", j), Queries: 10, Clients: 5}
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
