// Package web serves the pages people use: staff checking and asking for a
// tool, filtering owners deciding for their department, and anyone looking
// at the catalogue, the lists and the dashboard. Pages are rendered on the
// server in the GOV.UK Design System's markup and work without JavaScript.
// It uses the registry through the services of allowlist.Registry and the
// API's check.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Checker answers staff checks and holds the per-address allowances the
// pages share with the API; *api.Server is one.
type Checker interface {
	Check(ctx context.Context, domain, department string, a allowlist.Actor) (api.CheckResult, error)
	Quorum() int
	// StaffRequestAllowed spends one of ip's staff requests.
	StaffRequestAllowed(ip string) (time.Duration, bool)
	// SignInBlocked reports whether ip has used up its failed sign-ins.
	SignInBlocked(ip string) (time.Duration, bool)
	// SignInFailed records one failed sign-in from ip.
	SignInFailed(ip string)
}

// Options configure the pages.
type Options struct {
	// SecureCookies marks cookies Secure. Leave it on anywhere but a
	// loopback address during development, and always behind https.
	SecureCookies bool
	// HSTS sends Strict-Transport-Security (when the public address is https).
	HSTS   bool
	Logger *slog.Logger
}

// Pages is the web front end.
type Pages struct {
	// svc is the registry by noun, what handlers use; reg is the store
	// itself, for the optional services found by type assertion
	// (Governance, its policy, queue statistics).
	svc      allowlist.Services
	reg      allowlist.Registry
	check    Checker
	opt      Options
	log      *slog.Logger
	tmpl     map[string]*template.Template
	sessions *sessions
	csrfKey  []byte
}

// New parses the templates.
func New(reg allowlist.Registry, check Checker, opt Options) *Pages {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	p := &Pages{reg: reg, svc: allowlist.ServicesOf(reg), check: check, opt: opt, log: opt.Logger, tmpl: map[string]*template.Template{}, sessions: newSessions(), csrfKey: make([]byte, 32)}
	if _, err := rand.Read(p.csrfKey); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	funcs := template.FuncMap{
		"statusLabel":   statusLabel,
		"statusColour":  statusColour,
		"categoryTitle": func(c string) string { return categoryTitles[c] },
		"decisionForm":  func(csrf string, r siteRow) decisionForm { return decisionForm{CSRF: csrf, Row: r} },
		"adminInput":    adminInput,
		"blocked": func(e *allowlist.Explanation) bool {
			return e != nil && (e.Reason == allowlist.WhyObjected || e.Reason == allowlist.WhySuspended || e.Reason == allowlist.WhyWithdrawn)
		},
		"sub":               func(a, b int) int { return a - b },
		"div":               func(a, b int) int { return a / b },
		"requestColour":     requestColour,
		"requestStatusText": requestStatusText,
		"kindTitle":         kindTitle,
	}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" || strings.HasPrefix(base, "_") {
			continue
		}
		// Files named _*.html hold templates every page may use.
		p.tmpl[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/_*.html", n))
	}
	return p
}

