package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
)

// Dialect is what differs between the SQL databases the store runs on.
// The store's queries are written once, with ? placeholders, in the SQL
// that SQLite and PostgreSQL share; a dialect supplies the rest. SQLite's
// is this package's own; allowlist/postgres supplies PostgreSQL's.
type Dialect struct {
	// Name is the database's name for messages ("sqlite", "postgres").
	Name string
	// Migrations holds the numbered schema changes (NNNN_name.sql) at its
	// root, applied in order, each once.
	Migrations fs.FS
	// SchemaVersion reads the number of the last migration applied (0
	// for a new database); SetSchemaVersion records it, in the same
	// transaction as the migration.
	SchemaVersion    func(ctx context.Context, tx *sql.Tx) (int, error)
	SetSchemaVersion func(ctx context.Context, tx *sql.Tx, n int) error
	// BeginWrite, if set, is run first in every write transaction (and
	// migration): it waits until no other process is writing, so that
	// versions stay contiguous and the audit chain one sequence with
	// several processes writing.
	BeginWrite string
	// Published, if set, is run in a write transaction for each version
	// it publishes, with the scope and version number: it tells other
	// processes once the transaction commits.
	Published string
	// Backup writes a consistent copy of the live database to path, or
	// says how to make one.
	Backup func(ctx context.Context, read *sql.DB, path string) error
}

var sqliteDialect = Dialect{
	Name:       "sqlite",
	Migrations: mustSub(migrations, "migrations"),
	SchemaVersion: func(ctx context.Context, tx *sql.Tx) (int, error) {
		var n int
		err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&n)
		return n, err
	},
	SetSchemaVersion: func(ctx context.Context, tx *sql.Tx, n int) error {
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n))
		return err
	},
	// VACUUM INTO reads one snapshot while the database stays online.
	Backup: func(ctx context.Context, read *sql.DB, path string) error {
		_, err := read.ExecContext(ctx, "VACUUM INTO ?", path)
		return err
	},
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
