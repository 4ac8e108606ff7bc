package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
)

var _ allowlist.TSIGStore = (*DB)(nil)

// CreateTSIGKey makes a zone-transfer key with a 32-byte random secret.
func (db *DB) CreateTSIGKey(ctx context.Context, a allowlist.Actor, name string, scopes []string) (allowlist.TSIGKey, []byte, error) {
	name = strings.TrimSuffix(name, ".")
	k := allowlist.TSIGKey{Name: name, Scopes: append([]string{}, scopes...)}
	if err := allowlist.ValidateTSIGKeyName(name); err != nil {
		return k, nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return k, nil, fmt.Errorf("tsig key: %w", err)
	}
	k.CreatedAt = parseTS(ts(db.opts.Now()))
	err := db.update(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		for i, s := range k.Scopes {
			if s == allowlist.ScopeCommon {
				continue
			}
			if err := departmentExists(ctx, tx, s); err != nil {
				return "", "", nil, prefixed(fmt.Sprintf("scopes[%d]", i), err)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM tsig_keys WHERE name = ?", name).Scan(&n); err != nil {
			return "", "", nil, fmt.Errorf("tsig key: %w", err)
		}
		if n > 0 {
			return "", "", nil, &allowlist.Error{Code: allowlist.ECONFLICT, Message: fmt.Sprintf("a TSIG key named %q already exists", name),
				Fields: []allowlist.FieldError{{Field: "name", Message: "is in use"}}}
		}
		sc, _ := json.Marshal(k.Scopes)
		err := tx.QueryRowContext(ctx, "INSERT INTO tsig_keys (name, secret, scopes, created_at) VALUES (?, ?, ?, ?) RETURNING id",
			name, secret, string(sc), ts(k.CreatedAt)).Scan(&k.ID)
		if err != nil {
			return "", "", nil, fmt.Errorf("insert tsig key: %w", err)
		}
		return "tsig.create", fmt.Sprintf("tsig/%d", k.ID), k, nil
	})
	if err != nil {
		return k, nil, err
	}
	return k, secret, nil
}

// FindTSIGKeys lists keys, never their secrets.
func (db *DB) FindTSIGKeys(ctx context.Context) ([]allowlist.TSIGKey, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, name, scopes, created_at, revoked_at FROM tsig_keys ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("tsig keys: %w", err)
	}
	defer rows.Close()
	out := []allowlist.TSIGKey{}
	for rows.Next() {
		var k allowlist.TSIGKey
		var scopes, created string
		var revoked sql.NullString
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &created, &revoked); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
			return nil, fmt.Errorf("tsig key %d scopes: %w", k.ID, err)
		}
		k.CreatedAt = parseTS(created)
		if revoked.Valid {
			t := parseTS(revoked.String)
			k.RevokedAt = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeTSIGKey makes a key unusable. ENOTFOUND.
func (db *DB) RevokeTSIGKey(ctx context.Context, a allowlist.Actor, id int64) error {
	return db.update(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		res, err := tx.ExecContext(ctx, "UPDATE tsig_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", ts(db.opts.Now()), id)
		if err != nil {
			return "", "", nil, fmt.Errorf("revoke tsig key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", "", nil, allowlist.Errorf(allowlist.ENOTFOUND, "TSIG key %d not found or already revoked", id)
		}
		return "tsig.revoke", fmt.Sprintf("tsig/%d", id), nil, nil
	})
}

// FindTSIGSecrets returns the keys in use with their secrets.
func (db *DB) FindTSIGSecrets(ctx context.Context) ([]allowlist.TSIGSecret, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, name, scopes, secret FROM tsig_keys WHERE revoked_at IS NULL ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("tsig secrets: %w", err)
	}
	defer rows.Close()
	var out []allowlist.TSIGSecret
	for rows.Next() {
		var k allowlist.TSIGSecret
		var scopes string
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &k.Secret); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
			return nil, fmt.Errorf("tsig key %s scopes: %w", k.Name, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// AuditTransferRefused records a refused zone transfer in the audit chain.
func (db *DB) AuditTransferRefused(ctx context.Context, key, remote, scope, reason string) error {
	detail := map[string]string{"key": key, "remote": remote, "scope": scope, "reason": reason}
	return db.update(ctx, allowlist.Actor{Name: "dns", Role: "system"}, func(*sql.Tx) (string, string, any, error) {
		return "zone.transfer_refused", "zone/" + scope, detail, nil
	})
}
