package web

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// The filtering owner's pages: the queue (what awaits my department's
// decision, then every site behind filters), one site with its decision
// form, staff requests and the owners' directory.

// queueView is what owner.html shows.
type queueView struct {
	Awaiting []siteRow
	Sites    []siteRow
	Filter   siteFilter
	Pages    []pageLink
	Total    int
	Requests int
	Overdue  map[string]bool // sites whose decision is overdue (requests.go)
}

// siteRow is a site as the owner's pages show it: names, not slugs.
type siteRow struct {
	allowlist.Site
	CategoryTitle string
	ProposerName  string
	Approvers     []string
	Objectors     []string
	Mine          string // my department's decision on the current revision, or ""
	Pending       bool   // a change of domains, networks or handling waits for a quorum
	Needs         int    // approvals still needed for the common list
}

type siteFilter struct{ Category, Status, Proposer string }

type pageLink struct {
	Number  int
	Href    string
	Current bool
}

const sitesPerPage = 20

// owner returns the signed-in owner.
func (p *Pages) owner(c echo.Context) (allowlist.Actor, bool) {
	a := p.actor(c)
	return a, a.Role == allowlist.RoleOwner
}

// row describes a site for the owner of department.
func (p *Pages) row(ctx context.Context, s allowlist.Site, department string) siteRow {
	r := siteRow{Site: s, CategoryTitle: categoryTitles[s.Category], ProposerName: p.deptName(ctx, s.ProposedBy)}
	approvals := 0
	for _, so := range s.Signoffs {
		if so.Revision != s.Revision {
			continue
		}
		switch so.Decision {
		case allowlist.DecisionApprove:
			approvals++
			r.Approvers = append(r.Approvers, p.deptName(ctx, so.Department))
		case allowlist.DecisionObject:
			r.Objectors = append(r.Objectors, p.deptName(ctx, so.Department))
		}
		if so.Department == department {
			r.Mine = so.Decision
		}
	}
	r.Pending = (!sameStrings(s.Domains, s.Published) || !allowlist.SameEndpoints(allowlist.Endpoints{Networks: s.Networks, Handling: s.Handling}, s.PublishedEndpoints)) &&
		s.Status == allowlist.StatusApproved
	r.Needs = max(0, p.check.Quorum()-approvals)
	return r
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// awaiting says whether a site needs my department's decision: not yet on
// the common list (or its new domains not yet), not suspended or
// withdrawn, and not decided by my department on its current revision.
func awaiting(r siteRow) bool {
	if r.Mine != "" || r.Status == allowlist.StatusSuspended || r.Status == allowlist.StatusWithdrawn {
		return false
	}
	return r.Status == allowlist.StatusProposed || r.Pending
}

func (p *Pages) handleOwner(c echo.Context) error {
	a, _ := p.owner(c)
	ctx := c.Request().Context()
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return p.fail(c, err)
	}
	f := siteFilter{Category: c.QueryParam("category"), Status: c.QueryParam("status"), Proposer: c.QueryParam("proposer")}
	v := &queueView{Filter: f}
	var rest []siteRow
	for _, s := range sites {
		r := p.row(ctx, s, a.Department)
		if awaiting(r) {
			v.Awaiting = append(v.Awaiting, r)
			continue
		}
		if (f.Category == "" || s.Category == f.Category) && (f.Status == "" || s.Status == f.Status) && (f.Proposer == "" || s.ProposedBy == f.Proposer) {
			rest = append(rest, r)
		}
	}
	sort.SliceStable(v.Awaiting, func(i, j int) bool { return v.Awaiting[i].CreatedAt.Before(v.Awaiting[j].CreatedAt) })
	v.Overdue = p.overdueFirst(ctx, a.Department, v.Awaiting)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	v.Total = len(rest)
	at, _ := strconv.Atoi(c.QueryParam("page"))
	pages := max(1, (len(rest)+sitesPerPage-1)/sitesPerPage)
	at = min(max(at, 1), pages)
	v.Sites = rest[(at-1)*sitesPerPage : min(len(rest), at*sitesPerPage)]
	if pages > 1 {
		for n := 1; n <= pages; n++ {
			q := url.Values{"page": {strconv.Itoa(n)}}
			for k, val := range map[string]string{"category": f.Category, "status": f.Status, "proposer": f.Proposer} {
				if val != "" {
					q.Set(k, val)
				}
			}
			v.Pages = append(v.Pages, pageLink{Number: n, Href: "/owner?" + q.Encode() + "#all-sites", Current: n == at})
		}
	}
	reqs, err := p.svc.Requests.FindRequests(ctx, a.Department)
	if err != nil {
		return p.fail(c, err)
	}
	v.Requests = len(reqs)
	return p.render(c, http.StatusOK, "owner", &page{Title: "Sites waiting for your decision", DepartmentName: p.deptName(ctx, a.Department),
		Departments: p.departmentList(ctx), Categories: allowlist.Categories, Statuses: []string{allowlist.StatusProposed, allowlist.StatusApproved,
			allowlist.StatusSuspended, allowlist.StatusWithdrawn}, View: v})
}

