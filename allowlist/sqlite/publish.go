package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// publish works out the publication (allowlist.Publisher) from what tx
// holds, and writes it in tx: the statuses that changed and the new
// versions. site is the one site the write changed, allowlist.NoSite or
// allowlist.AnySite.
func (db *DB) publish(ctx context.Context, tx *sql.Tx, gen int64, now time.Time, site string) (allowlist.Publication, error) {
	depts, err := departmentIDs(ctx, tx)
	if err != nil {
		return allowlist.Publication{}, err
	}
	pub, err := db.pub.Publish(allowlist.PublishInput{
		Generation: gen,
		LoadSites:  func(id string) ([]allowlist.Site, error) { return loadSites(ctx, tx, id, nil) },
		Changed:    site,
		ChangedSince: func(from int64) ([]string, bool, error) {
			return changedSince(ctx, tx, from, gen)
		},
		ChangesAfter: func(scope string, after, upTo int64) ([]allowlist.Changes, bool, error) {
			return changesAfter(ctx, tx, scope, after, upTo)
		},
		Departments: depts,
		Latest:      func(scope string) (allowlist.Version, bool, error) { return latestVersion(ctx, tx, scope) },
		PreviousEntries: func(v allowlist.Version) ([]allowlist.Entry, error) {
			body, err := readBody(ctx, tx, v.Scope, v.Version)
			if err != nil {
				return nil, err
			}
			// Decoded without copying: the entries share body's bytes.
			l, err := allowlist.DecodeList(body)
			return l.Entries, err
		},
		Now: now,
	})
	if err != nil {
		return pub, err
	}
	for _, i := range pub.StatusChanged {
		s := pub.Sites[i]
		if _, err := tx.ExecContext(ctx, "UPDATE sites SET status = ? WHERE id = ?", s.Status, s.ID); err != nil {
			return pub, fmt.Errorf("update status: %w", err)
		}
	}
	for _, v := range append(pub.Initial, pub.Versions...) {
		if err := storeVersion(ctx, tx, v); err != nil {
			return pub, err
		}
	}
	return pub, nil
}

// changesAfter reads the changes recorded with each version of scope
// after after, up to upTo, in order; ok is false if one has none.
func changesAfter(ctx context.Context, q queryer, scope string, after, upTo int64) ([]allowlist.Changes, bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT added_entries, removed_entries FROM versions WHERE scope = ? AND version > ? AND version <= ? ORDER BY version", scope, after, upTo)
	if err != nil {
		return nil, false, fmt.Errorf("changes of %s: %w", scope, err)
	}
	defer rows.Close()
	var out []allowlist.Changes
	for rows.Next() {
		var c allowlist.Changes
		if err := rows.Scan(&c.Added, &c.Removed); err != nil {
			return nil, false, err
		}
		if c.Added == nil || c.Removed == nil {
			return nil, false, nil
		}
		out = append(out, c)
	}
	return out, int64(len(out)) == upTo-after, rows.Err()
}

// storeVersion stores a version: its head, and its content once for every
// version and scope that lists it.
func storeVersion(ctx context.Context, tx *sql.Tx, v allowlist.Version) error {
	var addedJSON, removedJSON, endpointChanges []byte
	if v.Changes != nil {
		addedJSON, removedJSON, endpointChanges = v.Changes.Added, v.Changes.Removed, v.Changes.Endpoints
	}
	if err := storeContent(ctx, tx, v.SHA256, v.Content); err != nil {
		return fmt.Errorf("store version %s/%d: %w", v.Scope, v.Version, err)
	}
	var epSig any
	if v.Endpoints != nil {
		epSig = v.EndpointsSignature
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature, added_entries, removed_entries, head, endpoints, endpoints_signature, endpoint_changes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, v.Scope, v.Version, ts(v.CreatedAt), v.SHA256, v.Entries, v.Added, v.Removed, []byte{}, v.Signature, addedJSON, removedJSON, v.Head, v.Endpoints, epSig, endpointChanges)
	if err != nil {
		return fmt.Errorf("store version %s/%d: %w", v.Scope, v.Version, err)
	}
	return nil
}

// versionsWithContent is the FROM clause that reads a version with the
// content it shares (none for a version stored whole); joinBody makes the
// body from what it gives.
const versionsWithContent = "FROM versions v LEFT JOIN contents c ON v.head IS NOT NULL AND c.sha256 = v.sha256"

