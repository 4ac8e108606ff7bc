package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
)

// referencePrefix marks a staff request's reference.
const referencePrefix = "req_"

// newReference returns an unguessable reference (128 random bits) and the
// hash under which it is stored.
func newReference() (string, string) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	ref := referencePrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return ref, hashReference(ref)
}

func hashReference(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(h[:])
}

// record runs fn in one immediate transaction with the audit entry it
// returns, without republishing: for changes that no list depends on.
func (db *DB) record(ctx context.Context, actor allowlist.Actor, fn change) error {
	ctx = context.WithoutCancel(ctx)
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	action, object, detail, err := fn(tx)
	if err != nil {
		return err
	}
	if action != "" {
		if err := appendAudit(ctx, tx, db.opts.Now(), actor.String(), action, object, detail); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// CreateRequest records a staff request for a tool and returns it with
// its reference, which is shown this once. EINVALID, ENOTFOUND.
func (db *DB) CreateRequest(ctx context.Context, a allowlist.Actor, r allowlist.Request) (allowlist.Request, error) {
	if err := allowlist.ValidateRequest(r); err != nil {
		return r, err
	}
	r.CreatedAt = parseTS(ts(db.opts.Now()))
	r.UpdatedAt = r.CreatedAt
	r.Status = allowlist.RequestReceived
	r.Group = allowlist.GroupKey(r.Tool, r.URL)
	ref, hash := newReference()
	err := db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		if err := departmentExists(ctx, tx, r.Department); err != nil {
			return "", "", nil, &allowlist.Error{Code: allowlist.EINVALID, Message: err.Error(),
				Fields: []allowlist.FieldError{{Field: "department", Message: "no such department"}}}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO requests (tool, url, reason, department, email, created_at, reference_hash, status, updated_at, grp)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, r.Tool, r.URL, r.Reason, r.Department, r.Email, ts(r.CreatedAt), hash, r.Status, ts(r.UpdatedAt), r.Group).Scan(&r.ID)
		if err != nil {
			return "", "", nil, fmt.Errorf("insert request: %w", err)
		}
		// The requester's email is a contact, and the reference a
		// capability: the audit keeps the request without either.
		return "request.create", fmt.Sprintf("request/%d", r.ID), map[string]string{"tool": r.Tool, "url": r.URL, "department": r.Department}, nil
	})
	if err != nil {
		return r, err
	}
	r.Reference = ref
	return r, nil
}

const requestColumns = "id, tool, url, reason, department, email, created_at, status, answer, site, answered_by, answered_at, updated_at, grp"

func scanRequest(row interface{ Scan(...any) error }) (allowlist.Request, error) {
	var r allowlist.Request
	var created, updated string
	var answered sql.NullString
	if err := row.Scan(&r.ID, &r.Tool, &r.URL, &r.Reason, &r.Department, &r.Email, &created, &r.Status, &r.Answer, &r.Site,
		&r.AnsweredBy, &answered, &updated, &r.Group); err != nil {
		return r, err
	}
	r.CreatedAt, r.UpdatedAt = parseTS(created), parseTS(updated)
	if updated == "" {
		r.UpdatedAt = r.CreatedAt
	}
	if r.Group == "" {
		r.Group = allowlist.GroupKey(r.Tool, r.URL)
	}
	if answered.Valid {
		t := parseTS(answered.String)
		r.AnsweredAt = &t
	}
	return r, nil
}