// Register adds the pages and their assets to the router: the one table
// of what the pages serve, each route behind the same guard (guard.go).
// GET pages answer HEAD too.
func (p *Pages) Register(e *echo.Echo) {
	assets, _ := fs.Sub(staticFS, "static/govuk/assets")
	files := echo.WrapHandler(http.StripPrefix("/assets/", cacheForever(http.FileServer(http.FS(assets)))))
	e.GET("/assets/*", files)
	e.HEAD("/assets/*", files)
	css := echo.WrapHandler(cacheForever(http.FileServer(http.FS(mustSub(staticFS, "static")))))
	e.GET("/app.css", css)
	e.HEAD("/app.css", css)
	if s, ok := p.check.(interface {
		SetPageError(func(echo.Context, *allowlist.Error))
	}); ok {
		s.SetPageError(p.routeError)
	}
	guard := []echo.MiddlewareFunc{p.secureHeaders, p.limitBody, p.identify, p.checkCSRF}
	for _, r := range []struct {
		method, path string
		h            echo.HandlerFunc
		access       access
	}{
		{"GET", "/", p.handleStart, anyone},
		{"GET", "/check", p.handleCheck, anyone},
		{"GET", "/common-ground", p.handleCommonGround, anyone},
		{"GET", "/request", p.handleRequestForm, anyone},
		{"POST", "/request", p.handleRequest, anyone},
		{"GET", "/requests", p.handleRequestLookup, anyone},
		{"GET", "/requests/:reference", p.handleRequestStatus, anyone},
		{"GET", "/catalogue", p.handleCatalogue, anyone},
		{"GET", "/lists", p.handleLists, anyone},
		{"GET", "/lists/:scope", p.handleScope, anyone},
		{"GET", "/dashboard", p.handleDashboard, anyone},
		{"GET", "/accessibility", p.handleAccessibility, anyone},
		{"GET", "/sign-in", p.handleSignInForm, anyone},
		{"POST", "/sign-in", p.handleSignIn, anyone},
		{"GET", "/sign-out", p.handleSignOutForm, anyone},
		{"POST", "/sign-out", p.handleSignOut, anyone},

		{"GET", "/owner", p.handleOwner, ownerOnly},
		{"GET", "/owner/sites/:id", p.handleOwnerSite, ownerOnly},
		{"POST", "/owner/decide", p.handleDecide, ownerOnly},
		{"GET", "/owner/propose", p.handleProposeForm, ownerOnly},
		{"POST", "/owner/propose", p.handlePropose, ownerOnly},
		{"GET", "/owner/requests", p.handleOwnerRequests, ownerOnly},
		{"GET", "/owner/waiting", p.handleOwnerWaiting, ownerOnly},
		{"POST", "/owner/requests/answer", p.handleOwnerAnswer, ownerOnly},
		{"POST", "/owner/renew", p.handleRenew, ownerOnly},
		{"POST", "/owner/usage/propose", p.handleUsagePropose, ownerOnly},
		{"GET", "/owner/directory", p.handleDirectory, signedIn},

		{"GET", "/admin", p.handleAdmin, adminOnly},
		{"POST", "/admin/departments", p.handleAdminDepartment, adminOnly},
		{"POST", "/admin/contacts", p.handleAdminContact, adminOnly},
		{"POST", "/admin/tokens", p.handleAdminToken, adminOnly},
		{"POST", "/admin/tokens/revoke", p.handleAdminRevoke, adminOnly},
		{"POST", "/admin/sites/suspend", p.handleAdminSuspend, adminOnly},
		{"POST", "/admin/sites/reinstate", p.handleAdminReinstate, adminOnly},
		{"GET", "/admin/audit", p.handleAdminAudit, adminOnly},
	} {
		mw := append(append([]echo.MiddlewareFunc{}, guard...), p.require(r.access))
		e.Add(r.method, r.path, r.h, mw...)
		if r.method == "GET" {
			e.Add("HEAD", r.path, r.h, mw...)
		}
	}
}

// access says who may use a page.
type access int

const (
	anyone    access = iota
	signedIn         // an owner or an admin
	ownerOnly        // a filtering owner (bound to a department)
	adminOnly        // an administrator
)

// require enforces a page's access rule: anyone not signed in goes to
// the sign-in page; someone signed in with the wrong role gets a 403 page.
func (p *Pages) require(need access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			role := p.actor(c).Role
			ok := need == anyone ||
				(need == signedIn && (role == allowlist.RoleOwner || role == allowlist.RoleAdmin)) ||
				(need == ownerOnly && role == allowlist.RoleOwner) ||
				(need == adminOnly && role == allowlist.RoleAdmin)
			switch {
			case ok:
				return next(c)
			case role == "":
				return c.Redirect(http.StatusSeeOther, "/sign-in")
			}
			return p.refuse(c, allowlist.EFORBIDDEN, "You cannot use this page",
				"This page is for "+map[access]string{ownerOnly: "filtering owners", adminOnly: "administrators"}[need]+". Sign out and sign in with the right token.")
		}
	}
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.ServeHTTP(w, r)
	})
}

// secureHeaders sets what every page should carry: no framing, no
// sniffing, no referrer leaks, and a policy that allows no script at all.
func (p *Pages) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if p.opt.HSTS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// page is everything a template may show.
type page struct {
	Title       string
	Nav         []navItem
	Errors      []allowlist.FieldError
	Flash       string
	Message     string
	Actor       allowlist.Actor
	CSRF        string
	Departments []allowlist.Department
	Department  string
	Quorum      int
	Form        map[string]string

	Query, Label, ScopeName, URL, Reference string
	Result                                  api.CheckResult
	Approvers                               []string
	Site                                    *allowlist.Site

	Status   string
	Statuses []string
	Groups   []group

	Formats  []allowlist.Format
	Scopes   []allowlist.ScopeInfo
	Scope    string
	From, To string
	Diff     *list.DiffBody
	Versions []allowlist.Version

	ByStatus, ByCategory []count
	ByDepartment         []deptCount
	Chart                chart
	Usage                any // usage.go: what the page shows of usage reports

	DepartmentName string
	Queue          []allowlist.Site
	Requests       []allowlist.Request
	Contacts       []allowlist.Contact
	ProposeFields  []field
	Categories     []string

	// View is the page's own view, for pages that have one (owner.go,
	// admin.go): one struct per template rather than more fields here.
	View any

	names map[string]string // department names, read once per request
}

