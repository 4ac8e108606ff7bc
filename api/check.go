package api

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// CheckMatch is the pattern and site that allow a name, or, for an
// address, the site's network and handling.
type CheckMatch struct {
	Pattern  string              `json:"pattern,omitempty"`
	Network  *allowlist.Network  `json:"network,omitempty"`
	Handling *allowlist.Handling `json:"handling,omitempty"`
	Site     CheckSite           `json:"site"`
}

// CheckSite is the short form of a site in a check answer.
type CheckSite struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// CheckResult answers "may I use this?".
type CheckResult struct {
	Domain       string              `json:"domain,omitempty"`
	IP           string              `json:"ip,omitempty"`
	Port         string              `json:"port,omitempty"`
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
	if c.QueryParam("ip") != "" || c.QueryParam("port") != "" {
		if c.QueryParam("domain") != "" {
			return invalid("ip", "ask about a domain or an ip, not both")
		}
		res, err := s.CheckAddress(c.Request().Context(), c.QueryParam("ip"), c.QueryParam("port"), c.QueryParam("department"), actorOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, res)
	}
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
	scope := scopeOf(department)
	cm, err := s.hub.matcher(ctx, scope)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Domain: p.Name, Scope: scope, Version: cm.list.Version, Signoffs: []allowlist.Signoff{}}
	if i := cm.matcher.Match(p.Name); i >= 0 {
		e := cm.list.Entries[i]
		res.Match = &CheckMatch{Pattern: e.Pattern, Site: CheckSite{ID: e.Site, Category: e.Category}}
		return s.checkAllowed(ctx, res, a)
	}
	res, form := s.checkRefused(res, p.Name)
	if res.WhyNot, err = s.whyNot(ctx, p.Name, scope, form); err != nil {
		return CheckResult{}, err
	}
	return res, nil
}

// CheckAddress answers whether an IP address (and, given "udp/3478", a
// protocol and port) is among the networks of a department's scope
// ("" for common). EINVALID, ENOTFOUND.
func (s *Server) CheckAddress(ctx context.Context, ip, port, department string, a allowlist.Actor) (CheckResult, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil || addr.Zone() != "" {
		return CheckResult{}, invalid("ip", "is not an IPv4 or IPv6 address")
	}
	addr = addr.Unmap()
	proto, num := "", uint16(0)
	if port != "" {
		var why string
		if proto, num, why = allowlist.ParseProtoPort(port); why != "" {
			return CheckResult{}, invalid("port", why)
		}
		port = proto + "/" + strconv.Itoa(int(num))
	}
	scope := scopeOf(department)
	cm, err := s.hub.matcher(ctx, scope)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{IP: addr.String(), Port: port, Scope: scope, Version: cm.list.Version, Signoffs: []allowlist.Signoff{}}
	if e, n, ok := allowlist.MatchEndpoint(cm.list.Endpoints, addr, proto, num); ok {
		h := e.Handling
		res.Match = &CheckMatch{Network: &n, Handling: &h, Site: CheckSite{ID: e.Site, Category: e.Category}}
		return s.checkAllowed(ctx, res, a)
	}
	res, _ = s.checkRefused(res, addr.String())
	return res, nil
}

// checkAllowed completes the answer for a match: the site's name, its
// decisions, and contacts for those who may see them.
func (s *Server) checkAllowed(ctx context.Context, res CheckResult, a allowlist.Actor) (CheckResult, error) {
	scope := res.Scope
	res.Allowed = true
	site, err := s.svc.Sites.FindSite(ctx, res.Match.Site.ID)
	if err != nil {
		return CheckResult{}, err
	}
	res.Match.Site.Name = site.Name
	res.Signoffs = view(a, site).Signoffs
	if canSeeContacts(a) {
		res.Contacts = &CheckContacts{SiteOwner: site.Owner, Departments: map[string][]allowlist.Contact{}}
		for _, so := range site.Signoffs {
			cs, err := s.svc.Departments.FindContacts(ctx, so.Department)
			if err == nil {
				res.Contacts.Departments[so.Department] = cs
			}
		}
	}
	res.HowToRequest = "This tool is on the " + scope + " list. If it is still blocked at work, tell your IT service desk and quote list " + scope + " version " + itoa(res.Version) + "."
	return res, nil
}

// scopeOf is the scope a check reads: a department's, or common.
func scopeOf(department string) string {
	if department != "" {
		return department
	}
	return allowlist.ScopeCommon
}

// checkRefused completes the answer for no match: how to ask, and the
// request form's address.
func (s *Server) checkRefused(res CheckResult, what string) (CheckResult, string) {
	form := strings.TrimRight(s.cfg.PublicURL, "/") + "/request?" + url.Values{"url": {what}}.Encode()
	res.HowToRequest = "To ask for it, fill in the request form at " + form + " and say what you need it for. Your department's filtering owners review requests; a tool joins the common list once " + itoa(int64(s.cfg.Quorum)) + " departments approve it."
	return res, form
}

// Quorum is the number of approvals that put a site on the common list.
func (s *Server) Quorum() int { return s.cfg.Quorum }

// Echo returns the router, for mounting the web pages beside the API.
func (s *Server) Echo() *echo.Echo { return s.echo }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
