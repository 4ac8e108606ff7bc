package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/postgres/pgtest"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/allowlist/storetest"
	"github.com/jackc/pgx/v5"
)

// server is the PostgreSQL server these tests start (nil without one,
// outside CI).
var server *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &server)) }

// TestConformance runs the store conformance suite on a real PostgreSQL
// server, a new database for each test.
func TestConformance(t *testing.T) {
	pgtest.Need(t, server)
	storetest.Run(t, backend)
}

var backend = storetest.Backend{
	New: func(t *testing.T) string { return server.Database(t) },
	Open: func(url string, o storetest.Options) (storetest.Store, error) {
		return postgres.Open(url, sqlite.Options{Quorum: o.Quorum, Key: o.Key, Now: o.Now, Policy: o.Policy})
	},
	Exec: func(url, stmt string) error {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, stmt)
		return err
	},
}