// FieldError returns the message for a field, for inline errors.
func (p *page) FieldError(name string) string {
	for _, e := range p.Errors {
		if e.Field == name {
			return e.Message
		}
	}
	return ""
}

type navItem struct {
	Href, Text string
	Active     bool
}

type group struct {
	Category, Title string
	Sites           []allowlist.Site
}

type count struct {
	Name  string
	Count int
}

type deptCount struct {
	Name               string
	Approved, Objected int
}

type field struct{ Name, Label, Hint string }

func (p *Pages) render(c echo.Context, status int, name string, pg *page) error {
	pg.Actor = p.actor(c)
	pg.CSRF, _ = c.Get(ctxCSRF).(string)
	pg.names = p.names(c)
	last := navItem{"/sign-in", "Sign in", false}
	switch pg.Actor.Role {
	case allowlist.RoleOwner:
		last = navItem{"/owner", "Your decisions", false}
	case allowlist.RoleAdmin:
		last = navItem{"/admin", "Administration", false}
	}
	path := c.Request().URL.Path
	items := []navItem{{"/", "Check a tool", false}, {"/catalogue", "Catalogue", false}, {"/lists", "Lists", false},
		{"/dashboard", "Dashboard", false}, last}
	if pg.Actor.Role != "" {
		items = append(items, navItem{"/sign-out", "Sign out", false})
	}
	for _, n := range items {
		n.Active = path == n.Href || (n.Href != "/" && strings.HasPrefix(path, n.Href)) || (n.Href == "/" && path == "/check")
		pg.Nav = append(pg.Nav, n)
	}
	if id := sessionID(c); id != "" {
		pg.Flash = p.sessions.takeFlash(id)
	} else if ended, _ := c.Get(ctxEnded).(bool); ended && pg.Flash == "" {
		pg.Flash = "You have been signed out because your token is no longer valid."
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	if err := p.tmpl[name].ExecuteTemplate(c.Response(), "layout", pg); err != nil {
		p.log.Error("render page", "page", name, "err", err)
	}
	return nil
}

// departmentList returns the departments, read once per request with its
// context and kept on it: every name a page shows comes from this one
// read, never from a query per name or per template call.
func (p *Pages) departmentList(c echo.Context) []allowlist.Department {
	if ds, ok := c.Get(ctxDepartments).([]allowlist.Department); ok {
		return ds
	}
	ds, err := p.svc.Departments.FindDepartments(c.Request().Context())
	if err != nil {
		p.log.Warn("departments", "err", err)
	}
	c.Set(ctxDepartments, ds)
	return ds
}

// names maps department ids to names, for departmentList's departments.
func (p *Pages) names(c echo.Context) map[string]string {
	if m, ok := c.Get(ctxNames).(map[string]string); ok {
		return m
	}
	m := map[string]string{}
	for _, d := range p.departmentList(c) {
		m[d.ID] = d.Name
	}
	c.Set(ctxNames, m)
	return m
}

// deptName is a department's name: "Common list" for common, its id when
// unknown, "" for "".
func (p *Pages) deptName(c echo.Context, id string) string { return nameIn(p.names(c), id) }

func nameIn(names map[string]string, id string) string {
	if id == allowlist.ScopeCommon {
		return "Common list"
	}
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

// NameOf is a scope's name for the templates, from the names the request
// read once.
func (pg *page) NameOf(scope string) string { return nameIn(pg.names, scope) }

// ApproverNames names the organisations that approved a site.
func (pg *page) ApproverNames(s allowlist.Site) []string {
	var out []string
	for _, so := range s.Signoffs {
		if so.Decision == allowlist.DecisionApprove {
			out = append(out, pg.NameOf(so.Department))
		}
	}
	return out
}

// statusLabel says where a site stands in words people use: a proposed
// site that some organisations approved is already on their own lists.
func statusLabel(s allowlist.Site) string {
	switch s.Status {
	case allowlist.StatusApproved:
		return "On the common list"
	case allowlist.StatusSuspended:
		return "Suspended"
	case allowlist.StatusWithdrawn:
		return "Withdrawn"
	}
	n := 0
	for _, so := range s.Signoffs {
		if so.Decision == allowlist.DecisionApprove && so.Revision == s.Revision {
			n++
		}
	}
	switch n {
	case 0:
		return "Proposed"
	case 1:
		return "Proposed: on 1 organisation's list"
	}
	return "Proposed: on " + strconv.Itoa(n) + " organisations' lists"
}

func statusColour(status string) string {
	switch status {
	case allowlist.StatusApproved:
		return "govuk-tag--green"
	case allowlist.StatusProposed:
		return "govuk-tag--yellow"
	case allowlist.StatusSuspended:
		return "govuk-tag--red"
	}
	return "govuk-tag--grey"
}

// --- staff ---

func (p *Pages) handleStart(c echo.Context) error {
	return p.render(c, http.StatusOK, "start", &page{Title: "Can I use this tool at work?", Departments: p.departmentList(c), Department: c.QueryParam("department")})
}

// handleCheck accepts a web address, a host name, or a tool's name.
func (p *Pages) handleCheck(c echo.Context) error {
	ctx := c.Request().Context()
	q := strings.TrimSpace(c.QueryParam("q"))
	dept := c.QueryParam("department")
	pg := &page{Title: "Can I use this tool at work?", Query: q, Department: dept, Departments: p.departmentList(c), Quorum: p.check.Quorum()}
	if q == "" {
		pg.Errors = []allowlist.FieldError{{Field: "q", Message: "Enter the name or web address of the tool"}}
		return p.render(c, statusOf(allowlist.EINVALID), "start", pg)
	}
	if _, known := p.names(c)[dept]; !known {
		dept, pg.Department = "", ""
	}
	target, label := q, q
	if !strings.Contains(q, ".") || strings.Contains(q, " ") {
		site, err := p.findTool(ctx, q)
		if err != nil {
			msg := "We could not find a tool called “" + q + "”. Try its web address, such as meet.example.org"
			if allowlist.ErrorCode(err) == allowlist.EINVALID {
				msg = allowlist.ErrorMessage(err) + ". Give the tool's full name, or its web address"
			}
			pg.Errors = []allowlist.FieldError{{Field: "q", Message: msg}}
			return p.render(c, statusOf(allowlist.EINVALID), "start", pg)
		}
		pg.Site = &site
		label = site.Name
		target = allowlist.ToolHost(site)
	}
	res, err := p.check.Check(ctx, target, dept, p.actor(c))
	if err != nil {
		if allowlist.ErrorCode(err) == allowlist.EINVALID {
			pg.Errors = []allowlist.FieldError{{Field: "q", Message: "Enter a web address such as meet.example.org, or a tool's name"}}
			return p.render(c, statusOf(allowlist.EINVALID), "start", pg)
		}
		return p.fail(c, err)
	}
	if pg.Site == nil && res.Allowed {
		label = res.Match.Site.Name
	}
	p.describe(c, pg, label, res)
	return p.render(c, http.StatusOK, "check", pg)
}

// describe fills the answer to a check: what was checked, on which list,
// who approved it.
func (p *Pages) describe(c echo.Context, pg *page, label string, res api.CheckResult) {
	pg.Label, pg.Result, pg.URL = label, res, pg.Query
	pg.ScopeName = "common list"
	if res.Scope != allowlist.ScopeCommon {
		pg.ScopeName = "list for " + p.deptName(c, res.Scope)
	}
	for _, so := range res.Signoffs {
		if so.Decision == allowlist.DecisionApprove {
			pg.Approvers = append(pg.Approvers, p.deptName(c, so.Department))
		}
	}
	if res.Allowed {
		pg.Title = "Yes, you can use " + label
	} else {
		pg.Title = "No, " + label + " is not on the " + pg.ScopeName + " yet"
	}
}

// findTool finds a site by its name or id, case-insensitively; failing
// an exact match, the only one whose name contains the text.
func (p *Pages) findTool(ctx context.Context, name string) (allowlist.Site, error) {
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{Q: name})
	if err != nil {
		return allowlist.Site{}, err
	}
	return allowlist.PickTool(sites, name)
}

func (p *Pages) handleRequestForm(c echo.Context) error {
	return p.render(c, http.StatusOK, "request", &page{Title: "Request a tool", Departments: p.departmentList(c), Department: c.QueryParam("department"),
		Form: map[string]string{"tool": c.QueryParam("tool"), "url": c.QueryParam("url"), "reason": c.QueryParam("reason")}})
}

func (p *Pages) handleRequest(c echo.Context) error {
	ctx := c.Request().Context()
	if wait, ok := p.check.StaffRequestAllowed(c.RealIP()); !ok {
		return p.tooMany(c, wait, "There have been too many requests from your network. Wait a minute and try again.")
	}
	form := map[string]string{}
	for _, k := range []string{"tool", "url", "reason", "department", "email"} {
		form[k] = strings.TrimSpace(c.FormValue(k))
	}
	url := form["url"]
	if url != "" && !strings.Contains(url, "://") {
		url = "https://" + url
	}
	if !strings.Contains(form["url"], ".") {
		url = ""
	}
	r, err := p.svc.Requests.CreateRequest(ctx, p.actor(c), allowlist.Request{Tool: form["tool"], URL: url, Reason: form["reason"], Department: form["department"], Email: form["email"]})
	if err != nil {
		var ae *allowlist.Error
		if errors.As(err, &ae) && ae.Code == allowlist.EINVALID {
			pg := &page{Title: "Request a tool", Form: form, Department: form["department"], Departments: p.departmentList(c)}
			for _, f := range ae.Fields {
				msg := map[string]string{"tool": "Enter the name of the tool", "reason": "Tell us why you need it",
					"department": "Select your organisation", "email": "Enter an email address in the right format, like name@example.gov.uk",
					"url": "Enter a web address like https://meet.example.org"}[f.Field]
				if msg == "" {
					msg = f.Message
				}
				pg.Errors = append(pg.Errors, allowlist.FieldError{Field: f.Field, Message: msg})
			}
			return p.render(c, statusOf(allowlist.EINVALID), "request", pg)
		}
		return p.fail(c, err)
	}
	return p.render(c, http.StatusCreated, "requested", &page{Title: "Request sent", Reference: r.Reference, Label: r.Tool, Quorum: p.check.Quorum()})
}

// --- catalogue, lists, dashboard ---

var categoryTitles = map[string]string{"video-conferencing": "Video conferencing", "document-editing": "Document editing", "wiki": "Wikis",
	"file-storage": "File storage", "project-management": "Project management", "messaging": "Messaging", "other": "Other tools"}

func (p *Pages) handleCatalogue(c echo.Context) error {
	status := c.QueryParam("status")
	switch status {
	case "", allowlist.StatusApproved, allowlist.StatusProposed, allowlist.StatusSuspended:
	default:
		status = ""
	}
	sites, err := p.svc.Sites.FindSites(c.Request().Context(), allowlist.SiteFilter{Status: status})
	if err != nil {
		return p.fail(c, err)
	}
	pg := &page{Title: "Catalogue of tools", Status: status, Statuses: []string{allowlist.StatusApproved, allowlist.StatusProposed, allowlist.StatusSuspended}}
	pg.Usage = p.catalogueUsage(c.Request().Context(), sites)
	for _, cat := range allowlist.Categories {
		g := group{Category: cat, Title: categoryTitles[cat]}
		for _, s := range sites {
			if s.Category == cat && s.Status != allowlist.StatusWithdrawn {
				s.Owner.Email = "" // never on public pages
				g.Sites = append(g.Sites, s)
			}
		}
		if len(g.Sites) > 0 {
			pg.Groups = append(pg.Groups, g)
		}
	}
	return p.render(c, http.StatusOK, "catalogue", pg)
}

func (p *Pages) handleLists(c echo.Context) error {
	scopes, err := p.svc.Lists.FindScopes(c.Request().Context())
	if err != nil {
		return p.fail(c, err)
	}
	return p.render(c, http.StatusOK, "lists", &page{Title: "Published lists", Scopes: scopes, Formats: allowlist.Formats})
}

func (p *Pages) handleScope(c echo.Context) error {
	ctx := c.Request().Context()
	scope := c.Param("scope")
	versions, err := p.svc.Lists.FindVersions(ctx, scope)
	if err != nil {
		return p.fail(c, err)
	}
	pg := &page{Title: p.deptName(c, scope), Scope: scope, Versions: versions, From: c.QueryParam("from"), To: c.QueryParam("to")}
	latest := versions[len(versions)-1].Version
	if pg.From == "" {
		pg.From = strconv.FormatInt(max(0, latest-1), 10)
	}
	if pg.To == "" {
		pg.To = strconv.FormatInt(latest, 10)
	}
	from, err1 := strconv.ParseInt(pg.From, 10, 64)
	to, err2 := strconv.ParseInt(pg.To, 10, 64)
	if err1 != nil || err2 != nil || from < 0 || to < 0 || from > latest || to > latest {
		pg.Errors = []allowlist.FieldError{{Field: "from", Message: "Enter version numbers from 0 to " + strconv.FormatInt(latest, 10)}}
		return p.render(c, statusOf(allowlist.EINVALID), "scope", pg)
	}
	a, err := p.entries(ctx, scope, from)
	if err != nil {
		return p.fail(c, err)
	}
	b, err := p.entries(ctx, scope, to)
	if err != nil {
		return p.fail(c, err)
	}
	added, removed := list.Diff(a, b)
	pg.Diff = &list.DiffBody{Scope: scope, From: from, To: to, Added: added, Removed: removed}
	sort.Slice(pg.Versions, func(i, j int) bool { return pg.Versions[i].Version > pg.Versions[j].Version })
	return p.render(c, http.StatusOK, "scope", pg)
}

func (p *Pages) entries(ctx context.Context, scope string, n int64) ([]allowlist.Entry, error) {
	v, err := p.svc.Lists.FindVersion(ctx, scope, n)
	if err != nil {
		return nil, err
	}
	l, err := allowlist.DecodeList(v.Whole())
	return l.Entries, err
}

// chart is a bar chart drawn as SVG with labelled axes (the "bar-chart"
// template); a page gives the same figures as a table. The dashboard draws
// the common list's size by version (makeChart) and usage trends
// (usage.go).
type chart struct {
	Width, Height, Left, Bottom, Top int
	First, Last                      int
	Bars                             []bar
	YTicks                           []tick
	FirstVersion, LastVersion        int64
	Versions                         []allowlist.Version
	// ID prefixes the SVG's title and description ids; Title, Desc, the
	// axis labels and the first and last bars' labels are shown.
	ID, Title, Desc, XLabel, YLabel, XFirst, XLast string
}

type bar struct {
	X, Y, W, H float64
	Label      string // what the bar's tooltip says
}

type tick struct {
	Y     float64
	Label string
}

func (p *Pages) handleDashboard(c echo.Context) error {
	ctx := c.Request().Context()
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return p.fail(c, err)
	}
	pg := &page{Title: "Dashboard"}
	byStatus, byCategory := map[string]int{}, map[string]int{}
	perDept := map[string]*deptCount{}
	for _, s := range sites {
		byStatus[s.Status]++
		byCategory[s.Category]++
		for _, so := range s.Signoffs {
			d := perDept[so.Department]
			if d == nil {
				d = &deptCount{Name: p.deptName(c, so.Department)}
				perDept[so.Department] = d
			}
			if so.Decision == allowlist.DecisionApprove {
				d.Approved++
			} else {
				d.Objected++
			}
		}
	}
	for _, st := range []string{allowlist.StatusApproved, allowlist.StatusProposed, allowlist.StatusSuspended, allowlist.StatusWithdrawn} {
		pg.ByStatus = append(pg.ByStatus, count{st, byStatus[st]})
	}
	for _, cat := range allowlist.Categories {
		pg.ByCategory = append(pg.ByCategory, count{categoryTitles[cat], byCategory[cat]})
	}
	for _, d := range perDept {
		pg.ByDepartment = append(pg.ByDepartment, *d)
	}
	sort.Slice(pg.ByDepartment, func(i, j int) bool { return pg.ByDepartment[i].Name < pg.ByDepartment[j].Name })
	versions, err := p.svc.Lists.FindVersions(ctx, allowlist.ScopeCommon)
	if err != nil {
		return p.fail(c, err)
	}
	pg.Chart = makeChart(versions)
	pg.View = p.backlog(c) // requests.go
	pg.Usage = p.usageTrends(ctx)
	return p.render(c, http.StatusOK, "dashboard", pg)
}

