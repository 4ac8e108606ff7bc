package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

// The "check your request" pages for staff, and the owners' page where
// requests are answered and overdue decisions come first.

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
		return nil, allowlist.Errorf(allowlist.ENOTFOUND, "this registry does not track requests")
	}
	return g, nil
}

// handleRequestLookup asks for a reference, and sends a given one to its
// status page.
func (p *Pages) handleRequestLookup(c echo.Context) error {
	ref := strings.TrimSpace(c.QueryParam("reference"))
	if ref != "" {
		return c.Redirect(http.StatusSeeOther, "/requests/"+ref)
	}
	pg := &page{Title: "Check your request"}
	if _, ok := c.QueryParams()["reference"]; ok {
		pg.Errors = []allowlist.FieldError{{Field: "reference", Message: "Enter the reference you were given"}}
		return p.render(c, http.StatusUnprocessableEntity, "request-lookup", pg)
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
		return p.render(c, http.StatusNotFound, "request-lookup", pg)
	}
	if err != nil {
		return p.fail(c, err)
	}
	v := api.PublicRequest(r)
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer") // the reference is in the address
	return p.render(c, http.StatusOK, "request-status", &page{Title: "Your request for " + r.Tool, View: &v})
}

// waitingView is what waits for an owner's organisation: its queue,
// overdue first, the demand for each tool, and its requests to answer.
type waitingView struct {
	Waiting       []allowlist.QueueItem
	RequestGroups []allowlist.RequestGroup
	Requests      []allowlist.Request
}

func (p *Pages) handleOwnerWaiting(c echo.Context) error {
	a, _ := p.owner(c)
	g, err := p.governance()
	if err != nil {
		return p.fail(c, err)
	}
	ctx := c.Request().Context()
	v := &waitingView{}
	now := time.Now()
	if clock, ok := p.check.(interface{ Now() time.Time }); ok {
		now = clock.Now() // the registry's clock, which drills may move
	}
	if v.Waiting, err = g.Queue(ctx, a.Department, now); err != nil {
		return p.fail(c, err)
	}
	if v.RequestGroups, err = g.FindRequestGroups(ctx, a.Department); err != nil {
		return p.fail(c, err)
	}
	if v.Requests, err = p.reg.FindRequests(ctx, a.Department); err != nil {
		return p.fail(c, err)
	}
	return p.render(c, http.StatusOK, "waiting", &page{Title: "Waiting for you", DepartmentName: p.scopeName(a.Department), View: v})
}

func (p *Pages) handleOwnerAnswer(c echo.Context) error {
	a, _ := p.owner(c)
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
	r, err := g.AnswerRequest(c.Request().Context(), a, id, in)
	if err != nil {
		return p.fail(c, err)
	}
	p.setFlash(c, "Request "+strconv.FormatInt(r.ID, 10)+" for "+r.Tool+" is now "+r.Status+".")
	return c.Redirect(http.StatusSeeOther, "/owner/waiting")
}
