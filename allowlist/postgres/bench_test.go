package postgres_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/postgres/pgtest"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

var ctx = context.Background()

type opener func(name string, opts sqlite.Options) (*sqlite.DB, error)

// BenchmarkWriters measures sign-offs per second and their p99 with 8
// writers on two store instances sharing one database: SQLite (two
// handles on one file, as the CLI beside a server), and PostgreSQL with
// its writers ordered by an advisory lock (what Open does) or by
// SERIALIZABLE transactions that fail and run again. Each sign-off
// commits the decision, the versions it changes and its audit entries.
func BenchmarkWriters(b *testing.B) {
	pgtest.Need(b, server)
	for _, tc := range []struct {
		name string
		new  func(b *testing.B) string
		open opener
	}{
		{"store=sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "registry.db") }, sqlite.Open},
		{"store=postgres/order=advisory-lock", func(b *testing.B) string { return server.Database(b) }, postgres.Open},
		{"store=postgres/order=serializable", func(b *testing.B) string { return server.Database(b) }, postgres.OpenSerializable},
	} {
		b.Run(tc.name, func(b *testing.B) { benchWriters(b, tc.new(b), tc.open) })
	}
}

func benchWriters(b *testing.B, name string, open opener) {
	const depts, sites, writers = 4, 64, 8
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var stores []*sqlite.DB
	for range 2 {
		db, err := open(name, sqlite.Options{Quorum: 2, Key: key})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		stores = append(stores, db)
	}
	c := allowlist.Catalogue{}
	for d := range depts {
		c.Departments = append(c.Departments, allowlist.CatalogueDepartment{ID: fmt.Sprintf("dept-%d", d), Name: "D", Kind: "other"})
	}
	for s := range sites {
		c.Sites = append(c.Sites, allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: "S", Category: "other",
			Domains: []string{fmt.Sprintf("site%d.example.net", s)}, Owner: allowlist.Owner{Name: "x"}})
	}
	if err := stores[0].Import(ctx, allowlist.System, c); err != nil {
		b.Fatal(err)
	}
	latencies := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			db := stores[w%2]
			for i := w; i < b.N; i += writers {
				site, dept := fmt.Sprintf("site-%d", i%sites), fmt.Sprintf("dept-%d", (i/sites+w)%depts)
				decision := []string{"approve", "object"}[(i/(sites*depts))%2]
				t0 := time.Now()
				if _, err := db.SetSignoff(ctx, storetest.Owner(dept), site, dept, decision, ""); err != nil {
					b.Error(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "signoffs/s")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	if _, ok, err := stores[1].VerifyAudit(ctx); err != nil || !ok {
		b.Fatalf("audit chain broken: %v", err)
	}
}

// BenchmarkQuorumToOtherInstance measures, on PostgreSQL, the time from
// the sign-off that brings a site to quorum on one instance until another
// instance's listener hands it the new version of common: the part of the
// propagation to a watcher on the other instance that the database adds
// (the watcher's own wake-up is the same as on one instance).
func BenchmarkQuorumToOtherInstance(b *testing.B) {
	pgtest.Need(b, server)
	url := server.Database(b)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := postgres.Open(url, sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.Seed(b, db, "dept-a", "dept-b")
	got := make(chan int64, 16)
	listening := make(chan struct{}, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &postgres.Listener{URL: url,
		Version: func(scope string, v int64) {
			if scope == allowlist.ScopeCommon {
				got <- v
			}
		},
		Reconcile: func(context.Context) error { listening <- struct{}{}; return nil }}
	go l.Listen(lctx)
	<-listening
	var total time.Duration
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("site-%d", i)
		if _, err := db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: id, Name: "S", Category: "other",
			Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SetSignoff(ctx, storetest.Owner("dept-a"), id, "dept-a", "approve", ""); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := db.SetSignoff(ctx, storetest.Owner("dept-b"), id, "dept-b", "approve", ""); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
			total += time.Since(t0)
		case <-time.After(10 * time.Second):
			b.Fatal("no notification")
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/quorum")
}