// makeChart draws one bar per version (the latest 200), scaled to a
// round number above the largest list, with ticks on the entries axis.
// Version 0, the empty list every scope starts at before anything is
// published, is left out: it is no version anyone downloaded.
func makeChart(versions []allowlist.Version) chart {
	versions = slices.DeleteFunc(slices.Clone(versions), func(v allowlist.Version) bool { return v.Version < 1 })
	if len(versions) > 200 {
		versions = versions[len(versions)-200:]
	}
	values, labels := make([]int, len(versions)), make([]string, len(versions))
	for i, v := range versions {
		values[i] = v.Entries
		labels[i] = "version " + strconv.FormatInt(v.Version, 10) + ": " + strconv.Itoa(v.Entries) + " entries"
	}
	ch := barChart(values, labels)
	ch.Versions, ch.ID, ch.Title, ch.XLabel, ch.YLabel = versions, "chart", "Entries in the common list at each version", "List version", "Entries"
	if len(versions) > 0 {
		ch.First, ch.Last = versions[0].Entries, versions[len(versions)-1].Entries
		ch.FirstVersion, ch.LastVersion = versions[0].Version, versions[len(versions)-1].Version
		ch.XFirst, ch.XLast = "version "+strconv.FormatInt(ch.FirstVersion, 10), "version "+strconv.FormatInt(ch.LastVersion, 10)
	}
	ch.Desc = "From " + strconv.Itoa(ch.First) + " entries at " + ch.XFirst + " to " + strconv.Itoa(ch.Last) + " entries at " + ch.XLast + ". The table below gives every figure."
	if len(versions) == 0 {
		ch.Desc = "No version of the common list has been published yet."
	}
	return ch
}