// handleOwnerSite shows one site with the decision form.
func (p *Pages) handleOwnerSite(c echo.Context) error {
	a, _ := p.owner(c)
	ctx := c.Request().Context()
	s, err := p.svc.Sites.FindSite(ctx, c.Param("id"))
	if err != nil {
		return p.fail(c, err)
	}
	r := p.row(ctx, s, a.Department)
	return p.render(c, http.StatusOK, "decide", &page{Title: s.Name, DepartmentName: p.deptName(ctx, a.Department), View: &r})
}

func (p *Pages) handleDecide(c echo.Context) error {
	a, _ := p.owner(c)
	ctx := c.Request().Context()
	decision := c.FormValue("decision")
	site, err := p.svc.Signoffs.SetSignoff(ctx, a, c.FormValue("site"), a.Department, decision, c.FormValue("comment"))
	if err != nil {
		return p.fail(c, err)
	}
	p.setFlash(c, p.decisionMessage(ctx, p.row(ctx, site, a.Department), a.Department))
	return c.Redirect(http.StatusSeeOther, "/owner")
}

// decisionMessage says what a decision did to the lists, in plain words.
func (p *Pages) decisionMessage(ctx context.Context, r siteRow, department string) string {
	dept := p.deptName(ctx, department)
	switch {
	case r.Mine == allowlist.DecisionObject:
		return "You objected to " + r.Name + " for " + dept + ". It is not on " + dept + "'s list."
	case r.Status == allowlist.StatusApproved && !r.Pending:
		return "You approved " + r.Name + " for " + dept + ". It is on " + dept + "'s list and on the common list."
	case r.Needs == 1:
		return "You approved " + r.Name + " for " + dept + ". It is on " + dept + "'s list; one more organisation's approval puts it on the common list."
	default:
		return "You approved " + r.Name + " for " + dept + ". It is on " + dept + "'s list; " + strconv.Itoa(r.Needs) + " more organisations' approvals put it on the common list."
	}
}

func (p *Pages) handleOwnerRequests(c echo.Context) error {
	a, _ := p.owner(c)
	ctx := c.Request().Context()
	reqs, err := p.svc.Requests.FindRequests(ctx, a.Department)
	if err != nil {
		return p.fail(c, err)
	}
	return p.render(c, http.StatusOK, "requests", &page{Title: "Requests from staff", DepartmentName: p.deptName(ctx, a.Department), Requests: reqs})
}

// directoryView is the owners' directory, by organisation.
type directoryView struct {
	Groups []directoryGroup
}

type directoryGroup struct {
	Department string
	Contacts   []allowlist.Contact
}

func (p *Pages) handleDirectory(c echo.Context) error {
	ctx := c.Request().Context()
	v := &directoryView{}
	for _, d := range p.departmentList(ctx) {
		cs, err := p.svc.Departments.FindContacts(ctx, d.ID)
		if err != nil {
			return p.fail(c, err)
		}
		v.Groups = append(v.Groups, directoryGroup{Department: d.Name, Contacts: cs})
	}
	return p.render(c, http.StatusOK, "directory", &page{Title: "Filtering owners' directory", View: v})
}

// deptName is a department's name, or its id when unknown ("" stays "").
func (p *Pages) deptName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if id == allowlist.ScopeCommon {
		return "Common list"
	}
	if d, err := p.svc.Departments.FindDepartment(ctx, id); err == nil {
		return d.Name
	}
	return id
}

// decisionForm is what the decision-form template needs.
type decisionForm struct {
	CSRF string
	Row  siteRow
}

func (p *Pages) setFlash(c echo.Context, msg string) {
	if id := sessionID(c); id != "" {
		p.sessions.setFlash(id, msg)
	}
}
