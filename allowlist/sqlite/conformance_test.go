package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

// TestConformance runs the store conformance suite on SQLite files.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) string { return filepath.Join(t.TempDir(), "registry.db") },
		Open: func(path string, o storetest.Options) (storetest.Store, error) {
			return sqlite.Open(path, sqlite.Options{Quorum: o.Quorum, Key: o.Key, Now: o.Now, Policy: o.Policy})
		},
		Exec: func(path, stmt string) error {
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec(stmt)
			return err
		},
	})
}
