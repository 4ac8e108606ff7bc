package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

// grounder answers the meeting's question; *api.Server is one.
type grounder interface {
	CommonGround(ctx context.Context, departments []string, category string) (allowlist.Ground, error)
	// PublicURL is where people reach the pages ("" if not configured):
	// the base of the link to send, rather than whatever Host the asker
	// sent (the link is quoted in requests that owners read).
	PublicURL() string
}

// groundView is what the "Find a tool you can all use" page shows: the
// form, and the answer per category with a tag per organisation.
type groundView struct {
	Selected   map[string]bool
	Category   string
	Categories []option
	// Answer only: the address that asks the same question again, the
	// lists read, and the tools by category.
	Link    string
	Columns []groundColumn
	Groups  []groundCategory
}

type option struct{ Value, Text string }

type groundColumn struct {
	allowlist.GroundColumn
	Common bool // read from common: the department's list is common's
}

type groundCategory struct {
	Title                string
	ForAll, OneAway, Far int
	Tools                []groundTool
}

type groundTool struct {
	allowlist.GroundSite
	Tag, Colour string // where it stands for the group as a whole
	Cells       []groundCell
	// One decision away: whom to ask, and what the request says.
	AskID, AskName, Reason string
}

type groundCell struct {
	Name, Tag, Colour, Detail string
}

// reasonTags are the tags for why an organisation's list lacks a tool.
var reasonTags = map[string][2]string{
	allowlist.ReasonAwaiting:     {"Not decided yet", "govuk-tag--yellow"},
	allowlist.ReasonObjected:     {"Objected", "govuk-tag--red"},
	allowlist.ReasonSuspended:    {"Suspended", "govuk-tag--red"},
	allowlist.ReasonNotProposed:  {"Not proposed", "govuk-tag--grey"},
	allowlist.ReasonNotPublished: {"Approved, not yet published", "govuk-tag--blue"},
}

// groundPath is the stable address of a question: its departments in the
// order asked, and the category if any.
func groundPath(ids []string, category string) string {
	escaped := make([]string, len(ids))
	for i, id := range ids {
		escaped[i] = url.QueryEscape(id)
	}
	path := "/common-ground?departments=" + strings.Join(escaped, ",")
	if category != "" {
		path += "&category=" + url.QueryEscape(category)
	}
	return path
}

// handleCommonGround shows the form, and with departments chosen, the
// answer. A form's repeated checkboxes are redirected to the one stable
// address an organiser can send to the participants.
func (p *Pages) handleCommonGround(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	ids := api.GroundDepartments(q["departments"])
	category := strings.TrimSpace(q.Get("category"))
	v := &groundView{Selected: map[string]bool{}, Category: category, Categories: []option{{"", "Any category"}}}
	for _, id := range ids {
		v.Selected[id] = true
	}
	for _, cat := range allowlist.Categories {
		v.Categories = append(v.Categories, option{cat, categoryTitles[cat]})
	}
	pg := &page{Title: "Find a tool you can all use", Departments: p.departmentList(c), View: v}
	// By name, as people look for them (the checkboxes' order is also the
	// order of the columns).
	slices.SortFunc(pg.Departments, func(a, b allowlist.Department) int { return strings.Compare(a.Name, b.Name) })
	_, asked := q["departments"]
	if _, ok := q["category"]; !asked && !ok {
		return p.render(c, http.StatusOK, "commonground", pg)
	}
	if len(ids) == 0 {
		pg.Errors = []allowlist.FieldError{{Field: "departments", Message: "Select the organisations that need to work together"}}
		return p.render(c, statusOf(allowlist.EINVALID), "commonground", pg)
	}
	if path := groundPath(ids, category); c.Request().URL.RequestURI() != path {
		return c.Redirect(http.StatusSeeOther, path)
	}
	gr, ok := p.check.(grounder)
	if !ok {
		return p.fail(c, allowlist.Errorf(allowlist.ENOTIMPLEMENTED, "this registry cannot answer common-ground questions"))
	}
	g, err := gr.CommonGround(ctx, ids, category)
	if err != nil {
		var ae *allowlist.Error
		if !errors.As(err, &ae) || ae.Code != allowlist.EINVALID {
			return p.fail(c, err)
		}
		for _, f := range ae.Fields {
			msg := "Select a category from the list"
			if f.Field == "departments" {
				msg = "Select organisations from the list: " + f.Message
			}
			pg.Errors = append(pg.Errors, allowlist.FieldError{Field: f.Field, Message: msg})
		}
		return p.render(c, statusOf(allowlist.EINVALID), "commonground", pg)
	}
	base := gr.PublicURL()
	if base == "" {
		base = c.Scheme() + "://" + c.Request().Host
	}
	v.Link = base + groundPath(ids, category)
	fillGround(v, g)
	pg.Title = "Tools " + joinNames(v.Columns) + " can all use"
	return p.render(c, http.StatusOK, "commonground", pg)
}

// fillGround lays an answer out by category, each tool in its group's
// order: allowed for all, one decision away, the rest.
func fillGround(v *groundView, g allowlist.Ground) {
	names := map[string]string{}
	for _, d := range g.Departments {
		names[d.ID] = d.Name
		v.Columns = append(v.Columns, groundColumn{d, d.Scope == allowlist.ScopeCommon})
	}
	all := joinNames(v.Columns)
	for _, cat := range allowlist.Categories {
		gc := groundCategory{Title: categoryTitles[cat]}
		add := func(sites []allowlist.GroundSite, tag, colour string, count *int) {
			for _, s := range sites {
				if s.Category != cat {
					continue
				}
				*count++
				t := groundTool{GroundSite: s, Tag: tag, Colour: colour}
				if t.Tag == "" {
					t.Tag = "Allowed by " + strconv.Itoa(s.AllowedBy) + " of " + strconv.Itoa(len(s.Departments))
				}
				var allowedBy []string
				for _, cell := range s.Departments {
					gcell := groundCell{Name: names[cell.Department], Tag: "Allowed", Colour: "govuk-tag--green"}
					if cell.Allowed {
						allowedBy = append(allowedBy, names[cell.Department])
					} else {
						gcell.Tag, gcell.Colour = reasonTags[cell.Reason][0], reasonTags[cell.Reason][1]
						gcell.Detail = cell.Comment
						if cell.At != nil {
							gcell.Detail = strings.TrimSpace("On " + cell.At.Format("2 January 2006") + ": " + cell.Comment)
						}
					}
					t.Cells = append(t.Cells, gcell)
				}
				if s.WaitingFor != "" {
					t.AskID, t.AskName = s.WaitingFor, names[s.WaitingFor]
					t.Reason = "We need a tool that " + all + " can all use. " + s.Name + " is allowed by " + joinList(allowedBy) +
						"; " + t.AskName + " has not decided on it yet. See " + v.Link
				}
				gc.Tools = append(gc.Tools, t)
			}
		}
		add(g.AllowedForAll, "You can all use it", "govuk-tag--green", &gc.ForAll)
		add(g.OneDecisionAway, "One decision away", "govuk-tag--yellow", &gc.OneAway)
		add(g.Others, "", "govuk-tag--grey", &gc.Far)
		if len(gc.Tools) > 0 {
			v.Groups = append(v.Groups, gc)
		}
	}
}

func joinNames(cols []groundColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return joinList(names)
}

// joinList writes "a", "a and b", "a, b and c".
func joinList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
