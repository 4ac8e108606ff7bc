package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

// The "check your request" pages for staff; the owners' page of what
// waits for them (overdue first), where requests are answered and
// approvals renewed; the backlog on the dashboard.

func requestColour(status string) string {
	switch status {
	case allowlist.RequestAllowed:
		return "govuk-tag--green"
	case allowlist.RequestDeclined:
		return "govuk-tag--red"
	case allowlist.RequestInReview:
		return "govuk-tag--blue"
	}
	return "govuk-tag--grey"
}

func (p *Pages) governance() (allowlist.Governance, error) {
	g, ok := p.reg.(allowlist.Governance)
	if !ok {
		return nil, allowlist.Errorf(allowlist.ENOTIMPLEMENTED, "this registry does not track requests")
	}
	return g, nil
}

// now is the registry's clock, which drills may move.
func (p *Pages) now() time.Time {
	if clock, ok := p.check.(interface{ Now() time.Time }); ok {
		return clock.Now()
	}
	return time.Now()
}

// handleRequestLookup asks for a reference, and sends a given one to its
// status page.
func (p *Pages) handleRequestLookup(c echo.Context) error {
	ref := strings.TrimSpace(c.QueryParam("reference"))
	if ref != "" {
		return c.Redirect(http.StatusSeeOther, "/requests/"+url.PathEscape(ref))
	}
	pg := &page{Title: "Check your request"}
	if _, ok := c.QueryParams()["reference"]; ok {
		pg.Errors = []allowlist.FieldError{{Field: "reference", Message: "Enter the reference you were given"}}
		return p.render(c, statusOf(allowlist.EINVALID), "request-lookup", pg)
	}
	return p.render(c, http.StatusOK, "request-lookup", pg)
}

