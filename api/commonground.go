package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

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
	all, err := s.reg.FindDepartments(ctx)
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
	sites, err := s.reg.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return allowlist.Ground{}, err
	}
	lists := make([]allowlist.GroundList, 0, len(departments))
	for _, id := range departments {
		scope := allowlist.GroundScope(id, sites)
		cm, err := s.hub.matcher(ctx, scope)
		if err != nil {
			return allowlist.Ground{}, err
		}
		lists = append(lists, allowlist.GroundList{Department: byID[id], Scope: scope, Version: cm.list.Version, Entries: cm.list.Entries})
	}
	return allowlist.CommonGround(sites, lists, category, s.cfg.Quorum), nil
}

// quote writes an id the caller sent, shortened, in double quotes.
func quote(id string) string {
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(id, "?"))
}
