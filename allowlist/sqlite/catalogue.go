package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/cross-gov/allowlist/allowlist"
)

// prefixed returns err with its field names under prefix, for catalogue
// paths such as sites[3].domains[1].
func prefixed(prefix string, err error) error {
	e, ok := err.(*allowlist.Error)
	if !ok {
		return err
	}
	out := &allowlist.Error{Code: e.Code, Message: prefix + ": " + e.Message}
	for _, f := range e.Fields {
		out.Fields = append(out.Fields, allowlist.FieldError{Field: prefix + "." + f.Field, Message: f.Message})
	}
	if len(out.Fields) == 0 {
		out.Fields = []allowlist.FieldError{{Field: prefix, Message: e.Message}}
	}
	return out
}

// Import adds a catalogue's departments, contacts, sites and decisions in
// one transaction: all of it or, on any error, nothing. EINVALID, ECONFLICT.
func (db *DB) Import(ctx context.Context, a allowlist.Actor, c allowlist.Catalogue) error {
	return db.update(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		now := db.opts.Now()
		for i, d := range c.Departments {
			path := fmt.Sprintf("departments[%d]", i)
			dep := allowlist.Department{ID: d.ID, Name: d.Name, Kind: d.Kind, CreatedAt: now}
			if err := allowlist.ValidateDepartment(dep); err != nil {
				return "", "", nil, prefixed(path, err)
			}
			if err := createDepartment(ctx, tx, dep); err != nil {
				return "", "", nil, prefixed(path, err)
			}
			for j, ct := range d.Contacts {
				ct.Department = d.ID
				if err := allowlist.ValidateContact(ct); err != nil {
					return "", "", nil, prefixed(fmt.Sprintf("%s.contacts[%d]", path, j), err)
				}
				if _, err := createContact(ctx, tx, now, ct); err != nil {
					return "", "", nil, err
				}
			}
		}
		for i, s := range c.Sites {
			if err := importSite(ctx, tx, db, a, s); err != nil {
				return "", "", nil, prefixed(fmt.Sprintf("sites[%d]", i), err)
			}
		}
		return "catalogue.import", "catalogue", map[string]int{"departments": len(c.Departments), "sites": len(c.Sites)}, nil
	})
}

