package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// publish recomputes every scope inside tx, stores a new signed version of
// each scope whose content changed, and brings site statuses up to date.
func (db *DB) publish(ctx context.Context, tx *sql.Tx, now time.Time) ([]allowlist.Version, error) {
	sites, err := loadSites(ctx, tx, "", nil)
	if err != nil {
		return nil, err
	}
	depts, err := departmentIDs(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, s := range sites {
		if st := allowlist.SiteStatus(s, db.opts.Quorum); st != s.Status {
			if _, err := tx.ExecContext(ctx, "UPDATE sites SET status = ? WHERE id = ?", st, s.ID); err != nil {
				return nil, fmt.Errorf("update status: %w", err)
			}
		}
	}
	scopes := allowlist.Scopes(sites, depts, db.opts.Quorum)
	var out []allowlist.Version
	for _, scope := range append([]string{allowlist.ScopeCommon}, depts...) {
		entries := scopes[scope]
		prev, prevEntries, err := latestEntries(ctx, tx, scope)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			// Every scope starts at version 0 with no entries.
			v, err := db.storeVersion(ctx, tx, scope, 0, now, []allowlist.Entry{}, nil)
			if err != nil {
				return nil, err
			}
			prev, prevEntries = &v, []allowlist.Entry{}
		}
		if allowlist.EntriesSHA256(entries) == prev.SHA256 {
			continue
		}
		v, err := db.storeVersion(ctx, tx, scope, prev.Version+1, now, entries, prevEntries)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (db *DB) storeVersion(ctx context.Context, tx *sql.Tx, scope string, n int64, now time.Time, entries, prev []allowlist.Entry) (allowlist.Version, error) {
	l, body := allowlist.NewList(scope, n, now, entries)
	added, removed := allowlist.Diff(prev, l.Entries)
	v := allowlist.Version{
		Scope: scope, Version: n, CreatedAt: l.GeneratedAt, SHA256: l.SHA256,
		Entries: len(l.Entries), Added: len(added), Removed: len(removed),
		Body: body, Signature: allowlist.SignList(db.opts.Key, body),
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, scope, n, ts(v.CreatedAt), v.SHA256, v.Entries, v.Added, v.Removed, body, v.Signature)
	if err != nil {
		return v, fmt.Errorf("store version %s/%d: %w", scope, n, err)
	}
	return v, nil
}

func latestEntries(ctx context.Context, q queryer, scope string) (*allowlist.Version, []allowlist.Entry, error) {
	var v allowlist.Version
	var created string
	err := q.QueryRowContext(ctx, "SELECT version, sha256, body, created_at FROM versions WHERE scope = ? ORDER BY version DESC LIMIT 1", scope).
		Scan(&v.Version, &v.SHA256, &v.Body, &created)
	if err == sql.ErrNoRows {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("latest version of %s: %w", scope, err)
	}
	v.Scope, v.CreatedAt = scope, parseTS(created)
	// Stored bodies were built by NewList in this package: decoding is
	// enough, re-validating every pattern would cost more than the write.
	var l allowlist.List
	if err := json.Unmarshal(v.Body, &l); err != nil {
		return nil, nil, fmt.Errorf("stored version %s/%d: %w", scope, v.Version, err)
	}
	return &v, l.Entries, nil
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
	if limit <= 0 || limit > 1000 {
		limit = 1000
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

// VerifyAudit walks the whole chain and returns the first broken entry.
// A gap in sequence numbers counts as a break.
func (db *DB) VerifyAudit(ctx context.Context) (int64, bool, error) {
	prev, next := "", int64(1)
	for {
		batch, err := db.FindAudit(ctx, next-1, 1000)
		if err != nil {
			return 0, false, err
		}
		if len(batch) == 0 {
			return 0, true, nil
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
