package sqlite

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// BenchmarkPublish measures the write that matters for propagation: the
// sign-off that brings a new site to quorum, which commits the decision,
// a new signed version of every scope it changes and the audit entry, in
// one transaction; and, apart, the approval before it, which changes one
// department's scope only. Each list holds about n patterns (ten per site), in
// three scopes (common and two departments), as in make bench.
func BenchmarkPublish(b *testing.B) {
	for _, n := range publishSizes() {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			db := mustOpen(b, 2)
			c := allowlist.Catalogue{Departments: []allowlist.CatalogueDepartment{{ID: "bench-a", Name: "A", Kind: "other"}, {ID: "bench-b", Name: "B", Kind: "other"}}}
			for s := 0; s*10 < n; s++ {
				site := allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: "S", Category: "other", Owner: allowlist.Owner{Name: "x"},
					Signoffs: []allowlist.CatalogueSignoff{{Department: "bench-a", Decision: "approve"}, {Department: "bench-b", Decision: "approve"}}}
				for d := 0; d < 10; d++ {
					site.Domains = append(site.Domains, fmt.Sprintf("*.svc%d.tool%d.example.net", d, s))
				}
				c.Sites = append(c.Sites, site)
			}
			if err := db.Import(ctx, allowlist.System, c); err != nil {
				b.Fatal(err)
			}
			// The first approval is timed apart: it changes only bench-a's
			// scope, a department with a decision of its own.
			var first time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				id := fmt.Sprintf("new-%d", i)
				if _, err := db.CreateSite(ctx, owner("bench-a"), allowlist.SiteInput{ID: id, Name: "N", Category: "other",
					Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if _, err := db.SetSignoff(ctx, owner("bench-a"), id, "bench-a", "approve", ""); err != nil {
					b.Fatal(err)
				}
				first += time.Since(t0)
				b.StartTimer()
				if _, err := db.SetSignoff(ctx, owner("bench-b"), id, "bench-b", "approve", ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(first.Nanoseconds())/float64(b.N), "first-approval-ns/op")
		})
	}
}

// publishSizes are the list sizes BenchmarkPublish runs; PUBLISH_1M=1 adds
// a million entries (importing them takes about a minute).
func publishSizes() []int {
	if os.Getenv("PUBLISH_1M") != "" {
		return []int{1_000, 100_000, 1_000_000}
	}
	return []int{1_000, 100_000}
}
