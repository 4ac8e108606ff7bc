package web

import (
	"net/http"
	"net/url"
	"slices"
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
	Awaiting      []siteRow  // this page of them
	AwaitingTotal int        // all of them that the filters let through
	AwaitingAll   int        // all of them, filtered or not
	AwaitingPages []pageLink // the pages of them, when more than one
	AwaitingFrom  int        // the numbers of this page's first
	AwaitingTo    int        // and last
	Sites         []siteRow
	Filter        siteFilter
	Pages         []pageLink
	Total         int
	Filtered      bool // a filter is set: both parts show only what it lets through
	Requests      int
	Overdue       map[string]bool // sites whose decision is overdue (requests.go)
	Usage         *ownerUsageView // what staff tried to reach (usage.go)
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

// awaitingPerPage is how many sites awaiting a decision the queue shows
// at once, each with its decision form, so that a busy week's proposals
// do not make one page tens of thousands of pixels long.
const awaitingPerPage = 10

// row describes a site for the owner of department, with the names the
// request read once.
func (p *Pages) row(c echo.Context, s allowlist.Site, department string) siteRow {
	names := p.names(c)
	r := siteRow{Site: s, CategoryTitle: categoryTitles[s.Category], ProposerName: nameIn(names, s.ProposedBy)}
	approvals := 0
	for _, so := range s.Signoffs {
		if so.Revision != s.Revision {
			continue
		}
		switch so.Decision {
		case allowlist.DecisionApprove:
			approvals++
			r.Approvers = append(r.Approvers, nameIn(names, so.Department))
		case allowlist.DecisionObject:
			r.Objectors = append(r.Objectors, nameIn(names, so.Department))
		}
		if so.Department == department {
			r.Mine = so.Decision
		}
	}
	r.Pending = (!slices.Equal(s.Domains, s.Published) || !allowlist.SameEndpoints(allowlist.Endpoints{Networks: s.Networks, Handling: s.Handling}, s.PublishedEndpoints)) &&
		s.Status == allowlist.StatusApproved
	r.Needs = max(0, p.check.Quorum()-approvals)
	return r
}

func (f siteFilter) matches(s allowlist.Site) bool {
	return (f.Category == "" || s.Category == f.Category) && (f.Status == "" || s.Status == f.Status) && (f.Proposer == "" || s.ProposedBy == f.Proposer)
}

// handleOwner shows the owner's queue, as the domain defines it
// (Governance.Queue, as GET /v1/departments/{id}/queue answers: overdue
// first, then the longest waiting), then every other site, filtered and
// in pages.
func (p *Pages) handleOwner(c echo.Context) error {
	a := p.actor(c)
	ctx := c.Request().Context()
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	queue, err := g.Queue(ctx, a.Department, p.now())
	if err != nil {
		return p.fail(c, err)
	}
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return p.fail(c, err)
	}
	f := siteFilter{Category: c.QueryParam("category"), Status: c.QueryParam("status"), Proposer: c.QueryParam("proposer")}
	v := &queueView{Filter: f, Overdue: map[string]bool{}}
	byID := map[string]allowlist.Site{}
	for _, s := range sites {
		byID[s.ID] = s
	}
	// The filters apply to both parts alike: what awaits a decision keeps
	// the queue's order (overdue first), filtered as the rest is.
	v.Filtered = f != siteFilter{}
	queued := map[string]bool{}
	var awaiting []siteRow
	for _, it := range queue {
		if s, ok := byID[it.ID]; ok && it.Kind == allowlist.QueueSite {
			queued[it.ID] = true
			v.AwaitingAll++
			if f.matches(s) {
				awaiting = append(awaiting, p.row(c, s, a.Department))
				v.Overdue[it.ID] = it.Overdue
			}
		}
	}
	// Both parts keep the other's page and the filter in their links.
	here := url.Values{}
	for _, k := range []string{"category", "status", "proposer", "page", "waiting"} {
		if val := c.QueryParam(k); val != "" {
			here.Set(k, val)
		}
	}
	waitingAt, _ := strconv.Atoi(c.QueryParam("waiting"))
	v.AwaitingTotal = len(awaiting)
	v.Awaiting, v.AwaitingPages, v.AwaitingFrom = pageOf(awaiting, waitingAt, awaitingPerPage, here, "waiting", "awaiting")
	v.AwaitingTo = v.AwaitingFrom + len(v.Awaiting) - 1
	var rest []siteRow
	for _, s := range sites {
		if !queued[s.ID] && f.matches(s) {
			rest = append(rest, p.row(c, s, a.Department))
		}
	}
	v.Usage = p.ownerUsage(c, a.Department)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	v.Total = len(rest)
	at, _ := strconv.Atoi(c.QueryParam("page"))
	v.Sites, v.Pages, _ = pageOf(rest, at, sitesPerPage, here, "page", "all-sites")
	reqs, err := p.svc.Requests.FindRequests(ctx, a.Department)
	if err != nil {
		return p.fail(c, err)
	}
	v.Requests = len(reqs)
	return p.render(c, http.StatusOK, "owner", &page{Title: "Sites waiting for your decision", DepartmentName: p.deptName(c, a.Department),
		Departments: p.departmentList(c), Categories: allowlist.Categories, Statuses: []string{allowlist.StatusProposed, allowlist.StatusApproved,
			allowlist.StatusSuspended, allowlist.StatusWithdrawn}, View: v})
}