// barChart lays out one bar per value, scaled to a round number above the
// largest, with ticks on the value axis; labels are the bars' tooltips.
// Any int is safe: the scale is worked in float64 and no sum or product
// of counts can overflow; a negative value draws as no bar.
func barChart(values []int, labels []string) chart {
	ch := chart{Width: 640, Height: 240, Left: 56, Bottom: 36, Top: 10}
	peak := 1
	for _, v := range values {
		peak = max(peak, v)
	}
	step := niceStep(peak)
	// ticks intervals of step reach peak; ticks*step may not fit an int.
	ticks := (peak-1)/step + 1
	top := float64(ticks) * float64(step)
	plotH := float64(ch.Height - ch.Bottom - ch.Top)
	plotW := float64(ch.Width - ch.Left - 10)
	for i := 0; i <= ticks; i++ {
		y := float64(i) * float64(step)
		label := strconv.FormatFloat(y, 'f', 0, 64)
		if i <= math.MaxInt/step {
			label = strconv.Itoa(i * step)
		}
		ch.YTicks = append(ch.YTicks, tick{Y: float64(ch.Top) + plotH - y/top*plotH, Label: label})
	}
	w := plotW / float64(max(1, len(values)))
	for i, v := range values {
		h := float64(max(v, 0)) / top * plotH
		ch.Bars = append(ch.Bars, bar{X: float64(ch.Left) + float64(i)*w + w*0.1, Y: float64(ch.Top) + plotH - h, W: w * 0.8, H: h, Label: labels[i]})
	}
	return ch
}

