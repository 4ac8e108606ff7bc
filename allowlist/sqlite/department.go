package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

func departmentExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM departments WHERE id = ?", id).Scan(&one)
	if err == sql.ErrNoRows {
		return notFound("department", id)
	}
	return err
}

// CreateDepartment adds a department; its scope starts at version 0.
// EINVALID, ECONFLICT.
func (db *DB) CreateDepartment(ctx context.Context, a allowlist.Actor, d allowlist.Department) (allowlist.Department, error) {
	if err := allowlist.ValidateDepartment(d); err != nil {
		return d, err
	}
	d.CreatedAt = parseTS(ts(db.opts.Now()))
	err := db.updateOther(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		return "department.create", "department/" + d.ID, d, createDepartment(ctx, tx, d)
	})
	return d, err
}

func createDepartment(ctx context.Context, tx *sql.Tx, d allowlist.Department) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO departments (id, name, kind, created_at) VALUES (?, ?, ?, ?)", d.ID, d.Name, d.Kind, ts(d.CreatedAt))
	if isUnique(err) {
		return &allowlist.Error{Code: allowlist.ECONFLICT, Message: fmt.Sprintf("department %q already exists", d.ID),
			Fields: []allowlist.FieldError{{Field: "id", Message: "already exists"}}}
	}
	if err != nil {
		return fmt.Errorf("insert department: %w", err)
	}
	return nil
}

// FindDepartments lists departments by id.
func (db *DB) FindDepartments(ctx context.Context) ([]allowlist.Department, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, name, kind, created_at FROM departments ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("departments: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Department{}
	for rows.Next() {
		var d allowlist.Department
		var created string
		if err := rows.Scan(&d.ID, &d.Name, &d.Kind, &created); err != nil {
			return nil, err
		}
		d.CreatedAt = parseTS(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// FindDepartment returns one department. ENOTFOUND.
func (db *DB) FindDepartment(ctx context.Context, id string) (allowlist.Department, error) {
	var d allowlist.Department
	var created string
	err := db.read.QueryRowContext(ctx, "SELECT id, name, kind, created_at FROM departments WHERE id = ?", id).Scan(&d.ID, &d.Name, &d.Kind, &created)
	if err == sql.ErrNoRows {
		return d, notFound("department", id)
	}
	if err != nil {
		return d, fmt.Errorf("department: %w", err)
	}
	d.CreatedAt = parseTS(created)
	return d, nil
}

// CreateContact adds a contact to a department. EINVALID, ENOTFOUND.
func (db *DB) CreateContact(ctx context.Context, a allowlist.Actor, c allowlist.Contact) (allowlist.Contact, error) {
	if err := allowlist.ValidateContact(c); err != nil {
		return c, err
	}
	err := db.updateOther(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		if err := departmentExists(ctx, tx, c.Department); err != nil {
			return "", "", nil, err
		}
		id, err := createContact(ctx, tx, db.opts.Now(), c)
		c.ID = id
		return "contact.create", fmt.Sprintf("department/%s/contacts/%d", c.Department, id), c, err
	})
	return c, err
}

func createContact(ctx context.Context, tx *sql.Tx, now time.Time, c allowlist.Contact) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, "INSERT INTO contacts (department, name, email, role, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		c.Department, c.Name, c.Email, c.Role, ts(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert contact: %w", err)
	}
	return id, nil
}

// FindContacts lists a department's contacts. ENOTFOUND.
func (db *DB) FindContacts(ctx context.Context, dept string) ([]allowlist.Contact, error) {
	if err := departmentExists(ctx, db.read, dept); err != nil {
		return nil, err
	}
	return findContacts(ctx, db.read, dept)
}

