// Package postgres runs the registry store on PostgreSQL through
// jackc/pgx, so that several instances of the registry can share one
// database (and its replicas and backups).
//
// The store itself is allowlist/sqlite's: the same queries, written in the
// SQL the two databases share, over database/sql. This package supplies
// what differs: its own numbered migrations, a connection that turns the
// queries' ? placeholders into PostgreSQL's $1, $2..., an advisory lock
// that every write transaction takes first (so that writes from every
// instance follow one another: versions stay contiguous and the audit
// chain one sequence), and a NOTIFY for each published version, which
// Listen hands to the other instances.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Channel is the NOTIFY channel a published version is announced on, with
// the payload "SCOPE VERSION".
const Channel = "allowlist_versions"

// writeLock is the advisory lock key every write transaction holds until
// it ends ("allowlst" in ASCII, so that it is not mistaken for another
// application's on a shared server).
const writeLock = 0x616c6c6f776c7374

// IsURL reports whether a --db value names a PostgreSQL database rather
// than a SQLite file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Open connects to the PostgreSQL database at url (postgres://...),
// migrates it and returns the store.
func Open(url string, opts sqlite.Options) (*sqlite.DB, error) {
	return open(url, opts, advisoryLock)
}

// The ways writers on several instances can be put in one order:
// advisoryLock, which Open uses, is the one that measured best
// (BenchmarkWriters, docs/performance.md).
const (
	// Every write transaction waits for the others' to end.
	advisoryLock = iota
	// Writes run at once at SERIALIZABLE, and all but one of those that
	// touch the same rows (every write bumps the store's generation) fail
	// and run again.
	serializable
)

func open(url string, opts sqlite.Options, order int) (*sqlite.DB, error) {
	begin := fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(writeLock))
	if order == serializable {
		begin = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open db: %w", err)
	}
	w := sql.OpenDB(connector{stdlib.GetConnector(*cfg)})
	r := sql.OpenDB(connector{stdlib.GetConnector(*cfg)})
	r.SetMaxOpenConns(8)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlite.OpenDB(w, r, sqlite.Dialect{
		Name:       "postgres",
		Migrations: sub,
		SchemaVersion: func(ctx context.Context, tx *sql.Tx) (int, error) {
			if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); err != nil {
				return 0, err
			}
			var n int
			err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&n)
			return n, err
		},
		SetSchemaVersion: func(ctx context.Context, tx *sql.Tx, n int) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES (?)", n)
			return err
		},
		BeginWrite: begin,
		Published:  "SELECT pg_notify('" + Channel + "', CAST(? AS TEXT) || ' ' || CAST(CAST(? AS BIGINT) AS TEXT))",
		Backup: func(context.Context, *sql.DB, string) error {
			return errors.New("back up a PostgreSQL registry with pg_dump (see docs/operations.md)")
		},
	}, opts)
}

// ParseNotification reads the payload of a notification on Channel.
func ParseNotification(payload string) (scope string, version int64, err error) {
	scope, n, ok := strings.Cut(payload, " ")
	if ok {
		version, err = strconv.ParseInt(n, 10, 64)
	}
	if !ok || err != nil || scope == "" {
		return "", 0, fmt.Errorf("bad notification %q", payload)
	}
	return scope, version, nil
}

// connector makes connections whose queries may use ? placeholders.
type connector struct{ driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn1{conn.(pgxConn)}, nil
}

// pgxConn is what a pgx stdlib connection provides.
type pgxConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.NamedValueChecker
	driver.SessionResetter
}

// conn1 is a pgx connection that rebinds each query's placeholders.
type conn1 struct{ pgxConn }

func (c *conn1) Prepare(query string) (driver.Stmt, error) {
	return c.pgxConn.Prepare(rebind(query))
}

func (c *conn1) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.pgxConn.PrepareContext(ctx, rebind(query))
}

func (c *conn1) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.pgxConn.ExecContext(ctx, rebind(query), args)
}

func (c *conn1) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.pgxConn.QueryContext(ctx, rebind(query), args)
}

var rebound sync.Map // query -> its rebound form

// rebind turns each ? outside quotes into $1, $2, ... in order. The
// store's queries are a fixed set: each is rebound once.
func rebind(query string) string {
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n, quote := 0, byte(0)
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(query, out)
	return out
}
