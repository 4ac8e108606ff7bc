package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// CheckMatch is the pattern and site that allow a name.
type CheckMatch struct {
	Pattern string    `json:"pattern"`
	Site    CheckSite `json:"site"`
}

// CheckSite is the short form of a site in a check answer.
type CheckSite struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// CheckResult answers "may I use this?".
type CheckResult struct {
	Domain       string              `json:"domain"`
	Allowed      bool                `json:"allowed"`
	Scope        string              `json:"scope"`
	Version      int64               `json:"version"`
	Match        *CheckMatch         `json:"match"`
	Signoffs     []allowlist.Signoff `json:"signoffs"`
	HowToRequest string              `json:"how_to_request"`
	Contacts     *CheckContacts      `json:"contacts,omitempty"`
}

// CheckContacts are shown to owners and admins only.
type CheckContacts struct {
	SiteOwner   allowlist.Owner                `json:"site_owner"`
	Departments map[string][]allowlist.Contact `json:"departments"`
}

// hostOf accepts what staff paste: a host name, or a URL from which the
// host is taken.
func hostOf(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	return s
}

func (s *Server) handleCheck(c echo.Context) error {
	ctx := c.Request().Context()
	raw := c.QueryParam("domain")
	if raw == "" {
		return invalid("domain", "is required")
	}
	p, err := allowlist.ParsePattern(hostOf(raw))
	if err != nil || p.Wildcard {
		msg := "is not a host name"
		if err != nil {
			msg = allowlist.ErrorMessage(err)
		}
		return invalid("domain", msg)
	}
	scope := allowlist.ScopeCommon
	if d := c.QueryParam("department"); d != "" {
		scope = d
	}
	cm, err := s.hub.matcher(ctx, scope)
	if err != nil {
		return err
	}
	res := CheckResult{Domain: p.Name, Scope: scope, Version: cm.list.Version, Signoffs: []allowlist.Signoff{}}
	a := actorOf(c)
	if i := cm.matcher.Match(p.Name); i >= 0 {
		e := cm.list.Entries[i]
		res.Allowed = true
		res.Match = &CheckMatch{Pattern: e.Pattern, Site: CheckSite{ID: e.Site, Category: e.Category}}
		site, err := s.reg.FindSite(ctx, e.Site)
		if err != nil {
			return err
		}
		res.Match.Site.Name = site.Name
		res.Signoffs = view(a, site).Signoffs
		if canSeeContacts(a) {
			res.Contacts = &CheckContacts{SiteOwner: site.Owner, Departments: map[string][]allowlist.Contact{}}
			for _, so := range site.Signoffs {
				cs, err := s.reg.FindContacts(ctx, so.Department)
				if err == nil {
					res.Contacts.Departments[so.Department] = cs
				}
			}
		}
		res.HowToRequest = "This tool is on the " + scope + " list. If it is still blocked at work, tell your IT service desk and quote list " + scope + " version " + itoa(cm.list.Version) + "."
	} else {
		res.HowToRequest = "Ask for it with POST /v1/requests {\"tool\", \"url\", \"reason\", \"department\"}, or on the start page. Your department's filtering owners review requests; a tool joins the common list once " + itoa(int64(s.cfg.Quorum)) + " departments approve it."
	}
	return c.JSON(http.StatusOK, res)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