func findContacts(ctx context.Context, q queryer, dept string) ([]allowlist.Contact, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, department, name, email, role FROM contacts WHERE department = ? ORDER BY id", dept)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Contact{}
	for rows.Next() {
		var c allowlist.Contact
		if err := rows.Scan(&c.ID, &c.Department, &c.Name, &c.Email, &c.Role); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// tokenPrefix marks the registry's secrets so that secret scanners and
// people recognise them.
const tokenPrefix = "alt_"

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores a new token's hash and returns its secret, which is
// shown only this once. EINVALID, ENOTFOUND.
func (db *DB) CreateToken(ctx context.Context, a allowlist.Actor, t allowlist.Token) (allowlist.Token, string, error) {
	if err := allowlist.ValidateToken(t); err != nil {
		return t, "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return t, "", fmt.Errorf("token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t.CreatedAt = parseTS(ts(db.opts.Now()))
	err := db.updateOther(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		if t.Department != "" {
			if err := departmentExists(ctx, tx, t.Department); err != nil {
				return "", "", nil, err
			}
		}
		var expires any
		if t.ExpiresAt != nil {
			expires = ts(*t.ExpiresAt)
		}
		var dept any
		if t.Department != "" {
			dept = t.Department
		}
		err := tx.QueryRowContext(ctx, "INSERT INTO tokens (hash, role, department, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
			hashToken(secret), t.Role, dept, t.Name, ts(t.CreatedAt), expires).Scan(&t.ID)
		if err != nil {
			return "", "", nil, fmt.Errorf("insert token: %w", err)
		}
		return "token.create", fmt.Sprintf("token/%d", t.ID), t, nil
	})
	if err != nil {
		return t, "", err
	}
	return t, secret, nil
}

// FindTokens lists tokens, never their secrets.
func (db *DB) FindTokens(ctx context.Context) ([]allowlist.Token, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, role, COALESCE(department, ''), name, created_at, expires_at, revoked_at FROM tokens ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Token{}
	for rows.Next() {
		var t allowlist.Token
		var created string
		var expires, revoked sql.NullString
		if err := rows.Scan(&t.ID, &t.Role, &t.Department, &t.Name, &created, &expires, &revoked); err != nil {
			return nil, err
		}
		t.CreatedAt = parseTS(created)
		if expires.Valid {
			e := parseTS(expires.String)
			t.ExpiresAt = &e
		}
		if revoked.Valid {
			r := parseTS(revoked.String)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken makes a token unusable at once. ENOTFOUND.
func (db *DB) RevokeToken(ctx context.Context, a allowlist.Actor, id int64) error {
	return db.updateOther(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		res, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", ts(db.opts.Now()), id)
		if err != nil {
			return "", "", nil, fmt.Errorf("revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", "", nil, allowlist.Errorf(allowlist.ENOTFOUND, "token %d not found or already revoked", id)
		}
		return "token.revoke", fmt.Sprintf("token/%d", id), nil, nil
	})
}

var errUnauthorized = allowlist.Errorf(allowlist.EUNAUTHORIZED, "missing, unknown, expired or revoked token")

// Authenticate returns the actor a secret stands for. Every failure gives
// the same error, so that a caller cannot tell a revoked token from a
// random one. EUNAUTHORIZED.
func (db *DB) Authenticate(ctx context.Context, secret string) (allowlist.Actor, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 100 {
		return allowlist.Actor{}, errUnauthorized
	}
	h := hashToken(secret)
	var a allowlist.Actor
	var stored string
	var expires, revoked sql.NullString
	err := db.read.QueryRowContext(ctx, "SELECT id, hash, role, COALESCE(department, ''), name, expires_at, revoked_at FROM tokens WHERE hash = ?", h).
		Scan(&a.TokenID, &stored, &a.Role, &a.Department, &a.Name, &expires, &revoked)
	if err == sql.ErrNoRows {
		return allowlist.Actor{}, errUnauthorized
	}
	if err != nil {
		return allowlist.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 || revoked.Valid ||
		(expires.Valid && !db.opts.Now().Before(parseTS(expires.String))) {
		return allowlist.Actor{}, errUnauthorized
	}
	return a, nil
}