// niceStep is a tick interval of 1, 2 or 5 times a power of ten giving
// at most five intervals up to peak (1 for a peak below 1). It returns
// for every int: the products it compares are never formed, and the
// largest step it can need (2e18 for math.MaxInt64) fits.
func niceStep(peak int) int {
	if peak <= 5 {
		return 1
	}
	for base := 1; ; base *= 10 {
		for _, m := range []int{1, 2, 5} {
			// peak <= 5*m*base, without forming 5*m*base.
			if (peak-1)/(5*m) < base {
				return m * base
			}
		}
	}
}

// --- filtering owners ---

func (p *Pages) actor(c echo.Context) allowlist.Actor {
	a, _ := c.Get(ctxActor).(allowlist.Actor)
	return a
}

func (p *Pages) handleSignInForm(c echo.Context) error {
	return p.render(c, http.StatusOK, "signin", &page{Title: "Sign in"})
}

func (p *Pages) handleSignIn(c echo.Context) error {
	ip := c.RealIP()
	if wait, blocked := p.check.SignInBlocked(ip); blocked {
		return p.tooMany(c, wait, "There have been too many failed sign-ins from your network. Wait a few seconds and try again.")
	}
	token := strings.TrimSpace(c.FormValue("token"))
	a, err := p.svc.Tokens.Authenticate(c.Request().Context(), token)
	if err != nil && allowlist.ErrorCode(err) != allowlist.EUNAUTHORIZED {
		return p.fail(c, err)
	}
	// Signing in replaces whatever session this browser had, even when it
	// fails: the page after a failed attempt shows nobody signed in.
	if old := sessionID(c); old != "" {
		p.sessions.end(old)
		c.Set(ctxActor, allowlist.Actor{})
		c.Set(ctxSession, "")
		c.SetCookie(p.cookie(sessionCookie, "", -1))
	}
	if err != nil || (a.Role != allowlist.RoleOwner && a.Role != allowlist.RoleAdmin) {
		p.check.SignInFailed(ip)
		pg := &page{Title: "Sign in", Errors: []allowlist.FieldError{{Field: "token", Message: "Enter a valid filtering owner's or administrator's token"}}}
		return p.render(c, statusOf(allowlist.EUNAUTHORIZED), "signin", pg)
	}
	id := p.sessions.create(token, time.Now())
	c.SetCookie(p.cookie(sessionCookie, id, int(sessionTTL/time.Second)))
	if a.Role == allowlist.RoleAdmin {
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	return c.Redirect(http.StatusSeeOther, "/owner")
}

func (p *Pages) handleSignOutForm(c echo.Context) error {
	return p.render(c, http.StatusOK, "signout", &page{Title: "Sign out"})
}

func (p *Pages) handleSignOut(c echo.Context) error {
	if id := sessionID(c); id != "" {
		p.sessions.end(id)
	}
	c.SetCookie(p.cookie(sessionCookie, "", -1))
	return c.Redirect(http.StatusSeeOther, "/")
}

var proposeFields = []field{
	{"name", "Name of the tool", "For example, Jitsi Meet"},
	{"id", "Short identifier", "Lower-case letters, numbers and hyphens, for example jitsi-meet"},
	{"category", "Category", ""},
	{"domains", "Web addresses it needs", "One per line. Use *.example.org for a name and everything under it"},
	{"homepage", "Home page (optional)", "For example, https://meet.jit.si"},
	{"description", "What it is for (optional)", ""},
	{"owner_name", "Who runs the tool", "The supplier or team responsible for it"},
	{"networks", "Networks it needs (optional)", "One per line: prefix, protocol and ports, for example 52.112.0.0/14 udp 3478-3481"},
	{"tls_inspection", "TLS inspection", "Bypass only where the supplier says inspection breaks it"},
	{"proxy", "Proxy", "Direct only where the supplier says its traffic must not go through a proxy"},
	{"notes", "What breaks when it is blocked (optional)", "And where the figures come from"},
}

// parseNetworkLines reads the propose form's networks, one
// "PREFIX PROTOCOL PORTS" a line, or says which line is not.
func parseNetworkLines(text string) ([]allowlist.Network, []allowlist.FieldError) {
	var out []allowlist.Network
	var errs []allowlist.FieldError
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch len(f) {
		case 0:
			continue
		case 3:
			out = append(out, allowlist.Network{Prefix: f[0], Protocol: strings.ToLower(f[1]), Ports: f[2]})
		default:
			errs = append(errs, allowlist.FieldError{Field: "networks", Message: "line " + strconv.Itoa(i+1) + ": write a prefix, tcp or udp, and ports, as 52.112.0.0/14 udp 3478-3481"})
		}
	}
	return out, errs
}

