package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cross-gov/allowlist/allowlist"
)

// FindScopes lists every scope with its current version, common first.
func (db *DB) FindScopes(ctx context.Context) ([]allowlist.ScopeInfo, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT v.scope, v.version, v.sha256, v.entries, v.created_at FROM versions v
		JOIN (SELECT scope, MAX(version) AS version FROM versions GROUP BY scope) m ON m.scope = v.scope AND m.version = v.version
		ORDER BY v.scope != 'common', v.scope`)
	if err != nil {
		return nil, fmt.Errorf("scopes: %w", err)
	}
	defer rows.Close()
	out := []allowlist.ScopeInfo{}
	for rows.Next() {
		var s allowlist.ScopeInfo
		var at string
		if err := rows.Scan(&s.Scope, &s.Version, &s.SHA256, &s.Entries, &at); err != nil {
			return nil, err
		}
		s.UpdatedAt = parseTS(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// FindVersion returns one version with its exact body, or the latest for
// allowlist.Latest. ENOTFOUND.
func (db *DB) FindVersion(ctx context.Context, scope string, n int64) (allowlist.Version, error) {
	const cols = "SELECT v.version, v.created_at, v.sha256, v.entries, v.added, v.removed, v.body, v.signature, v.head, c.entries, v.endpoints, COALESCE(v.endpoints_signature, '') " +
		versionsWithContent + " WHERE v.scope = ?"
	q := cols + " AND v.version = ?"
	args := []any{scope, n}
	if n == allowlist.Latest {
		q = cols + " ORDER BY v.version DESC LIMIT 1"
		args = args[:1]
	}
	v := allowlist.Version{Scope: scope}
	var at string
	var head, content []byte
	err := db.read.QueryRowContext(ctx, q, args...).Scan(&v.Version, &at, &v.SHA256, &v.Entries, &v.Added, &v.Removed, &v.Body, &v.Signature, &head, &content, &v.Endpoints, &v.EndpointsSignature)
	if err == sql.ErrNoRows {
		if n == allowlist.Latest {
			return v, notFound("scope", scope)
		}
		return v, allowlist.Errorf(allowlist.ENOTFOUND, "scope %q has no version %d", scope, n)
	}
	if err != nil {
		return v, fmt.Errorf("version: %w", err)
	}
	if v.Body, err = joinBody(ctx, db.read, v.SHA256, v.Body, head, content); err != nil {
		return v, fmt.Errorf("version %s/%d: %w", scope, v.Version, err)
	}
	v.CreatedAt = parseTS(at)
	return v, nil
}

// FindChanges returns what version changed against the one before it, as
// recorded when it was published.
func (db *DB) FindChanges(ctx context.Context, scope string, n int64) (allowlist.Changes, bool, error) {
	var c allowlist.Changes
	err := db.read.QueryRowContext(ctx, "SELECT added_entries, removed_entries, endpoint_changes FROM versions WHERE scope = ? AND version = ?", scope, n).Scan(&c.Added, &c.Removed, &c.Endpoints)
	if err == sql.ErrNoRows {
		return c, false, allowlist.Errorf(allowlist.ENOTFOUND, "scope %q has no version %d", scope, n)
	}
	if err != nil {
		return c, false, fmt.Errorf("changes: %w", err)
	}
	return c, c.Added != nil && c.Removed != nil, nil
}

// FindVersions lists a scope's versions, oldest first, without bodies.
// ENOTFOUND.
func (db *DB) FindVersions(ctx context.Context, scope string) ([]allowlist.Version, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT version, created_at, sha256, entries, added, removed FROM versions WHERE scope = ? ORDER BY version", scope)
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Version{}
	for rows.Next() {
		v := allowlist.Version{Scope: scope}
		var at string
		if err := rows.Scan(&v.Version, &at, &v.SHA256, &v.Entries, &v.Added, &v.Removed); err != nil {
			return nil, err
		}
		v.CreatedAt = parseTS(at)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFound("scope", scope)
	}
	return out, nil
}
