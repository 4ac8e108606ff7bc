package sqlite

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

// BenchmarkPublish measures the write that matters for propagation: the
// sign-off that brings a new site to quorum, which commits the decision,
// a new signed version of every scope it changes and the audit entry, in
// one transaction; and, apart, the approval before it, which changes one
// department's scope only. Each list holds about n patterns (ten per site), in
// three scopes (common and two departments), as in make bench.
func BenchmarkPublish(b *testing.B) {
	for _, n := range publishSizes() {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchPublish(b, n, false) })
	}
}

// BenchmarkPublishAlternating is BenchmarkPublish with the writes
// alternating between two store instances on one database, as behind a
// load balancer: each write follows one the other instance made, and each
// quorum follows one the other instance published. It reads again only
// the sites the other changed, and brings its entries of the scopes up to
// the other's versions with the changes recorded.
func BenchmarkPublishAlternating(b *testing.B) {
	for _, n := range publishSizes() {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchPublish(b, n, true) })
	}
}

func benchPublish(b *testing.B, n int, alternate bool) {
	path := filepath.Join(b.TempDir(), "registry.db")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := Open(path, Options{Quorum: 2, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	other := db
	if alternate {
		if other, err = Open(path, Options{Quorum: 2, Key: key}); err != nil {
			b.Fatal(err)
		}
		defer other.Close()
	}
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
	if err := other.Warm(ctx); err != nil { // as serve does at start
		b.Fatal(err)
	}
	// The first approval is timed apart: it changes only bench-a's
	// scope, a department with a decision of its own.
	var first time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if alternate && i > 0 { // the instances swap roles
			db, other = other, db
		}
		id := fmt.Sprintf("new-%d", i)
		if _, err := db.CreateSite(ctx, storetest.Owner("bench-a"), allowlist.SiteInput{ID: id, Name: "N", Category: "other",
			Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := db.SetSignoff(ctx, storetest.Owner("bench-a"), id, "bench-a", "approve", ""); err != nil {
			b.Fatal(err)
		}
		first += time.Since(t0)
		b.StartTimer()
		if _, err := other.SetSignoff(ctx, storetest.Owner("bench-b"), id, "bench-b", "approve", ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(first.Nanoseconds())/float64(b.N), "first-approval-ns/op")
}

// publishSizes are the list sizes BenchmarkPublish runs; PUBLISH_1M=1 adds
// a million entries (importing them takes about a minute).
func publishSizes() []int {
	if os.Getenv("PUBLISH_1M") != "" {
		return []int{1_000, 100_000, 1_000_000}
	}
	return []int{1_000, 100_000}
}

// BenchmarkGovernance measures what the governance timers add at each
// tick and scrape, beside the cost of one publication (an approval that
// changes one department's scope) in the same run: computing every due
// time (after each change, with lazy consensus and expiry on), a tick
// with nothing due, and the per-department queue counts a metrics scrape
// makes. Ten patterns per site, as in BenchmarkPublish.
func BenchmarkGovernance(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		_, key := mustKey(b)
		db, err := Open(b.TempDir()+"/r.db", Options{Quorum: 2, Key: key, Policy: allowlist.Policy{ConsensusSponsors: 1, ConsensusAfter: 14 * 24 * time.Hour,
			DecisionSLA: 10 * 24 * time.Hour, ApprovalMaxAge: 365 * 24 * time.Hour, ApprovalWarning: 30 * 24 * time.Hour}})
		if err != nil {
			b.Fatal(err)
		}
		c := allowlist.Catalogue{Departments: []allowlist.CatalogueDepartment{{ID: "bench-a", Name: "A", Kind: "other"}, {ID: "bench-b", Name: "B", Kind: "other"}}}
		for s := 0; s*10 < n; s++ {
			site := allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: "S", Category: "other", Owner: allowlist.Owner{Name: "x"},
				Signoffs: []allowlist.CatalogueSignoff{{Department: "bench-a", Decision: "approve"}}}
			if s%2 == 0 {
				site.Signoffs = append(site.Signoffs, allowlist.CatalogueSignoff{Department: "bench-b", Decision: "approve"})
			}
			for d := 0; d < 10; d++ {
				site.Domains = append(site.Domains, fmt.Sprintf("*.svc%d.tool%d.example.net", d, s))
			}
			c.Sites = append(c.Sites, site)
		}
		if err := db.Import(ctx, allowlist.System, c); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Schedule(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d/publish-peer", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("site-%d", (i*2+1)%(n/10))
				decision := []string{"object", "approve"}[i%2]
				if _, err := db.SetSignoff(ctx, owner("bench-b"), id, "bench-b", decision, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/schedule", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.Schedule(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/idle-tick", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.RunDueJobs(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := db.SettleRequests(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/queue-stats", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, _, err := db.QueueStats(ctx, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
		db.Close()
	}
}

func mustKey(tb testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return pub, key
}