func (p *Pages) handleProposeForm(c echo.Context) error {
	a := p.actor(c)
	return p.render(c, http.StatusOK, "propose", &page{Title: "Propose a site", ProposeFields: proposeFields, Categories: allowlist.Categories,
		Form: map[string]string{}, DepartmentName: p.deptName(c, a.Department)})
}

func (p *Pages) handlePropose(c echo.Context) error {
	a := p.actor(c)
	form := map[string]string{}
	for _, f := range proposeFields {
		form[f.Name] = strings.TrimSpace(c.FormValue(f.Name))
	}
	in := allowlist.SiteInput{ID: form["id"], Name: form["name"], Category: form["category"], Description: form["description"],
		Homepage: form["homepage"], Domains: strings.Fields(strings.ReplaceAll(form["domains"], ",", " ")), Owner: allowlist.Owner{Name: form["owner_name"]},
		Handling: allowlist.Handling{TLSInspection: form["tls_inspection"], Proxy: form["proxy"]}, Notes: form["notes"]}
	networks, lineErrs := parseNetworkLines(form["networks"])
	in.Networks = networks
	var site allowlist.Site
	var err error = allowlist.Invalid(lineErrs...)
	if len(lineErrs) == 0 {
		// One transaction: the site and this department's approval, or
		// neither.
		site, err = p.svc.Sites.ProposeSite(c.Request().Context(), a, in, "proposed by "+a.Department)
	}
	if err != nil {
		var ae *allowlist.Error
		if errors.As(err, &ae) && (ae.Code == allowlist.EINVALID || ae.Code == allowlist.ECONFLICT) {
			pg := &page{Title: "Propose a site", ProposeFields: proposeFields, Categories: allowlist.Categories, Form: form, DepartmentName: p.deptName(c, a.Department),
				Errors: proposeErrors(ae)}
			return p.render(c, statusOf(allowlist.EINVALID), "propose", pg)
		}
		return p.fail(c, err)
	}
	p.setFlash(c, "You proposed "+site.Name+" and approved it for "+p.deptName(c, a.Department)+".")
	return c.Redirect(http.StatusSeeOther, "/owner")
}