// readBody returns the exact body of a stored version, whole.
func readBody(ctx context.Context, q queryer, scope string, n int64) ([]byte, error) {
	var sha string
	var body, head, content []byte
	err := q.QueryRowContext(ctx, "SELECT v.sha256, v.body, v.head, c.entries "+versionsWithContent+" WHERE v.scope = ? AND v.version = ?", scope, n).
		Scan(&sha, &body, &head, &content)
	if err != nil {
		return nil, err
	}
	return joinBody(ctx, q, sha, body, head, content)
}

// joinBody makes a version's body from its stored parts: the whole body
// (versions stored before 0003_contents), or its head and content, the
// content whole (stored before 0004_chunks) or empty, to be joined from
// its chunks.
func joinBody(ctx context.Context, q queryer, sha string, body, head, content []byte) ([]byte, error) {
	if head == nil {
		return body, nil
	}
	if content == nil {
		return nil, errors.New("the version's list content is missing")
	}
	if len(content) == 0 {
		var err error
		if content, err = readContent(ctx, q, sha); err != nil {
			return nil, err
		}
	}
	return list.Join(head, content), nil
}

// latestVersion returns the identity of the latest version of scope
// (without its body), and false when the scope has none.
func latestVersion(ctx context.Context, q queryer, scope string) (allowlist.Version, bool, error) {
	var v allowlist.Version
	var created string
	err := q.QueryRowContext(ctx, "SELECT version, sha256, created_at, endpoints FROM versions WHERE scope = ? ORDER BY version DESC LIMIT 1", scope).
		Scan(&v.Version, &v.SHA256, &created, &v.Endpoints)
	if err == sql.ErrNoRows {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("latest version of %s: %w", scope, err)
	}
	v.Scope, v.CreatedAt = scope, parseTS(created)
	return v, true, nil
}

func departmentIDs(ctx context.Context, q queryer) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT id FROM departments ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("departments: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func appendAudit(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, object string, detail any) error {
	d, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit detail: %w", err)
	}
	var prev string
	var seq int64
	err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&seq, &prev)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("audit tail: %w", err)
	}
	e := allowlist.AuditEntry{Seq: seq + 1, At: parseTS(ts(now)), Actor: actor, Action: action, Object: object, Detail: string(d), PrevHash: prev}
	e.Hash = e.ComputeHash()
	_, err = tx.ExecContext(ctx, "INSERT INTO audit (seq, at, actor, action, object, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.Seq, ts(e.At), e.Actor, e.Action, e.Object, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// FindAudit lists audit entries after seq, oldest first.
func (db *DB) FindAudit(ctx context.Context, after int64, limit int) ([]allowlist.AuditEntry, error) {
	if limit <= 0 || limit > allowlist.MaxPage {
		limit = allowlist.MaxPage
	}
	rows, err := db.read.QueryContext(ctx, "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	out := []allowlist.AuditEntry{}
	for rows.Next() {
		var e allowlist.AuditEntry
		var at string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.At = parseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole chain and returns the first broken entry,
// or, when the chain is intact, the number of entries checked.
// A gap in sequence numbers counts as a break.
func (db *DB) VerifyAudit(ctx context.Context) (int64, bool, error) {
	prev, next := "", int64(1)
	for {
		batch, err := db.FindAudit(ctx, next-1, allowlist.MaxPage)
		if err != nil {
			return 0, false, err
		}
		if len(batch) == 0 {
			return next - 1, true, nil
		}
		for _, e := range batch {
			if e.Seq != next {
				return next, false, nil
			}
			next++
		}
		if seq, ok := allowlist.VerifyAudit(batch, prev); !ok {
			return seq, false, nil
		}
		prev = batch[len(batch)-1].Hash
	}
}

// Warm loads what the first write after a start would otherwise load
// itself: every site, the scopes' sorted entries, and, for each scope
// whose latest version is what the sites give, its entries (the next
// publication diffs against them). At a million entries that is about two
// seconds the first sign-off after a restart no longer spends. It holds
// the write lock while it runs (writes wait, reads do not): call it in
// the background once the store is open.
func (db *DB) Warm(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	gen, err := generation(ctx, tx)
	if err != nil || gen == 0 { // 0: nothing written yet
		return err
	}
	var sites []allowlist.Site
	if db.pub.Cached() != gen { // else Open's own publication left them
		if sites, err = loadSites(ctx, tx, "", nil); err != nil {
			return err
		}
	}
	depts, err := departmentIDs(ctx, tx)
	if err != nil {
		return err
	}
	return db.pub.Warm(gen, sites, depts, func(scope string) (allowlist.Version, bool, error) { return latestVersion(ctx, tx, scope) })
}
