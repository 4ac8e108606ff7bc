// Package sqlite implements allowlist.Registry on an embedded SQLite
// database through mattn/go-sqlite3.
//
// All writes go through one connection in immediate transactions, so
// writers queue in Go instead of failing with "database is locked"; reads
// use a separate pool and see the last committed state (WAL). Every change
// commits with the list versions and the audit entry it causes.
package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	sqlite3 "github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a DB.
type Options struct {
	// Quorum is the number of approvals that put a site on the common list.
	// Zero keeps the quorum stored in the database (DefaultQuorum for a
	// new one), so
	// that command-line tools never republish lists under another rule.
	Quorum int
	// Key signs published versions.
	Key ed25519.PrivateKey
	// Now returns the current time; tests may fix it.
	Now func() time.Time
	// Policy holds the governance rules (lazy consensus, decision SLA,
	// approval expiry); its Quorum is ignored (see Quorum above).
	Policy allowlist.Policy
}

// DB is the registry store.
type DB struct {
	dialect Dialect
	write   *sql.DB // one connection: the only writer in this process
	read    *sql.DB
	opts    Options
	// mu serialises write transactions in this process, so that they
	// queue here rather than in SQLite's busy handler. It also guards pub.
	mu sync.Mutex
	// pub works out publications, and keeps what makes them fast between
	// writes (sites for the write generation, meta key "generation",
	// bumped by every write; scopes' sorted entries; the latest versions'
	// entries): see allowlist.Publisher.
	pub *allowlist.Publisher
	// subs are told of each new version after its commit (Subscribe).
	subsMu sync.Mutex
	subs   []func(allowlist.Version)
}

var (
	_ allowlist.Registry   = (*DB)(nil)
	_ allowlist.Subscriber = (*DB)(nil)
)

// Subscribe has f called after each commit with each version it
// published, with its body, signature and changes (which f must not
// modify). Those built after the store (the
// API, the zone server, the timers) subscribe once they exist.
func (db *DB) Subscribe(f func(allowlist.Version)) {
	db.subsMu.Lock()
	db.subs = append(db.subs, f)
	db.subsMu.Unlock()
}

// dsn sets the pragmas every connection needs:
//   - WAL lets readers proceed while the writer commits;
//   - synchronous=FULL fsyncs the WAL at every commit, so an acknowledged
//     write survives a power cut, not only a process crash;
//   - foreign_keys enforces references;
//   - busy_timeout waits for another process (the CLI) instead of failing;
//   - _txlock=immediate takes the write lock at BEGIN, so a transaction
//     never fails half way on a lock upgrade.
func dsn(path string, txlock string) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_synchronous", "FULL")
	v.Set("_foreign_keys", "on")
	v.Set("_busy_timeout", "10000")
	v.Set("_txlock", txlock)
	return "file:" + path + "?" + v.Encode()
}