func findRequests(ctx context.Context, q queryer, where string, args ...any) ([]allowlist.Request, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+requestColumns+" FROM requests WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("requests: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Request{}
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindRequests lists staff requests, the newest allowlist.MaxPage first,
// for one department or for all when department is "".
func (db *DB) FindRequests(ctx context.Context, dept string) ([]allowlist.Request, error) {
	return findRequests(ctx, db.read, "CAST(? AS TEXT) = '' OR department = ? ORDER BY id DESC LIMIT "+strconv.Itoa(allowlist.MaxPage), dept, dept)
}

func findRequest(ctx context.Context, q queryer, where string, arg any) (allowlist.Request, error) {
	rs, err := findRequests(ctx, q, where, arg)
	if err != nil {
		return allowlist.Request{}, err
	}
	if len(rs) == 0 {
		return allowlist.Request{}, allowlist.Errorf(allowlist.ENOTFOUND, "no such request")
	}
	return rs[0], nil
}

// FindRequestByReference returns a request by its reference, without the
// requester's e-mail. ENOTFOUND.
func (db *DB) FindRequestByReference(ctx context.Context, ref string) (allowlist.Request, error) {
	if !strings.HasPrefix(ref, referencePrefix) || len(ref) > 64 {
		return allowlist.Request{}, allowlist.Errorf(allowlist.ENOTFOUND, "no such request")
	}
	r, err := findRequest(ctx, db.read, "reference_hash = ?", hashReference(ref))
	r.Email = ""
	return r, err
}

// FindRequest returns a request by id. ENOTFOUND.
func (db *DB) FindRequest(ctx context.Context, id int64) (allowlist.Request, error) {
	return findRequest(ctx, db.read, "id = ?", id)
}

// AnswerRequest records an owner's answer, links the request (or, with
// Group, every open request for the same tool in the department) to a
// site, and makes it allowed at once if the site is already on the
// department's list. EINVALID, ENOTFOUND, EFORBIDDEN.
func (db *DB) AnswerRequest(ctx context.Context, a allowlist.Actor, id int64, in allowlist.RequestAnswer) (allowlist.Request, error) {
	if err := allowlist.ValidateRequestAnswer(in); err != nil {
		return allowlist.Request{}, err
	}
	err := db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		r, err := findRequest(ctx, tx, "id = ?", id)
		if err != nil {
			return "", "", nil, err
		}
		if a.Role != allowlist.RoleAdmin && a.Department != r.Department {
			return "", "", nil, allowlist.Errorf(allowlist.EFORBIDDEN, "this request is for another department")
		}
		status := in.Status
		if status == "" {
			status = r.Status
			if status == allowlist.RequestReceived {
				status = allowlist.RequestInReview
			}
		}
		site := r.Site
		if in.Site != "" {
			s, err := findSite(ctx, db, tx, in.Site)
			if allowlist.ErrorCode(err) == allowlist.ENOTFOUND {
				return "", "", nil, allowlist.Invalid(allowlist.FieldError{Field: "site", Message: "no such site"})
			}
			if err != nil {
				return "", "", nil, err
			}
			site = s.ID
			if in.Status == "" && allowlist.InScope(s, r.Department, db.opts.Quorum) {
				status = allowlist.RequestAllowed
			}
		}
		answer := r.Answer
		if in.Answer != "" {
			answer = in.Answer
		}
		now := ts(db.opts.Now())
		where, args := "id = ?", []any{id}
		if in.Group {
			where = "department = ? AND grp = ? AND (id = ? OR status IN ('received', 'in-review'))"
			args = []any{r.Department, r.Group, id}
		}
		res, err := tx.ExecContext(ctx, "UPDATE requests SET status = ?, answer = ?, site = ?, answered_by = ?, answered_at = ?, updated_at = ? WHERE "+where,
			append([]any{status, answer, site, a.String(), now, now}, args...)...)
		if err != nil {
			return "", "", nil, fmt.Errorf("answer request: %w", err)
		}
		n, _ := res.RowsAffected()
		return "request.answer", fmt.Sprintf("request/%d", id), map[string]any{"status": status, "answer": answer, "site": site, "requests": n}, nil
	})
	if err != nil {
		return allowlist.Request{}, err
	}
	return db.FindRequest(ctx, id)
}

// FindRequestGroups groups a department's requests ("" for all) by tool.
func (db *DB) FindRequestGroups(ctx context.Context, dept string) ([]allowlist.RequestGroup, error) {
	rs, err := findRequests(ctx, db.read, "CAST(? AS TEXT) = '' OR department = ? ORDER BY id", dept, dept)
	if err != nil {
		return nil, err
	}
	return allowlist.GroupRequests(rs), nil
}

// SettleRequests makes allowed every open request whose linked site is
// now on its department's list (run after publications). It returns how
// many it settled.
func (db *DB) SettleRequests(ctx context.Context) (int, error) {
	open, err := findRequests(ctx, db.read, "site != '' AND status IN ('received', 'in-review') ORDER BY id")
	if err != nil || len(open) == 0 {
		return 0, err
	}
	sites := map[string]allowlist.Site{}
	settled := 0
	for _, r := range open {
		s, ok := sites[r.Site]
		if !ok {
			s, err = db.FindSite(ctx, r.Site)
			if err != nil {
				continue // the site is gone: the owners decide what next
			}
			sites[r.Site] = s
		}
		if !allowlist.InScope(s, r.Department, db.opts.Quorum) {
			continue
		}
		err := db.record(ctx, governor, func(tx *sql.Tx) (string, string, any, error) {
			res, err := tx.ExecContext(ctx, "UPDATE requests SET status = 'allowed', updated_at = ? WHERE id = ? AND status IN ('received', 'in-review') AND site = ?",
				ts(db.opts.Now()), r.ID, r.Site)
			if err != nil {
				return "", "", nil, fmt.Errorf("settle request: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return "", "", nil, nil // another process got there first
			}
			settled++
			return "request.allowed", fmt.Sprintf("request/%d", r.ID), map[string]string{"rule": "linked site is on the department's list", "site": r.Site, "department": r.Department}, nil
		})
		if err != nil {
			return settled, err
		}
	}
	return settled, nil
}
