package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

func (s *Server) handleDepartmentCreate(c echo.Context) error {
	var in struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Kind string `json:"kind"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	d, err := s.svc.Departments.CreateDepartment(c.Request().Context(), actorOf(c), allowlist.Department{ID: in.ID, Name: in.Name, Kind: in.Kind})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/departments/"+d.ID)
	return c.JSON(http.StatusCreated, d)
}

func (s *Server) handleDepartmentList(c echo.Context) error {
	ds, err := s.svc.Departments.FindDepartments(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ds)
}

func (s *Server) handleDepartmentGet(c echo.Context) error {
	d, err := s.svc.Departments.FindDepartment(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) handleContactCreate(c echo.Context) error {
	var in struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	ct, err := s.svc.Departments.CreateContact(c.Request().Context(), actorOf(c), allowlist.Contact{Department: c.Param("id"), Name: in.Name, Email: in.Email, Role: in.Role})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ct)
}

func (s *Server) handleContactList(c echo.Context) error {
	cs, err := s.svc.Departments.FindContacts(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cs)
}

func (s *Server) handleTokenCreate(c echo.Context) error {
	var in struct {
		Role       string     `json:"role"`
		Department string     `json:"department"`
		Name       string     `json:"name"`
		ExpiresAt  *time.Time `json:"expires_at"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(time.Now()) {
		return invalid("expires_at", "must be in the future")
	}
	t, secret, err := s.svc.Tokens.CreateToken(c.Request().Context(), actorOf(c), allowlist.Token{Role: in.Role, Department: in.Department, Name: in.Name, ExpiresAt: in.ExpiresAt})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, struct {
		allowlist.Token
		Secret string `json:"token"`
	}{t, secret})
}

func (s *Server) handleTokenList(c echo.Context) error {
	ts, err := s.svc.Tokens.FindTokens(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ts)
}

func (s *Server) handleTokenRevoke(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return allowlist.Errorf(allowlist.ENOTFOUND, "token %q not found", c.Param("id"))
	}
	if err := s.svc.Tokens.RevokeToken(c.Request().Context(), actorOf(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleRequestCreate(c echo.Context) error {
	var in struct {
		Tool       string `json:"tool"`
		URL        string `json:"url"`
		Reason     string `json:"reason"`
		Department string `json:"department"`
		Email      string `json:"email"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Requests.CreateRequest(c.Request().Context(), actorOf(c), allowlist.Request{Tool: in.Tool, URL: in.URL, Reason: in.Reason, Department: in.Department, Email: in.Email})
	if err != nil {
		return err
	}
	s.metrics.requestsIn.Inc()
	return c.JSON(http.StatusCreated, RequestCreated{ID: r.ID, Reference: r.Reference, Status: r.Status, StatusURL: s.PublicURL() + "/requests/" + r.Reference})
}

// handleRequestList shows an owner their own department's requests, and
// an admin every request (or one department's with ?department=).
func (s *Server) handleRequestList(c echo.Context) error {
	a := actorOf(c)
	dept := c.QueryParam("department")
	if a.Role == allowlist.RoleOwner {
		if dept != "" && dept != a.Department {
			return errForbidden
		}
		dept = a.Department
	}
	rs, err := s.svc.Requests.FindRequests(c.Request().Context(), dept)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rs)
}

func (s *Server) handleAudit(c echo.Context) error {
	after := int64(0)
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return allowlist.Errorf(allowlist.EMALFORMED, "after must be a non-negative integer")
		}
		after = n
	}
	limit, err := pageLimit(c, allowlist.MaxPage)
	if err != nil {
		return err
	}
	es, err := s.svc.Audit.FindAudit(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, es)
}