func importSite(ctx context.Context, tx *sql.Tx, db *DB, a allowlist.Actor, s allowlist.CatalogueSite) error {
	now := db.opts.Now()
	handling := allowlist.Handling{}
	if s.Handling != nil {
		handling = *s.Handling
	}
	in, err := allowlist.NormalizeSite(allowlist.SiteInput{ID: s.ID, Name: s.Name, Category: s.Category,
		Description: s.Description, Homepage: s.Homepage, Domains: s.Domains, Owner: s.Owner,
		Networks: s.Networks, Handling: handling, Notes: s.Notes})
	if err != nil {
		return err
	}
	if s.ProposedBy != "" {
		if err := departmentExists(ctx, tx, s.ProposedBy); err != nil {
			return prefixed("proposed_by", err)
		}
	}
	// Decisions made on other domains or endpoints than the current ones
	// get revisions of their own, before the current one, so that they
	// count only for what they covered.
	type revision struct {
		domains   []string
		endpoints allowlist.Endpoints
	}
	var revs []revision
	revOf := make([]int, len(s.Signoffs))
	for i, so := range s.Signoffs {
		r := revision{in.Domains, in.Endpoints()}
		if so.Domains != nil {
			d, err := allowlist.NormalizeDomains(so.Domains)
			if err != nil {
				return prefixed(fmt.Sprintf("signoffs[%d]", i), err)
			}
			r.domains = d
		}
		if so.Endpoints != nil {
			n, fields := allowlist.NormalizeNetworks("endpoints.networks", so.Endpoints.Networks)
			h, hfields := allowlist.NormalizeHandling(so.Endpoints.Handling)
			if fields = append(fields, hfields...); len(fields) > 0 {
				return prefixed(fmt.Sprintf("signoffs[%d]", i), allowlist.Invalid(fields...))
			}
			r.endpoints = allowlist.Endpoints{Networks: n, Handling: h}
		}
		same := func(o revision) bool {
			return slices.Equal(o.domains, r.domains) && allowlist.SameEndpoints(o.endpoints, r.endpoints)
		}
		if same(revision{in.Domains, in.Endpoints()}) {
			continue
		}
		idx := slices.IndexFunc(revs, same)
		if idx < 0 {
			revs = append(revs, r)
			idx = len(revs) - 1
		}
		revOf[i] = idx + 1
	}
	current := len(revs) + 1
	if err := createSite(ctx, tx, now, s.ProposedBy, in); err != nil {
		return err
	}
	if current > 1 {
		// createSite stored the current revision as revision 1: move it.
		for _, q := range []string{"UPDATE site_domains SET revision = ? WHERE site = ?", "UPDATE site_endpoints SET revision = ? WHERE site = ?",
			"UPDATE sites SET revision = ? WHERE id = ?"} {
			if _, err := tx.ExecContext(ctx, q, current, in.ID); err != nil {
				return fmt.Errorf("import revisions: %w", err)
			}
		}
		for i, r := range revs {
			if err := insertDomains(ctx, tx, in.ID, i+1, r.domains); err != nil {
				return err
			}
			if err := insertEndpoints(ctx, tx, in.ID, i+1, r.endpoints); err != nil {
				return err
			}
		}
	}
	for i, so := range s.Signoffs {
		if err := allowlist.ValidateSignoff(so.Decision, so.Comment); err != nil {
			return prefixed(fmt.Sprintf("signoffs[%d]", i), err)
		}
		if err := departmentExists(ctx, tx, so.Department); err != nil {
			return prefixed(fmt.Sprintf("signoffs[%d].department", i), err)
		}
		by := so.By
		if by == "" {
			by = a.String()
		} else if len(by) > 200 || allowlist.UnsafeText(by) {
			return prefixed(fmt.Sprintf("signoffs[%d]", i), allowlist.Invalid(allowlist.FieldError{Field: "by",
				Message: "must be at most 200 characters, without control characters or bidirectional overrides"}))
		}
		rev := revOf[i]
		if rev == 0 {
			rev = current
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO signoffs (site, department, decision, revision, by, comment, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			in.ID, so.Department, so.Decision, rev, by, so.Comment, ts(now))
		if isUnique(err) {
			return prefixed(fmt.Sprintf("signoffs[%d].department", i), allowlist.Errorf(allowlist.ECONFLICT, "department %q decided twice", so.Department))
		}
		if err != nil {
			return fmt.Errorf("import signoff: %w", err)
		}
	}
	switch s.Status {
	case "", allowlist.StatusProposed, allowlist.StatusApproved:
	case allowlist.StatusSuspended, allowlist.StatusWithdrawn:
		if s.Reason != "" {
			if err := allowlist.ValidateReason(s.Reason); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sites SET status = ?, reason = ? WHERE id = ?", s.Status, s.Reason, in.ID); err != nil {
			return fmt.Errorf("import status: %w", err)
		}
	default:
		return allowlist.Invalid(allowlist.FieldError{Field: "status", Message: "must be suspended or withdrawn, or left out"})
	}
	return nil
}

// Export returns the registry as a catalogue that Import reads back to
// the same state.
func (db *DB) Export(ctx context.Context) (allowlist.Catalogue, error) {
	var c allowlist.Catalogue
	depts, err := db.FindDepartments(ctx)
	if err != nil {
		return c, err
	}
	for _, d := range depts {
		contacts, err := findContacts(ctx, db.read, d.ID)
		if err != nil {
			return c, err
		}
		c.Departments = append(c.Departments, allowlist.CatalogueDepartment{ID: d.ID, Name: d.Name, Kind: d.Kind, Contacts: contacts})
	}
	sites, err := loadSites(ctx, db.read, "", nil)
	if err != nil {
		return c, err
	}
	for _, s := range sites {
		cs := allowlist.CatalogueSite{ID: s.ID, Name: s.Name, Category: s.Category, Description: s.Description,
			Homepage: s.Homepage, Domains: s.Domains, Owner: s.Owner, ProposedBy: s.ProposedBy,
			Networks: s.Networks, Notes: s.Notes}
		if cur := allowlist.SiteEndpoints(s, s.Revision); cur.Relaxed() || len(cur.Networks) > 0 {
			cs.Handling = &cur.Handling
		}
		if len(cs.Networks) == 0 {
			cs.Networks = nil
		}
		if s.Status == allowlist.StatusSuspended || s.Status == allowlist.StatusWithdrawn {
			cs.Status, cs.Reason = s.Status, s.Reason
		}
		for _, so := range s.Signoffs {
			cso := allowlist.CatalogueSignoff{Department: so.Department, Decision: so.Decision, By: so.By, Comment: so.Comment}
			if so.Revision != s.Revision {
				cso.Domains = s.History[so.Revision]
				if e := allowlist.SiteEndpoints(s, so.Revision); !allowlist.SameEndpoints(e, allowlist.SiteEndpoints(s, s.Revision)) {
					cso.Endpoints = &e
				}
			}
			cs.Signoffs = append(cs.Signoffs, cso)
		}
		c.Sites = append(c.Sites, cs)
	}
	return c, nil
}