// pageOf returns page at (from 1, clamped) of rows, per to a page, the
// links to every page when there is more than one (the owner's page with
// the query q, param set to the page's number, at #anchor), and the
// number of the page's first row (from 1).
func pageOf(rows []siteRow, at, per int, q url.Values, param, anchor string) ([]siteRow, []pageLink, int) {
	pages := max(1, (len(rows)+per-1)/per)
	at = min(max(at, 1), pages)
	var links []pageLink
	if pages > 1 {
		for n := 1; n <= pages; n++ {
			l := url.Values{}
			for k, v := range q {
				l[k] = v
			}
			l.Set(param, strconv.Itoa(n))
			links = append(links, pageLink{Number: n, Href: "/owner?" + l.Encode() + "#" + anchor, Current: n == at})
		}
	}
	return rows[(at-1)*per : min(len(rows), at*per)], links, (at-1)*per + 1
}

// handleOwnerSite shows one site with the decision form.
func (p *Pages) handleOwnerSite(c echo.Context) error {
	a := p.actor(c)
	s, err := p.svc.Sites.FindSite(c.Request().Context(), c.Param("id"))
	if err != nil {
		return p.fail(c, err)
	}
	r := p.row(c, s, a.Department)
	return p.render(c, http.StatusOK, "decide", &page{Title: s.Name, DepartmentName: p.deptName(c, a.Department), View: &r,
		Usage: p.entryUsage(c.Request().Context(), s)})
}

func (p *Pages) handleDecide(c echo.Context) error {
	a := p.actor(c)
	site, err := p.svc.Signoffs.SetSignoff(c.Request().Context(), a, c.FormValue("site"), a.Department, c.FormValue("decision"), c.FormValue("comment"))
	if err != nil {
		return p.fail(c, err)
	}
	p.setFlash(c, p.decisionMessage(c, p.row(c, site, a.Department), a.Department))
	return c.Redirect(http.StatusSeeOther, "/owner")
}

// decisionMessage says what a decision did to the lists, in plain words.
func (p *Pages) decisionMessage(c echo.Context, r siteRow, department string) string {
	dept := p.deptName(c, department)
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
	a := p.actor(c)
	ctx := c.Request().Context()
	reqs, err := p.svc.Requests.FindRequests(ctx, a.Department)
	if err != nil {
		return p.fail(c, err)
	}
	return p.render(c, http.StatusOK, "requests", &page{Title: "Requests from staff", DepartmentName: p.deptName(c, a.Department), Requests: reqs})
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
	for _, d := range p.departmentList(c) {
		cs, err := p.svc.Departments.FindContacts(ctx, d.ID)
		if err != nil {
			return p.fail(c, err)
		}
		v.Groups = append(v.Groups, directoryGroup{Department: d.Name, Contacts: cs})
	}
	return p.render(c, http.StatusOK, "directory", &page{Title: "Filtering owners' directory", View: v})
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