// Open opens (creating if needed) and migrates the database at path.
func Open(path string, opts Options) (*DB, error) {
	w, err := sql.Open("sqlite3", dsn(path, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("open db: %w", err)
	}
	r, err := sql.Open("sqlite3", dsn(path, "deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open db: %w", err)
	}
	r.SetMaxOpenConns(8)
	return OpenDB(w, r, sqliteDialect, opts)
}

// OpenDB opens the store on a database reached through write (which it
// limits to one connection) and read, in dialect d, migrating it. It
// closes both on error.
func OpenDB(w, r *sql.DB, d Dialect, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	db := &DB{dialect: d, write: w, read: r, opts: opts}
	if len(opts.Key) != ed25519.PrivateKeySize {
		db.Close()
		return nil, fmt.Errorf("open db: a signing key is required")
	}
	if err := db.migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	var stored string
	err := r.QueryRow("SELECT value FROM meta WHERE key = 'quorum'").Scan(&stored)
	if err != nil && err != sql.ErrNoRows {
		db.Close()
		return nil, fmt.Errorf("read quorum: %w", err)
	}
	if db.opts.Quorum < 1 {
		db.opts.Quorum, _ = strconv.Atoi(stored)
		if db.opts.Quorum < 1 {
			db.opts.Quorum = allowlist.DefaultQuorum
		}
	}
	db.pub = allowlist.NewPublisher(db.opts.Quorum, db.opts.Key)
	// Make sure every scope exists and matches the current rules (the
	// quorum may have changed since the last start).
	if err := db.update(context.Background(), allowlist.System, func(tx *sql.Tx) (string, string, any, error) {
		if err := checkKey(tx, db.PublicKey()); err != nil {
			return "", "", nil, err
		}
		q := strconv.Itoa(db.opts.Quorum)
		if q == stored {
			return "", "", nil, nil
		}
		if _, err := tx.Exec("INSERT INTO meta (key, value) VALUES ('quorum', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", q); err != nil {
			return "", "", nil, fmt.Errorf("store quorum: %w", err)
		}
		if stored == "" {
			return "", "", nil, nil
		}
		return "registry.quorum", "quorum", map[string]string{"from": stored, "to": q}, nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkKey records the key that signs the database's lists on first use,
// and refuses another: every process (every instance sharing a PostgreSQL
// database) must sign with the same key, or resolvers would reject half
// the versions.
func checkKey(tx *sql.Tx, pub ed25519.PublicKey) error {
	id := list.KeyID(pub)
	var stored string
	switch err := tx.QueryRow("SELECT value FROM meta WHERE key = 'key_id'").Scan(&stored); {
	case err == sql.ErrNoRows:
		if _, err := tx.Exec("INSERT INTO meta (key, value) VALUES ('key_id', ?)", id); err != nil {
			return fmt.Errorf("store key id: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read key id: %w", err)
	case stored != id:
		return fmt.Errorf("open db: the database's lists are signed with key %s, and this process was given key %s: give every process the same signing key", stored, id)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	err1 := db.read.Close()
	err2 := db.write.Close()
	return errors.Join(err1, err2)
}

// Quorum returns the number of approvals that put a site on common.
func (db *DB) Quorum() int { return db.pub.Quorum() }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1 FROM versions LIMIT 1").Scan(&one)
}

// PublicKey returns the key that verifies list signatures.
func (db *DB) PublicKey() ed25519.PublicKey { return db.opts.Key.Public().(ed25519.PublicKey) }

// SignTimestamp signs a freshness statement with the list key.
func (db *DB) SignTimestamp(t allowlist.Timestamp) (string, error) {
	sig, err := allowlist.SignTimestamp(db.opts.Key, t)
	if err != nil {
		return "", allowlist.Errorf(allowlist.EINVALID, "%v", err)
	}
	return sig, nil
}

func (db *DB) migrate(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	current, err := db.dialect.SchemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, _ := fs.Glob(db.dialect.Migrations, "*.sql")
	sort.Strings(names)
	last := 0
	for _, name := range names {
		n, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migrate: bad file name %s", name)
		}
		if n == last {
			// Two files with one number (branches merged): the second
			// would never run.
			return fmt.Errorf("migrate: two migrations numbered %d", n)
		}
		last = n
		if n <= current {
			continue
		}
		b, _ := fs.ReadFile(db.dialect.Migrations, name)
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := db.dialect.SetSchemaVersion(ctx, tx, n); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		current = n
	}
	return tx.Commit()
}

// beginWrite begins a write transaction: once it returns, no other
// process writes until it ends.
func (db *DB) beginWrite(ctx context.Context) (*sql.Tx, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil || db.dialect.BeginWrite == "" {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, db.dialect.BeginWrite); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// Backup writes a consistent copy of the database to path while it stays
// online.
func (db *DB) Backup(ctx context.Context, path string) error {
	if err := db.dialect.Backup(ctx, db.read, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// change is the body of a write transaction. It returns what the audit
// entry records: action, object and a detail value (JSON-encoded); an empty
// action records nothing (only re-publishing).
type change func(tx *sql.Tx) (action, object string, detail any, err error)

// update runs fn in one immediate transaction together with republishing
// every scope whose content changed and appending the audit entry, then
// tells the subscribers about new versions once committed.
func (db *DB) update(ctx context.Context, actor allowlist.Actor, fn change) error {
	return db.updateSite(ctx, actor, allowlist.AnySite, fn)
}

// updateOther is update for a change to no site (departments, contacts,
// tokens, requests): the republication reloads no site.
func (db *DB) updateOther(ctx context.Context, actor allowlist.Actor, fn change) error {
	return db.updateSite(ctx, actor, allowlist.NoSite, fn)
}

// updateSite is update for a change to one site only (site is its id):
// the republication reloads that site alone.
func (db *DB) updateSite(ctx context.Context, actor allowlist.Actor, site string, fn change) error {
	_, err := db.write1(ctx, actor, site, fn)
	return err
}

// siteAfter runs a change to one site and returns that site as the
// publication left it, without reading it again.
func (db *DB) siteAfter(ctx context.Context, actor allowlist.Actor, site string, fn change) (allowlist.Site, error) {
	s, err := db.write1(ctx, actor, site, fn)
	if err == nil && s.ID == "" {
		err = notFound("site", site)
	}
	return s, err
}

// write1 is updateSite, returning site (when set) as the publication left
// it: taken while the lock is held, since the next publication reuses
// the publication's sites.
func (db *DB) write1(ctx context.Context, actor allowlist.Actor, site string, fn change) (allowlist.Site, error) {
	db.mu.Lock()
	pub, err := db.updateLocked(ctx, actor, site, fn)
	// A database that orders writers by failing all but one (PostgreSQL
	// at SERIALIZABLE) says so: run the change again, from the start,
	// after a random pause that grows with each try. Without it the loser
	// starts again just after the winner's instance has begun its next
	// change, and loses every time (a benchmark of 8 writers on two
	// instances gave up after 50 straight failures). The pause is taken
	// without the lock, so that this process's other writers are not held
	// up behind it (each run is a whole transaction of its own).
	for try := 1; isRetryable(err) && try < maxTries; try++ {
		db.mu.Unlock()
		time.Sleep(retryPause(try))
		db.mu.Lock()
		pub, err = db.updateLocked(ctx, actor, site, fn)
	}
	var s allowlist.Site
	if err == nil && site != allowlist.AnySite && site != allowlist.NoSite {
		s, _ = pub.Site(site)
	}
	db.mu.Unlock()
	if err != nil {
		return s, err
	}
	db.subsMu.Lock()
	subs := db.subs
	db.subsMu.Unlock()
	for _, v := range pub.Versions {
		for _, f := range subs {
			f(v)
		}
	}
	return s, nil
}

func (db *DB) updateLocked(ctx context.Context, actor allowlist.Actor, site string, fn change) (allowlist.Publication, error) {
	// The transaction must finish even if the client goes away: a commit
	// half-done by a cancelled context would only be rolled back anyway,
	// but an error after commit would lie to the caller.
	ctx = context.WithoutCancel(ctx)
	var pub allowlist.Publication
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return pub, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	committed := false
	defer func() {
		if !committed {
			db.pub.Abandon() // publish may have read sites tx held
		}
	}()
	gen, err := generation(ctx, tx)
	if err != nil {
		return pub, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('generation', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", strconv.FormatInt(gen+1, 10)); err != nil {
		return pub, fmt.Errorf("store generation: %w", err)
	}
	if err := recordChange(ctx, tx, gen+1, site); err != nil {
		return pub, err
	}
	action, object, detail, err := fn(tx)
	if err != nil {
		return pub, err
	}
	now := db.opts.Now()
	pub, err = db.publish(ctx, tx, gen, now, site)
	if err != nil {
		return pub, err
	}
	if db.dialect.Published != "" {
		for _, v := range pub.Versions {
			if _, err := tx.ExecContext(ctx, db.dialect.Published, v.Scope, v.Version); err != nil {
				return pub, fmt.Errorf("notify: %w", err)
			}
		}
	}
	if action != "" {
		if err := appendAudit(ctx, tx, now, actor.String(), action, object, detail); err != nil {
			return pub, err
		}
		for _, v := range pub.Versions {
			if err := appendAudit(ctx, tx, now, actor.String(), "list.publish", "list/"+v.Scope, map[string]any{"version": v.Version, "sha256": v.SHA256, "added": v.Added, "removed": v.Removed}); err != nil {
				return pub, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return pub, fmt.Errorf("commit: %w", err)
	}
	committed = true
	db.pub.Committed(pub)
	return pub, nil
}

// keepChanges is how many generations of site_changes are kept: a
// process further behind reads every site.
const keepChanges = 10_000

// recordChange records which site write generation gen changed.
func recordChange(ctx context.Context, tx *sql.Tx, gen int64, site string) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO site_changes (generation, site) VALUES (?, ?)", gen, site); err != nil {
		return fmt.Errorf("record change: %w", err)
	}
	if gen%1000 == 0 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM site_changes WHERE generation <= ?", gen-keepChanges); err != nil {
			return fmt.Errorf("prune changes: %w", err)
		}
	}
	return nil
}

// changedSince returns the sites the writes after generation from, up to
// generation to, changed (allowlist.PublishInput.ChangedSince).
func changedSince(ctx context.Context, q queryer, from, to int64) ([]string, bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT site FROM site_changes WHERE generation > ? AND generation <= ?", from, to)
	if err != nil {
		return nil, false, fmt.Errorf("site changes: %w", err)
	}
	defer rows.Close()
	var ids []string
	n := int64(0)
	for rows.Next() {
		var site string
		if err := rows.Scan(&site); err != nil {
			return nil, false, err
		}
		n++
		switch site {
		case allowlist.AnySite:
			return nil, true, nil
		case allowlist.NoSite:
		default:
			ids = append(ids, site)
		}
	}
	// A write recorded nothing (made before the record began, or pruned).
	return ids, n != to-from, rows.Err()
}

// generation reads the write generation (meta key "generation"): 0 while
// nothing has been written.
func generation(ctx context.Context, q queryer) (int64, error) {
	var stored string
	if err := q.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'generation'").Scan(&stored); err != nil && err != sql.ErrNoRows {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	gen, _ := strconv.ParseInt(stored, 10, 64)
	return gen, nil
}

// isUnique reports a UNIQUE or PRIMARY KEY violation, in SQLite or in a
// database that reports SQLSTATE codes (PostgreSQL: 23505).
func isUnique(err error) bool {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	var s interface{ SQLState() string }
	return errors.As(err, &s) && s.SQLState() == "23505"
}

// maxTries bounds the runs of one change that a database may ask to retry.
const maxTries = 50

// retryPause is how long to wait before try number try (from 1) of a
// change the database refused: random, below 2 ms before the first
// retry, the bound doubling each try up to 64 ms.
func retryPause(try int) time.Duration {
	return time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 6)))
}

// isRetryable reports a serialization failure or deadlock (SQLSTATE 40001,
// 40P01): the transaction was rolled back and may run again.
func isRetryable(err error) bool {
	var s interface{ SQLState() string }
	return errors.As(err, &s) && (s.SQLState() == "40001" || s.SQLState() == "40P01")
}

func notFound(what, id string) error {
	return allowlist.Errorf(allowlist.ENOTFOUND, "%s %q not found", what, id)
}