func (p *Pages) handleRequestStatus(c echo.Context) error {
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	ref := c.Param("reference")
	r, err := g.FindRequestByReference(c.Request().Context(), ref)
	if allowlist.ErrorCode(err) == allowlist.ENOTFOUND {
		pg := &page{Title: "Check your request", Reference: ref,
			Errors: []allowlist.FieldError{{Field: "reference", Message: "We could not find a request with that reference. Check you copied all of it"}}}
		return p.render(c, statusOf(allowlist.ENOTFOUND), "request-lookup", pg)
	}
	if err != nil {
		return p.fail(c, err)
	}
	v := api.PublicRequest(r)
	pg := &page{Title: "Your request for " + r.Tool, View: &v}
	if r.Site != "" { // the linked site by its name
		if s, err := p.svc.Sites.FindSite(c.Request().Context(), r.Site); err == nil {
			pg.Site = &s
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer") // the reference is in the address
	return p.render(c, http.StatusOK, "request-status", pg)
}

// waitingView is what waits for an owner's organisation: its queue,
// overdue first, approvals to renew, the demand for each tool, and its
// requests to answer.
type waitingView struct {
	Waiting       []allowlist.QueueItem
	Renewals      []renewal
	RequestGroups []allowlist.RequestGroup
	Requests      []allowlist.Request
	Typed         map[int64]allowlist.RequestAnswer // what an owner typed into a form the registry refused
	SiteNames     map[string]string                 // the catalogue's sites' names by id, for links and the link field's suggestions
	Names         []string                          // those names, sorted
}

// renewal is one of a department's approvals that will expire.
type renewal struct {
	Site, Name     string
	Since, Expires time.Time
	Soon           bool
}

func (p *Pages) handleOwnerWaiting(c echo.Context) error {
	return p.showWaiting(c, http.StatusOK, nil, nil)
}

// showWaiting renders "Waiting for you" with status; after a refused
// answer, errs are its mistakes and typed what the owner had written, so
// that the form comes back as it was with the mistakes beside it.
func (p *Pages) showWaiting(c echo.Context, status int, errs []allowlist.FieldError, typed map[int64]allowlist.RequestAnswer) error {
	a := p.actor(c)
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	ctx := c.Request().Context()
	v := &waitingView{Typed: typed, SiteNames: map[string]string{}}
	if v.Waiting, err = g.Queue(ctx, a.Department, p.now()); err != nil {
		return p.fail(c, err)
	}
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return p.fail(c, err)
	}
	for _, s := range sites {
		v.SiteNames[s.ID] = s.Name
		v.Names = append(v.Names, s.Name)
	}
	sort.Strings(v.Names)
	if policy, on := p.expiryPolicy(); on {
		if v.Renewals, err = p.renewals(ctx, g, policy, a.Department); err != nil {
			return p.fail(c, err)
		}
		for i, r := range v.Renewals {
			v.Renewals[i].Name = cmp.Or(v.SiteNames[r.Site], r.Site)
		}
	}
	if v.RequestGroups, err = g.FindRequestGroups(ctx, a.Department); err != nil {
		return p.fail(c, err)
	}
	if v.Requests, err = p.svc.Requests.FindRequests(ctx, a.Department); err != nil {
		return p.fail(c, err)
	}
	return p.render(c, status, "waiting", &page{Title: "Waiting for you", DepartmentName: p.deptName(c, a.Department), View: v, Errors: errs})
}

// expiryPolicy returns the governance policy, and whether approvals
// expire under it.
func (p *Pages) expiryPolicy() (allowlist.Policy, bool) {
	pol, ok := p.reg.(interface{ Policy() allowlist.Policy })
	if !ok {
		return allowlist.Policy{}, false
	}
	return pol.Policy(), pol.Policy().ApprovalMaxAge > 0
}

// renewals lists a department's approvals with their expiry under
// policy, soonest first.
func (p *Pages) renewals(ctx context.Context, g allowlist.Governance, policy allowlist.Policy, dept string) ([]renewal, error) {
	clocks, err := g.FindDepartmentApprovals(ctx, dept)
	if err != nil {
		return nil, err
	}
	now := p.now()
	var out []renewal
	for site, c := range clocks {
		warn, expires, _ := allowlist.ApprovalTimes(c, policy)
		if expires.IsZero() {
			expires = c.Since.Add(policy.ApprovalMaxAge)
		}
		out = append(out, renewal{Site: site, Since: c.Since, Expires: expires, Soon: !now.Before(warn)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out, nil
}

func (p *Pages) handleOwnerAnswer(c echo.Context) error {
	a := p.actor(c)
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	id, err := strconv.ParseInt(c.FormValue("id"), 10, 64)
	if err != nil {
		return p.fail(c, allowlist.Errorf(allowlist.ENOTFOUND, "no such request"))
	}
	in := allowlist.RequestAnswer{Status: c.FormValue("status"), Answer: strings.TrimSpace(c.FormValue("answer")),
		Site: strings.TrimSpace(c.FormValue("site")), Group: c.FormValue("group") == "true"}
	// The owner may type a site's name or its identifier; the registry
	// takes the identifier. The form keeps what was typed.
	answer := in
	if in.Site != "" {
		site, msg, err := p.siteNamed(c.Request().Context(), in.Site)
		if err != nil {
			return p.fail(c, err)
		}
		if msg != "" {
			return p.showWaiting(c, statusOf(allowlist.EINVALID), []allowlist.FieldError{{Field: fmt.Sprintf("site-%d", id), Message: msg}},
				map[int64]allowlist.RequestAnswer{id: in})
		}
		answer.Site = site
	}
	r, err := g.AnswerRequest(c.Request().Context(), a, id, answer)
	if e, ok := err.(*allowlist.Error); ok && e.Code == allowlist.EINVALID && len(e.Fields) > 0 {
		return p.showWaiting(c, statusOf(e.Code), answerErrors(id, e.Fields), map[int64]allowlist.RequestAnswer{id: in})
	}
	if err != nil {
		return p.fail(c, err)
	}
	p.setFlash(c, "Request "+strconv.FormatInt(r.ID, 10)+" for "+r.Tool+" is now "+requestStatusText(r.Status)+".")
	return c.Redirect(http.StatusSeeOther, "/owner/waiting")
}

// requestStatusText is a request's status in words ("in review", not
// the API's "in-review").
func requestStatusText(status string) string { return strings.ReplaceAll(status, "-", " ") }

// siteNamed finds the catalogue site an owner typed, by identifier or by
// name (in any case, spaces around ignored), and returns its identifier;
// or, when no site or more than one has that name, a message saying what
// to type instead.
func (p *Pages) siteNamed(ctx context.Context, typed string) (id, msg string, err error) {
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return "", "", err
	}
	var named []allowlist.Site
	for _, s := range sites {
		if s.ID == typed {
			return s.ID, "", nil
		}
		if strings.EqualFold(strings.TrimSpace(s.Name), typed) {
			named = append(named, s)
		}
	}
	switch len(named) {
	case 1:
		return named[0].ID, "", nil
	case 0:
		return "", "There is no site called \u201c" + typed + "\u201d in the catalogue. Enter a site's name or identifier as the catalogue shows it, or propose the site first", nil
	}
	ids := make([]string, len(named))
	for i, s := range named {
		ids[i] = s.ID
	}
	return "", "More than one site is called \u201c" + typed + "\u201d. Enter the identifier of the one you mean: " + strings.Join(ids, ", "), nil
}

// answerErrors names a refused answer's mistakes after the fields of
// request id's form (answer-ID, site-ID), in sentences.
func answerErrors(id int64, fields []allowlist.FieldError) []allowlist.FieldError {
	out := make([]allowlist.FieldError, 0, len(fields))
	for _, f := range fields {
		field := "answer"
		if f.Field == "site" {
			field = "site"
		}
		msg := f.Message
		switch {
		case f.Field == "site" && msg == "no such site":
			msg = "There is no site with that identifier in the catalogue; propose it first, or check the identifier"
		case msg != "":
			msg = capital(msg)
		}
		out = append(out, allowlist.FieldError{Field: fmt.Sprintf("%s-%d", field, id), Message: msg})
	}
	return out
}

func (p *Pages) handleRenew(c echo.Context) error {
	a := p.actor(c)
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	site, err := g.RenewSignoff(c.Request().Context(), a, c.FormValue("site"), a.Department)
	if err != nil {
		return p.fail(c, err)
	}
	p.setFlash(c, "You renewed your approval of "+site.Name+".")
	return c.Redirect(http.StatusSeeOther, "/owner/waiting")
}

// backlogView is what waits for each organisation, for the dashboard.
type backlogView struct{ Rows []backlog }

type backlog struct {
	Name             string
	Waiting, Overdue int
}

// backlog counts, per organisation with anything waiting, what waits for
// its decision and what of it is overdue, the most overdue first.
func (p *Pages) backlog(c echo.Context) *backlogView {
	qs, ok := p.reg.(interface {
		QueueStats(ctx context.Context, now time.Time) (waiting, overdue map[string]int, err error)
	})
	if !ok {
		return nil
	}
	waiting, overdue, err := qs.QueueStats(c.Request().Context(), p.now())
	if err != nil {
		p.log.Warn("backlog", "err", err)
		return nil
	}
	v := &backlogView{}
	for d, n := range waiting {
		if n > 0 {
			v.Rows = append(v.Rows, backlog{Name: p.deptName(c, d), Waiting: n, Overdue: overdue[d]})
		}
	}
	sort.Slice(v.Rows, func(i, j int) bool {
		if v.Rows[i].Overdue != v.Rows[j].Overdue {
			return v.Rows[i].Overdue > v.Rows[j].Overdue
		}
		return v.Rows[i].Name < v.Rows[j].Name
	})
	return v
}