// proposeErrors says what is wrong with a proposal in the propose form's
// own terms: its fields, which line, in the order of the form.
func proposeErrors(ae *allowlist.Error) []allowlist.FieldError {
	var errs []allowlist.FieldError
	for _, f := range ae.Fields {
		name, msg := f.Field, f.Message
		switch {
		case strings.HasPrefix(name, "domains"):
			// domains[1]: say which line.
			if idx, ok := strings.CutPrefix(name, "domains["); ok {
				if n, err := strconv.Atoi(strings.TrimSuffix(idx, "]")); err == nil {
					msg = "line " + strconv.Itoa(n+1) + ": " + msg
				}
			}
			name = "domains"
		case strings.HasPrefix(name, "networks["):
			// networks[0].prefix: say which of them, and what.
			idx, part, _ := strings.Cut(strings.TrimPrefix(name, "networks["), "].")
			if n, err := strconv.Atoi(idx); err == nil {
				msg = "network " + strconv.Itoa(n+1) + " (" + part + "): " + msg
			}
			name = "networks"
		case strings.HasPrefix(name, "handling."):
			name = strings.TrimPrefix(name, "handling.")
		}
		if name == "owner.name" {
			name = "owner_name"
		}
		// Name the field in the summary, as people read it.
		for _, pf := range proposeFields {
			if pf.Name == name {
				msg = pf.Label + ": " + msg
			}
		}
		errs = append(errs, allowlist.FieldError{Field: name, Message: msg})
	}
	// In the order of the form.
	order := map[string]int{}
	for i, pf := range proposeFields {
		order[pf.Name] = i + 1
	}
	sort.SliceStable(errs, func(i, j int) bool { return order[errs[i].Field] < order[errs[j].Field] })
	if len(errs) == 0 {
		errs = []allowlist.FieldError{{Field: "name", Message: ae.Message}}
	}
	return errs
}
