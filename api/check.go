package api

import (
	"context"
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
	// WhyNot explains, when the name is not allowed, what stands in the
	// way: not in the catalogue, proposed, objected to, suspended, or an
	// approval expired.
	WhyNot *allowlist.Explanation `json:"why_not,omitempty"`
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
	res, err := s.Check(c.Request().Context(), c.QueryParam("domain"), c.QueryParam("department"), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// Check answers whether a host name (or the host of a URL) is allowed in
// a department's scope ("" for common), and why. Contacts are included
// for owners and admins only. EINVALID, ENOTFOUND.
func (s *Server) Check(ctx context.Context, raw, department string, a allowlist.Actor) (CheckResult, error) {
	if raw == "" {
		return CheckResult{}, invalid("domain", "is required")
	}
	p, err := allowlist.ParsePattern(hostOf(raw))
	if err != nil || p.Wildcard {
		msg := "is not a host name"
		if err != nil {
			msg = allowlist.ErrorMessage(err)
		}
		return CheckResult{}, invalid("domain", msg)
	}
	scope := allowlist.ScopeCommon
	if department != "" {
		scope = department
	}
	cm, err := s.hub.matcher(ctx, scope)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Domain: p.Name, Scope: scope, Version: cm.list.Version, Signoffs: []allowlist.Signoff{}}
	if i := cm.matcher.Match(p.Name); i >= 0 {
		e := cm.list.Entries[i]
		res.Allowed = true
		res.Match = &CheckMatch{Pattern: e.Pattern, Site: CheckSite{ID: e.Site, Category: e.Category}}
		site, err := s.reg.FindSite(ctx, e.Site)
		if err != nil {
			return CheckResult{}, err
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
		form := strings.TrimRight(s.cfg.PublicURL, "/") + "/request?" + url.Values{"url": {p.Name}}.Encode()
		res.HowToRequest = "To ask for it, fill in the request form at " + form + " and say what you need it for. Your department's filtering owners review requests; a tool joins the common list once " + itoa(int64(s.cfg.Quorum)) + " departments approve it."
		if res.WhyNot, err = s.whyNot(ctx, p.Name, scope, form); err != nil {
			return CheckResult{}, err
		}
	}
	return res, nil
}

// Quorum is the number of approvals that put a site on the common list.
func (s *Server) Quorum() int { return s.cfg.Quorum }

// Echo returns the router, for mounting the web pages beside the API.
func (s *Server) Echo() *echo.Echo { return s.echo }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
