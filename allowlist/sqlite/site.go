package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

const siteColumns = "id, name, category, description, homepage, owner_name, owner_email, status, reason, proposed_by, revision, created_at, updated_at, notes"

// loadSites reads sites (one, when id is set) with their domain history and
// decisions. Filter f, when given, applies to status and category.
func loadSites(ctx context.Context, q queryer, id string, f *allowlist.SiteFilter) ([]allowlist.Site, error) {
	where, args := "1=1", []any{}
	if id != "" {
		where += " AND id = ?"
		args = append(args, id)
	}
	if f != nil && f.Status != "" {
		where += " AND status = ?"
		args = append(args, f.Status)
	}
	if f != nil && f.Category != "" {
		where += " AND category = ?"
		args = append(args, f.Category)
	}
	rows, err := q.QueryContext(ctx, "SELECT "+siteColumns+" FROM sites WHERE "+where+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	var sites []allowlist.Site
	index := map[string]int{}
	for rows.Next() {
		var s allowlist.Site
		var created, updated string
		if err := rows.Scan(&s.ID, &s.Name, &s.Category, &s.Description, &s.Homepage, &s.Owner.Name, &s.Owner.Email,
			&s.Status, &s.Reason, &s.ProposedBy, &s.Revision, &created, &updated, &s.Notes); err != nil {
			rows.Close()
			return nil, err
		}
		s.CreatedAt, s.UpdatedAt = parseTS(created), parseTS(updated)
		s.History = map[int][]string{}
		s.Signoffs = []allowlist.Signoff{}
		index[s.ID] = len(sites)
		sites = append(sites, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(sites) == 0 {
		return sites, nil
	}
	dwhere, dargs := "", []any{}
	if id != "" {
		dwhere, dargs = " WHERE site = ?", []any{id}
	}
	rows, err = q.QueryContext(ctx, "SELECT site, revision, pattern FROM site_domains"+dwhere+" ORDER BY site, revision, pattern", dargs...)
	if err != nil {
		return nil, fmt.Errorf("site domains: %w", err)
	}
	for rows.Next() {
		var site, pattern string
		var rev int
		if err := rows.Scan(&site, &rev, &pattern); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := index[site]; ok {
			sites[i].History[rev] = append(sites[i].History[rev], pattern)
		}
	}
	rows.Close()
	if err := loadEndpoints(ctx, q, dwhere, dargs, sites, index); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, "SELECT site, department, decision, revision, by, comment, at FROM signoffs"+dwhere+" ORDER BY site, department", dargs...)
	if err != nil {
		return nil, fmt.Errorf("signoffs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site, at string
		var so allowlist.Signoff
		if err := rows.Scan(&site, &so.Department, &so.Decision, &so.Revision, &so.By, &so.Comment, &at); err != nil {
			return nil, err
		}
		so.At = parseTS(at)
		if i, ok := index[site]; ok {
			sites[i].Signoffs = append(sites[i].Signoffs, so)
		}
	}
	if err := loadConsensus(ctx, q, dwhere, dargs, sites, index); err != nil {
		return nil, err
	}
	for i := range sites {
		sites[i].Domains = sites[i].History[sites[i].Revision]
		if sites[i].Domains == nil {
			sites[i].Domains = []string{}
		}
		e := allowlist.SiteEndpoints(sites[i], sites[i].Revision)
		sites[i].Networks, sites[i].Handling = e.Networks, e.Handling
	}
	return sites, rows.Err()
}

// FindSites lists sites by id.
func (db *DB) FindSites(ctx context.Context, f allowlist.SiteFilter) ([]allowlist.Site, error) {
	sites, err := loadSites(ctx, db.read, "", &f)
	if err != nil {
		return nil, err
	}
	out := []allowlist.Site{}
	q := strings.ToLower(f.Q)
	for _, s := range sites {
		if q != "" && !matchesQuery(s, q) {
			continue
		}
		out = append(out, db.pub.WithPublished(s))
	}
	return out, nil
}

func matchesQuery(s allowlist.Site, q string) bool {
	if strings.Contains(s.ID, q) || strings.Contains(strings.ToLower(s.Name), q) || strings.Contains(strings.ToLower(s.Description), q) {
		return true
	}
	for _, d := range s.Domains {
		if strings.Contains(d, q) {
			return true
		}
	}
	return false
}

// FindSite returns one site. ENOTFOUND.
func (db *DB) FindSite(ctx context.Context, id string) (allowlist.Site, error) {
	return findSite(ctx, db, db.read, id)
}

func findSite(ctx context.Context, db *DB, q queryer, id string) (allowlist.Site, error) {
	sites, err := loadSites(ctx, q, id, nil)
	if err != nil {
		return allowlist.Site{}, err
	}
	if len(sites) == 0 {
		return allowlist.Site{}, notFound("site", id)
	}
	return db.pub.WithPublished(sites[0]), nil
}

// checkDomainsFree returns ECONFLICT if another live site's current
// revision holds one of the patterns.
func checkDomainsFree(ctx context.Context, tx *sql.Tx, site string, domains []string) error {
	for i, d := range domains {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT s.id FROM site_domains d JOIN sites s ON s.id = d.site AND s.revision = d.revision
			WHERE d.pattern = ? AND s.id != ? AND s.status != 'withdrawn' LIMIT 1`, d, site).Scan(&other)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return fmt.Errorf("check domain: %w", err)
		}
		return &allowlist.Error{Code: allowlist.ECONFLICT, Message: fmt.Sprintf("domain %s is already held by site %q", d, other),
			Fields: []allowlist.FieldError{{Field: fmt.Sprintf("domains[%d]", i), Message: "already held by site " + other}}}
	}
	return nil
}

func insertDomains(ctx context.Context, tx *sql.Tx, site string, rev int, domains []string) error {
	for _, d := range domains {
		if _, err := tx.ExecContext(ctx, "INSERT INTO site_domains (site, revision, pattern) VALUES (?, ?, ?)", site, rev, d); err != nil {
			return fmt.Errorf("insert domain: %w", err)
		}
	}
	return nil
}

// CreateSite proposes a site. EINVALID, ECONFLICT.
func (db *DB) CreateSite(ctx context.Context, a allowlist.Actor, in allowlist.SiteInput) (allowlist.Site, error) {
	in, err := allowlist.NormalizeSite(in)
	if err != nil {
		return allowlist.Site{}, err
	}
	return db.siteAfter(ctx, a, in.ID, func(tx *sql.Tx) (string, string, any, error) {
		return "site.create", "site/" + in.ID, in, createSite(ctx, tx, db.opts.Now(), a.Department, in)
	})
}

func createSite(ctx context.Context, tx *sql.Tx, now time.Time, dept string, in allowlist.SiteInput) error {
	if err := checkDomainsFree(ctx, tx, in.ID, in.Domains); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO sites ("+siteColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, 1, ?, ?, ?)",
		in.ID, in.Name, in.Category, in.Description, in.Homepage, in.Owner.Name, in.Owner.Email, allowlist.StatusProposed, dept, ts(now), ts(now), in.Notes)
	if isUnique(err) {
		return &allowlist.Error{Code: allowlist.ECONFLICT, Message: fmt.Sprintf("site %q already exists", in.ID),
			Fields: []allowlist.FieldError{{Field: "id", Message: "already exists"}}}
	}
	if err != nil {
		return fmt.Errorf("insert site: %w", err)
	}
	if err := insertEndpoints(ctx, tx, in.ID, 1, in.Endpoints()); err != nil {
		return err
	}
	return insertDomains(ctx, tx, in.ID, 1, in.Domains)
}

// UpdateSite changes a site. New domains make a new revision, which waits
// for a new quorum. EINVALID, ENOTFOUND, ECONFLICT.
func (db *DB) UpdateSite(ctx context.Context, a allowlist.Actor, id string, p allowlist.SitePatch) (allowlist.Site, error) {
	return db.siteAfter(ctx, a, id, func(tx *sql.Tx) (string, string, any, error) {
		cur, err := findSite(ctx, db, tx, id)
		if err != nil {
			return "", "", nil, err
		}
		in := allowlist.SiteInput{ID: cur.ID, Name: cur.Name, Category: cur.Category, Description: cur.Description,
			Homepage: cur.Homepage, Domains: cur.Domains, Owner: cur.Owner, Networks: cur.Networks, Handling: cur.Handling, Notes: cur.Notes}
		if p.Name != nil {
			in.Name = *p.Name
		}
		if p.Category != nil {
			in.Category = *p.Category
		}
		if p.Description != nil {
			in.Description = *p.Description
		}
		if p.Homepage != nil {
			in.Homepage = *p.Homepage
		}
		if p.Owner != nil {
			in.Owner = *p.Owner
		}
		if p.Domains != nil {
			in.Domains = *p.Domains
		}
		if p.Networks != nil {
			in.Networks = *p.Networks
		}
		if p.Handling != nil {
			in.Handling = *p.Handling
		}
		if p.Notes != nil {
			in.Notes = *p.Notes
		}
		in, err = allowlist.NormalizeSite(in)
		if err != nil {
			return "", "", nil, err
		}
		rev := cur.Revision
		// A new revision when the domains, networks or handling change:
		// decisions refer to a revision's whole set.
		newDomains := !slices.Equal(in.Domains, cur.Domains)
		if newDomains || !allowlist.SameEndpoints(in.Endpoints(), allowlist.SiteEndpoints(cur, cur.Revision)) {
			if newDomains {
				if err := checkDomainsFree(ctx, tx, id, in.Domains); err != nil {
					return "", "", nil, err
				}
			}
			rev++
			if err := insertDomains(ctx, tx, id, rev, in.Domains); err != nil {
				return "", "", nil, err
			}
			if err := insertEndpoints(ctx, tx, id, rev, in.Endpoints()); err != nil {
				return "", "", nil, err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE sites SET name = ?, category = ?, description = ?, homepage = ?, owner_name = ?, owner_email = ?,
			revision = ?, updated_at = ?, notes = ? WHERE id = ?`, in.Name, in.Category, in.Description, in.Homepage, in.Owner.Name, in.Owner.Email, rev, ts(db.opts.Now()), in.Notes, id)
		if err != nil {
			return "", "", nil, fmt.Errorf("update site: %w", err)
		}
		return "site.update", "site/" + id, map[string]any{"patch": p, "revision": rev}, nil
	})
}

// SetSignoff records a department's decision on the current revision.
// EINVALID, ENOTFOUND.
func (db *DB) SetSignoff(ctx context.Context, a allowlist.Actor, site, dept, decision, comment string) (allowlist.Site, error) {
	if err := allowlist.ValidateSignoff(decision, comment); err != nil {
		return allowlist.Site{}, err
	}
	return db.siteAfter(ctx, a, site, func(tx *sql.Tx) (string, string, any, error) {
		return db.setSignoff(ctx, tx, a, site, dept, decision, comment)
	})
}

// setSignoff records a decision within tx, returning its audit entry.
func (db *DB) setSignoff(ctx context.Context, tx *sql.Tx, a allowlist.Actor, site, dept, decision, comment string) (string, string, any, error) {
	var rev int
	var status string
	err := tx.QueryRowContext(ctx, "SELECT revision, status FROM sites WHERE id = ?", site).Scan(&rev, &status)
	if err == sql.ErrNoRows {
		return "", "", nil, notFound("site", site)
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("find site: %w", err)
	}
	if status == allowlist.StatusWithdrawn {
		return "", "", nil, allowlist.Errorf(allowlist.EINVALID, "site %q is withdrawn", site)
	}
	if err := departmentExists(ctx, tx, dept); err != nil {
		return "", "", nil, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO signoffs (site, department, decision, revision, by, comment, at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (site, department) DO UPDATE SET decision = excluded.decision, revision = excluded.revision,
		by = excluded.by, comment = excluded.comment, at = excluded.at`, site, dept, decision, rev, a.String(), comment, ts(db.opts.Now()))
	if err != nil {
		return "", "", nil, fmt.Errorf("set signoff: %w", err)
	}
	return "signoff.set", "site/" + site + "/signoffs/" + dept, map[string]any{"decision": decision, "comment": comment, "revision": rev}, nil
}

// ProposeSite proposes a site and records the proposing department's
// approval in one transaction, audited as the two steps it joins (the
// proposal, then the decision), so notifications and the audit log read
// it as they read CreateSite followed by SetSignoff.
func (db *DB) ProposeSite(ctx context.Context, a allowlist.Actor, in allowlist.SiteInput, comment string) (allowlist.Site, error) {
	if a.Department == "" {
		return allowlist.Site{}, allowlist.Errorf(allowlist.EFORBIDDEN, "only a department's filtering owner proposes and approves a site")
	}
	in, err := allowlist.NormalizeSite(in)
	if err != nil {
		return allowlist.Site{}, err
	}
	if err := allowlist.ValidateSignoff(allowlist.DecisionApprove, comment); err != nil {
		return allowlist.Site{}, err
	}
	return db.siteAfter(ctx, a, in.ID, func(tx *sql.Tx) (string, string, any, error) {
		if err := departmentExists(ctx, tx, a.Department); err != nil {
			return "", "", nil, err
		}
		now := db.opts.Now()
		if err := createSite(ctx, tx, now, a.Department, in); err != nil {
			return "", "", nil, err
		}
		if err := appendAudit(ctx, tx, now, a.String(), "site.create", "site/"+in.ID, in); err != nil {
			return "", "", nil, err
		}
		return db.setSignoff(ctx, tx, a, in.ID, a.Department, allowlist.DecisionApprove, comment)
	})
}

// DeleteSignoff withdraws a department's decision. ENOTFOUND.
func (db *DB) DeleteSignoff(ctx context.Context, a allowlist.Actor, site, dept string) (allowlist.Site, error) {
	return db.siteAfter(ctx, a, site, func(tx *sql.Tx) (string, string, any, error) {
		res, err := tx.ExecContext(ctx, "DELETE FROM signoffs WHERE site = ? AND department = ?", site, dept)
		if err != nil {
			return "", "", nil, fmt.Errorf("delete signoff: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", "", nil, allowlist.Errorf(allowlist.ENOTFOUND, "no sign-off by %q on site %q", dept, site)
		}
		if err := recordWithdrawal(ctx, tx, site, db.opts.Now()); err != nil {
			return "", "", nil, err
		}
		return "signoff.delete", "site/" + site + "/signoffs/" + dept, nil, nil
	})
}

// SuspendSite takes a site off every list in the next version.
// EINVALID, ENOTFOUND.
func (db *DB) SuspendSite(ctx context.Context, a allowlist.Actor, id, reason string) (allowlist.Site, error) {
	if err := allowlist.ValidateReason(reason); err != nil {
		return allowlist.Site{}, err
	}
	return db.setStatus(ctx, a, id, "site.suspend", map[string]string{"reason": reason}, func(status string) (string, string, error) {
		if status == allowlist.StatusSuspended || status == allowlist.StatusWithdrawn {
			return "", "", allowlist.Errorf(allowlist.EINVALID, "site %q is already %s", id, status)
		}
		return allowlist.StatusSuspended, reason, nil
	})
}

// ReinstateSite undoes a suspension; a reason, when given, is audited.
// EINVALID, ENOTFOUND.
func (db *DB) ReinstateSite(ctx context.Context, a allowlist.Actor, id, reason string) (allowlist.Site, error) {
	if err := allowlist.ValidateOptionalReason(reason); err != nil {
		return allowlist.Site{}, err
	}
	var detail any
	if reason != "" {
		detail = map[string]string{"reason": reason}
	}
	return db.setStatus(ctx, a, id, "site.reinstate", detail, func(status string) (string, string, error) {
		if status != allowlist.StatusSuspended {
			return "", "", allowlist.Errorf(allowlist.EINVALID, "site %q is not suspended", id)
		}
		// publish() recomputes proposed or approved from the decisions.
		return allowlist.StatusProposed, "", nil
	})
}

func (db *DB) setStatus(ctx context.Context, a allowlist.Actor, id, action string, detail any, next func(string) (string, string, error)) (allowlist.Site, error) {
	return db.siteAfter(ctx, a, id, func(tx *sql.Tx) (string, string, any, error) {
		var status string
		err := tx.QueryRowContext(ctx, "SELECT status FROM sites WHERE id = ?", id).Scan(&status)
		if err == sql.ErrNoRows {
			return "", "", nil, notFound("site", id)
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("find site: %w", err)
		}
		st, reason, err := next(status)
		if err != nil {
			return "", "", nil, err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sites SET status = ?, reason = ?, updated_at = ? WHERE id = ?", st, reason, ts(db.opts.Now()), id); err != nil {
			return "", "", nil, fmt.Errorf("set status: %w", err)
		}
		return action, "site/" + id, detail, nil
	})
}

// loadEndpoints reads the endpoints of every revision of the sites.
func loadEndpoints(ctx context.Context, q queryer, where string, args []any, sites []allowlist.Site, index map[string]int) error {
	rows, err := q.QueryContext(ctx, "SELECT site, revision, networks, tls_inspection, proxy FROM site_endpoints"+where, args...)
	if err != nil {
		return fmt.Errorf("site endpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site, networks string
		var rev int
		var e allowlist.Endpoints
		if err := rows.Scan(&site, &rev, &networks, &e.Handling.TLSInspection, &e.Handling.Proxy); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(networks), &e.Networks); err != nil {
			return fmt.Errorf("site %s revision %d networks: %w", site, rev, err)
		}
		if i, ok := index[site]; ok {
			if sites[i].EndpointHistory == nil {
				sites[i].EndpointHistory = map[int]allowlist.Endpoints{}
			}
			sites[i].EndpointHistory[rev] = e
		}
	}
	return rows.Err()
}

// insertEndpoints records a revision's endpoints, when they say anything.
func insertEndpoints(ctx context.Context, tx *sql.Tx, site string, rev int, e allowlist.Endpoints) error {
	if !e.Relaxed() {
		return nil
	}
	networks, err := json.Marshal(append([]allowlist.Network{}, e.Networks...))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO site_endpoints (site, revision, networks, tls_inspection, proxy) VALUES (?, ?, ?, ?, ?)",
		site, rev, string(networks), e.Handling.TLSInspection, e.Handling.Proxy)
	if err != nil {
		return fmt.Errorf("insert endpoints: %w", err)
	}
	return nil
}
