package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// maxGroundDepartments bounds how many departments one common-ground
// question may name: each is a published list to read.
const maxGroundDepartments = 50

// GroundDepartments reads department ids from query values, each one id or
// several separated by commas (repeated parameters, as a form's checkboxes
// send them, and "a,b,c" both work), without blanks or repeats, in order.
func GroundDepartments(values []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, id := range strings.Split(v, ",") {
			id = strings.ToLower(strings.TrimSpace(id))
			if id != "" && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

func (s *Server) handleCommonGround(c echo.Context) error {
	g, err := s.CommonGround(c.Request().Context(), GroundDepartments(c.QueryParams()["departments"]), c.QueryParam("category"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}

// CommonGround answers "which tool can we all use?" for departments (ids)
// and a category ("" for every category): each site judged against each
// department's published list, as allowlist.CommonGround explains. It
// holds no contacts, whoever asks. EINVALID names unknown departments.
func (s *Server) CommonGround(ctx context.Context, departments []string, category string) (allowlist.Ground, error) {
	var fields []allowlist.FieldError
	switch {
	case len(departments) == 0:
		fields = append(fields, allowlist.FieldError{Field: "departments", Message: "name at least one department id, separated by commas"})
	case len(departments) > maxGroundDepartments:
		fields = append(fields, allowlist.FieldError{Field: "departments", Message: "name at most " + itoa(maxGroundDepartments) + " departments"})
	}
	if category != "" && !allowlist.ValidCategory(category) {
		fields = append(fields, allowlist.FieldError{Field: "category", Message: "must be one of " + strings.Join(allowlist.Categories, ", ")})
	}
	if len(fields) > 0 {
		return allowlist.Ground{}, allowlist.Invalid(fields...)
	}
	all, err := s.svc.Departments.FindDepartments(ctx)
	if err != nil {
		return allowlist.Ground{}, err
	}
	byID := make(map[string]allowlist.Department, len(all))
	for _, d := range all {
		byID[d.ID] = d
	}
	var unknown []string
	for _, id := range departments {
		if _, ok := byID[id]; !ok {
			unknown = append(unknown, id)
			fields = append(fields, allowlist.FieldError{Field: "departments", Message: "unknown department " + quote(id)})
		}
	}
	if len(unknown) > 0 {
		e := allowlist.Invalid(fields...)
		e.Message = "unknown department"
		if len(unknown) > 1 {
			e.Message += "s"
		}
		for i, id := range unknown {
			unknown[i] = quote(id)
		}
		e.Message += ": " + strings.Join(unknown, ", ")
		return allowlist.Ground{}, e
	}
	sites, err := s.ground.load(ctx, s.svc.Sites, s.svc.Audit)
	if err != nil {
		return allowlist.Ground{}, err
	}
	scopes, err := s.svc.Lists.FindScopes(ctx)
	if err != nil {
		return allowlist.Ground{}, err
	}
	hashes := make(map[string]string, len(scopes))
	for _, sc := range scopes {
		hashes[sc.Scope] = sc.SHA256
	}
	lists := make([]allowlist.GroundList, 0, len(departments))
	for _, id := range departments {
		scope := allowlist.GroundScope(id, hashes[id], hashes[allowlist.ScopeCommon])
		cm, err := s.hub.matcher(ctx, scope)
		if err != nil {
			return allowlist.Ground{}, err
		}
		lists = append(lists, allowlist.GroundList{Department: byID[id], Scope: scope, Version: cm.list.Version, Entries: cm.list.Entries})
	}
	return allowlist.CommonGround(sites, lists, category, s.cfg.Quorum), nil
}

// PublicURL is the address people reach the registry at, without a
// trailing slash, or "" when none is configured.
func (s *Server) PublicURL() string { return strings.TrimRight(s.cfg.PublicURL, "/") }

// groundSites keeps the registry's sites between questions. Reading them
// is most of an answer (10,000 sites take the store about half a second),
// and the question is anonymous; they are read again only when the audit
// log has grown since, for every change commits with its audit entry, in
// whichever registry process made it. One read at a time: callers that
// arrive during one wait for it.
type groundSites struct {
	mu     sync.Mutex
	loaded bool
	seq    int64 // the newest audit entry when sites were read
	sites  []allowlist.Site
}

func (g *groundSites) load(ctx context.Context, sites allowlist.SiteService, audit allowlist.AuditService) ([]allowlist.Site, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	seq, err := newestAudit(ctx, audit, g.seq)
	if err != nil {
		return nil, err
	}
	if g.loaded && seq == g.seq {
		return g.sites, nil
	}
	all, err := sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return nil, err
	}
	// Only what an answer reads: the domains and their history are most
	// of a site's memory, and the lists say which patterns count.
	for i, site := range all {
		all[i] = allowlist.Site{ID: site.ID, Name: site.Name, Category: site.Category, Homepage: site.Homepage,
			Status: site.Status, Reason: site.Reason, Signoffs: site.Signoffs}
	}
	g.loaded, g.seq, g.sites = true, seq, all
	return all, nil
}

// newestAudit returns the seq of the newest audit entry, given one that is
// not newer (from). Sequence numbers have no gaps (a gap is a broken
// chain), so FindAudit(x, 1) says whether x is older than the newest: an
// unchanged registry costs one indexed query, and a change of n entries
// about 2·log2(n).
func newestAudit(ctx context.Context, audit allowlist.AuditService, from int64) (int64, error) {
	older := func(x int64) (bool, error) {
		e, err := audit.FindAudit(ctx, x, 1)
		return len(e) > 0, err
	}
	lo, step := from, int64(1) // lo is never newer than the newest
	for {
		more, err := older(lo)
		if err != nil || !more {
			return lo, err
		}
		hi := lo + step
		if more, err = older(hi); err != nil {
			return 0, err
		}
		if !more { // the newest is in (lo, hi]
			for lo+1 < hi {
				mid := lo + (hi-lo)/2
				if more, err = older(mid); err != nil {
					return 0, err
				}
				if more {
					lo = mid
				} else {
					hi = mid
				}
			}
			return hi, nil
		}
		lo, step = hi, step*2
	}
}

// quote writes an id the caller sent, shortened, in double quotes.
func quote(id string) string {
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(id, "?"))
}
