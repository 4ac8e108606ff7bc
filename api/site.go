package api

import (
	"net/http"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// canSeeContacts reports whether the caller may see contacts: owners and
// admins only.
func canSeeContacts(a allowlist.Actor) bool {
	return a.Role == allowlist.RoleAdmin || a.Role == allowlist.RoleOwner
}

// view removes what the caller may not see: the site owner's email and
// the names of the people who decided.
func view(a allowlist.Actor, s allowlist.Site) allowlist.Site {
	if canSeeContacts(a) {
		return s
	}
	s.Owner.Email = ""
	signoffs := make([]allowlist.Signoff, len(s.Signoffs))
	for i, so := range s.Signoffs {
		so.By = ""
		signoffs[i] = so
	}
	s.Signoffs = signoffs
	return s
}

func (s *Server) handleSiteCreate(c echo.Context) error {
	var in allowlist.SiteInput
	if err := decode(c, &in); err != nil {
		return err
	}
	site, err := s.svc.Sites.CreateSite(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	s.metrics.proposals.Inc()
	c.Response().Header().Set("Location", "/v1/sites/"+site.ID)
	return c.JSON(http.StatusCreated, view(actorOf(c), site))
}

func (s *Server) handleSiteList(c echo.Context) error {
	f := allowlist.SiteFilter{Status: c.QueryParam("status"), Category: c.QueryParam("category"), Q: c.QueryParam("q")}
	switch f.Status {
	case "", allowlist.StatusProposed, allowlist.StatusApproved, allowlist.StatusSuspended, allowlist.StatusWithdrawn:
	default:
		return allowlist.Errorf(allowlist.EMALFORMED, "status must be proposed, approved, suspended or withdrawn")
	}
	if f.Category != "" && !allowlist.ValidCategory(f.Category) {
		return allowlist.Errorf(allowlist.EMALFORMED, "unknown category")
	}
	if len(f.Q) > 200 {
		return allowlist.Errorf(allowlist.EMALFORMED, "q is longer than 200 characters")
	}
	sites, err := s.svc.Sites.FindSites(c.Request().Context(), f)
	if err != nil {
		return err
	}
	for i := range sites {
		sites[i] = view(actorOf(c), sites[i])
	}
	return c.JSON(http.StatusOK, sites)
}

func (s *Server) handleSiteGet(c echo.Context) error {
	site, err := s.svc.Sites.FindSite(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

func (s *Server) handleSiteUpdate(c echo.Context) error {
	var p allowlist.SitePatch
	if err := decode(c, &p); err != nil {
		return err
	}
	site, err := s.svc.Sites.UpdateSite(c.Request().Context(), actorOf(c), c.Param("id"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

func (s *Server) handleSignoffSet(c echo.Context) error {
	var in struct {
		Decision string `json:"decision"`
		Comment  string `json:"comment"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	site, err := s.svc.Signoffs.SetSignoff(c.Request().Context(), actorOf(c), c.Param("id"), c.Param("department"), in.Decision, in.Comment)
	if err != nil {
		return err
	}
	s.metrics.signoffs.WithLabelValues(in.Decision).Inc()
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

func (s *Server) handleSignoffDelete(c echo.Context) error {
	site, err := s.svc.Signoffs.DeleteSignoff(c.Request().Context(), actorOf(c), c.Param("id"), c.Param("department"))
	if err != nil {
		return err
	}
	s.metrics.signoffs.WithLabelValues("withdraw").Inc()
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

func (s *Server) handleSiteSuspend(c echo.Context) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	site, err := s.svc.Sites.SuspendSite(c.Request().Context(), actorOf(c), c.Param("id"), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

func (s *Server) handleSiteReinstate(c echo.Context) error {
	var in struct {
		Reason string `json:"reason"`
	}
	// The body, {"reason"}, is optional: a POST without one reinstates
	// too, whatever Content-Type it claims (clients that label every
	// request as JSON worked before the reason existed). A body that is
	// there is checked as every other.
	if c.Request().ContentLength != 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	site, err := s.svc.Sites.ReinstateSite(c.Request().Context(), actorOf(c), c.Param("id"), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}
