// Package api serves the registry's REST API with echo: the routes, who
// may call each, problem+json errors, list publishing with ETags and the
// watch long-poll. It knows the registry only through the services of
// allowlist.Registry, each handler through those it uses.
package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// Config configures the API.
type Config struct {
	// PublicLists lets anyone read published lists; when false, a token
	// (any role) is needed.
	PublicLists bool
	// Quorum is shown to staff in check answers.
	Quorum int
	// PublicURL is the address people reach the registry at, used in
	// answers that send them to a page (such as the request form).
	PublicURL string
	// RequestsPerMinute bounds anonymous staff requests per client address.
	RequestsPerMinute int
	// MaxWatch caps the watch timeout a client may ask for.
	MaxWatch time.Duration
	// WatchesPerAddress caps the watches one client address may hold open
	// at once (default 64: a department's resolvers behind one NAT).
	WatchesPerAddress int
	// RefreshEvery is how often the server re-reads scope versions written
	// by other processes.
	RefreshEvery time.Duration
	// TimestampEvery is how often each scope's freshness timestamp is
	// signed again (default 10s): a client's list never looks fresher
	// than this, nor, while it can reach the registry, much staler.
	TimestampEvery time.Duration
	Logger         *slog.Logger
	// Ready reports whether the store is usable (for /readyz).
	Ready func(context.Context) error
	// Now is the registry's clock (default time.Now).
	Now func() time.Time
	// UsageK is the least number of distinct clients a refused domain
	// needs in a usage report, and in the cross-government totals anyone
	// may see (default 5; a report's own k counts when larger).
	UsageK int
	// UsageBurst and UsageEvery bound the usage reports one token may
	// send: a burst of UsageBurst, then one per UsageEvery (defaults 10
	// and 30s; a resolver sends one per period, at least a minute).
	UsageBurst int
	UsageEvery time.Duration
}

// Defaults the API owns; the command line's configuration takes them from
// here.
const (
	// DefaultRequestsPerMinute bounds anonymous staff requests per address.
	DefaultRequestsPerMinute = 10
	// DefaultTimestampEvery is how often freshness timestamps are signed.
	DefaultTimestampEvery = 10 * time.Second
	// DefaultWatchesPerAddress caps one address's open watches: a
	// department's resolvers behind one NAT.
	DefaultWatchesPerAddress = 64
	// DefaultMaxWatch caps the watch timeout a client may ask for.
	DefaultMaxWatch = 5 * time.Minute
	// DefaultRefreshEvery is how often versions other processes wrote are
	// read.
	DefaultRefreshEvery = 2 * time.Second
	// DefaultUsageBurst and DefaultUsageEvery bound one token's usage
	// reports: a resolver sends one per period (at least a minute) and
	// backs off when it retries, so it never meets the limit.
	DefaultUsageBurst = 10
	DefaultUsageEvery = 30 * time.Second
)

// Server is the REST API.
type Server struct {
	failures     *failureLimiter
	watches      *watchLimiter
	reports      *tokenLimiter
	requestLimit *middleware.RateLimiterMemoryStore
	// svc is the registry by noun, what handlers use; reg is the store
	// itself, for the optional services found by type assertion (gov,
	// TSIG keys, queue statistics).
	svc     allowlist.Services
	reg     allowlist.Registry
	gov     allowlist.Governance // nil when the store has none
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	hub     *hub
	metrics *metrics
	routes  []route
	// pageError answers errors outside the API (the pages' HTML errors).
	pageError func(echo.Context, *allowlist.Error)
	ground    groundSites // common-ground's sites, between changes
}

// access says who may call a route.
type access int

const (
	public     access = iota // anyone
	listReader               // anyone when lists are public, else any token
	ownerAny                 // any owner, or admin
	ownerParam               // an owner of the department named by the route, or admin
	siteOwner                // an owner of the site's proposing department, or admin
	adminOnly                // admin
	reporter                 // a reader token bound to a department (a resolver sending usage)
)

// route is one endpoint: the single table of what the API serves and who
// may call it.
type route struct {
	method, path string
	handler      echo.HandlerFunc
	access       access
	param        string // the path parameter naming the department, for ownerParam
	limited      bool   // rate limited per client address
}

func (s *Server) table() []route {
	return []route{
		{method: "GET", path: "/healthz", handler: s.handleHealth, access: public},
		{method: "GET", path: "/readyz", handler: s.handleReady, access: public},
		{method: "GET", path: "/metrics", handler: s.handleMetrics, access: public},
		{method: "GET", path: "/v1/openapi.json", handler: s.handleOpenAPI, access: public},

		{method: "POST", path: "/v1/departments", handler: s.handleDepartmentCreate, access: adminOnly},
		{method: "GET", path: "/v1/departments", handler: s.handleDepartmentList, access: public},
		{method: "GET", path: "/v1/departments/:id", handler: s.handleDepartmentGet, access: public},
		{method: "POST", path: "/v1/departments/:id/contacts", handler: s.handleContactCreate, access: ownerParam, param: "id"},
		{method: "GET", path: "/v1/departments/:id/contacts", handler: s.handleContactList, access: ownerAny},

		{method: "POST", path: "/v1/tokens", handler: s.handleTokenCreate, access: adminOnly},
		{method: "GET", path: "/v1/tokens", handler: s.handleTokenList, access: adminOnly},
		{method: "DELETE", path: "/v1/tokens/:id", handler: s.handleTokenRevoke, access: adminOnly},
		{method: "POST", path: "/v1/tsig-keys", handler: s.handleTSIGCreate, access: adminOnly},
		{method: "GET", path: "/v1/tsig-keys", handler: s.handleTSIGList, access: adminOnly},
		{method: "DELETE", path: "/v1/tsig-keys/:id", handler: s.handleTSIGRevoke, access: adminOnly},

		{method: "POST", path: "/v1/sites", handler: s.handleSiteCreate, access: ownerAny},
		{method: "GET", path: "/v1/sites", handler: s.handleSiteList, access: public},
		{method: "GET", path: "/v1/sites/:id", handler: s.handleSiteGet, access: public},
		{method: "PATCH", path: "/v1/sites/:id", handler: s.handleSiteUpdate, access: siteOwner},
		{method: "PUT", path: "/v1/sites/:id/signoffs/:department", handler: s.handleSignoffSet, access: ownerParam, param: "department"},
		{method: "DELETE", path: "/v1/sites/:id/signoffs/:department", handler: s.handleSignoffDelete, access: ownerParam, param: "department"},
		{method: "POST", path: "/v1/sites/:id/suspend", handler: s.handleSiteSuspend, access: adminOnly},
		{method: "POST", path: "/v1/sites/:id/reinstate", handler: s.handleSiteReinstate, access: adminOnly},

		{method: "GET", path: "/v1/check", handler: s.handleCheck, access: public},
		{method: "GET", path: "/v1/common-ground", handler: s.handleCommonGround, access: public},
		{method: "POST", path: "/v1/requests", handler: s.handleRequestCreate, access: public, limited: true},
		{method: "GET", path: "/v1/requests", handler: s.handleRequestList, access: ownerAny},
		{method: "GET", path: "/v1/requests/groups", handler: s.handleRequestGroups, access: ownerAny},
		{method: "GET", path: "/v1/requests/:reference", handler: s.handleRequestStatus, access: public},
		{method: "POST", path: "/v1/requests/:reference/answer", handler: s.handleRequestAnswer, access: ownerAny},
		{method: "GET", path: "/v1/departments/:id/queue", handler: s.handleQueue, access: ownerParam, param: "id"},
		{method: "PUT", path: "/v1/departments/:id/webhook", handler: s.handleWebhookSet, access: ownerParam, param: "id"},
		{method: "GET", path: "/v1/departments/:id/webhook", handler: s.handleWebhookGet, access: ownerParam, param: "id"},
		{method: "DELETE", path: "/v1/departments/:id/webhook", handler: s.handleWebhookDelete, access: ownerParam, param: "id"},
		{method: "GET", path: "/v1/departments/:id/deliveries", handler: s.handleDeliveries, access: ownerParam, param: "id"},
		{method: "POST", path: "/v1/sites/:id/signoffs/:department/renew", handler: s.handleSignoffRenew, access: ownerParam, param: "department"},

		{method: "GET", path: "/v1/audit", handler: s.handleAudit, access: adminOnly},

		{method: "GET", path: "/v1/lists", handler: s.handleScopes, access: listReader},
		{method: "GET", path: "/v1/lists/:scope", handler: s.handleList, access: listReader},
		{method: "HEAD", path: "/v1/lists/:scope", handler: s.handleList, access: listReader},
		{method: "GET", path: "/v1/lists/:scope/versions", handler: s.handleVersions, access: listReader},
		{method: "GET", path: "/v1/lists/:scope/versions/:n", handler: s.handleVersion, access: listReader},
		{method: "GET", path: "/v1/lists/:scope/diff", handler: s.handleDiff, access: listReader},
		{method: "GET", path: "/v1/lists/:scope/watch", handler: s.handleWatch, access: listReader},
		// HEAD on a watch waits as GET does and answers with the headers
		// alone: a resolver that holds the previous version learns the new
		// one's identity and signature, then takes the change as a diff.
		{method: "HEAD", path: "/v1/lists/:scope/watch", handler: s.handleWatch, access: listReader},
		{method: "GET", path: "/v1/keys", handler: s.handleKeys, access: public},

		{method: "POST", path: "/v1/usage", handler: s.handleUsageReport, access: reporter},
		{method: "GET", path: "/v1/usage", handler: s.handleUsage, access: public},
		{method: "GET", path: "/v1/departments/:id/usage", handler: s.handleDepartmentUsage, access: ownerParam, param: "id"},
	}
}

// New builds the API over a registry. Subscribe Published to the store
// (allowlist.Subscriber), and call Start to keep versions fresh.
func New(reg allowlist.Registry, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{reg: reg, svc: allowlist.ServicesOf(reg), cfg: cfg, log: cfg.Logger, hub: newHub(reg), metrics: newMetrics(), failures: newFailureLimiter(), watches: newWatchLimiter(cfg.WatchesPerAddress),
		reports: newTokenLimiter(cmp.Or(cfg.UsageBurst, DefaultUsageBurst), cmp.Or(cfg.UsageEvery, DefaultUsageEvery))}
	s.hub.stampEvery = cfg.TimestampEvery
	s.gov, _ = reg.(allowlist.Governance)
	if qs, ok := reg.(queueStats); ok {
		s.metrics.registry.MustRegister(newQueueCollector(s, qs))
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.logRequests, middleware.Recover(), s.authenticate)
	s.routes = s.table()
	s.addRoutes(e, s.staffRequestLimiter())
	// Only real clients' addresses count; X-Forwarded-For is trusted only
	// from loopback (a local reverse proxy).
	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
	s.echo = e
	return s
}

// withDefaults fills in what cfg leaves unset.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxWatch <= 0 {
		cfg.MaxWatch = DefaultMaxWatch
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.TimestampEvery <= 0 {
		cfg.TimestampEvery = DefaultTimestampEvery
	}
	if cfg.RequestsPerMinute <= 0 {
		cfg.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if cfg.WatchesPerAddress <= 0 {
		cfg.WatchesPerAddress = DefaultWatchesPerAddress
	}
	if cfg.Quorum <= 0 {
		cfg.Quorum = allowlist.DefaultQuorum
	}
	return cfg
}

// staffRequestLimiter is one allowance per client address for staff
// requests, spent by the API and the pages alike (StaffRequestAllowed).
func (s *Server) staffRequestLimiter() echo.MiddlewareFunc {
	s.requestLimit = middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(float64(s.cfg.RequestsPerMinute) / 60), Burst: s.cfg.RequestsPerMinute, ExpiresIn: 10 * time.Minute,
	})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               s.requestLimit,
		IdentifierExtractor: func(c echo.Context) (string, error) { return addressKey(c.RealIP()), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(s.requestWait()/time.Second)))
			return allowlist.Errorf(allowlist.ETOOMANY, "too many requests from this address; try again later")
		},
	})
}

// addRoutes registers s.routes, each behind its access rule (and limiter
// when limited). HEAD answers wherever GET does: the same handler, whose
// body net/http discards for HEAD.
func (s *Server) addRoutes(e *echo.Echo, limiter echo.MiddlewareFunc) {
	explicitHead := map[string]bool{}
	for _, r := range s.routes {
		if r.method == http.MethodHead {
			explicitHead[r.path] = true
		}
	}
	for _, r := range s.routes {
		mw := []echo.MiddlewareFunc{s.authorize(r)}
		if r.limited {
			mw = append([]echo.MiddlewareFunc{limiter}, mw...)
		}
		e.Add(r.method, r.path, r.handler, mw...)
		if r.method == http.MethodGet && !explicitHead[r.path] {
			e.Add(http.MethodHead, r.path, r.handler, mw...)
		}
	}
}

// StaffRequestAllowed spends one of ip's staff requests, shared by POST
// /v1/requests and the request page; when none is left it says how long
// to wait.
func (s *Server) StaffRequestAllowed(ip string) (time.Duration, bool) {
	ok, err := s.requestLimit.Allow(addressKey(ip))
	if err != nil || !ok {
		return s.requestWait(), false
	}
	return 0, true
}

func (s *Server) requestWait() time.Duration {
	return time.Duration(max(1, 60/s.cfg.RequestsPerMinute)) * time.Second
}

// SignInBlocked reports whether ip has used up its failed authentications
// (bearer tokens on the API and sign-ins on the pages count together).
func (s *Server) SignInBlocked(ip string) (time.Duration, bool) { return s.failures.blocked(ip) }

// SignInFailed records a failed authentication from ip.
func (s *Server) SignInFailed(ip string) { s.failures.fail(ip) }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Published hands the API a version the store has just committed: its
// JSON is served from the bytes already in memory (a watcher woken by it
// is answered without reading the body back), and watchers are woken.
// Subscribe it to the store (allowlist.Subscriber).
func (s *Server) Published(v allowlist.Version) {
	s.hub.prime(v)
	s.Notify(v.Scope, v.Version)
}

// Notify tells watchers that a scope moved to version (known without its
// body, as when another process published it).
func (s *Server) Notify(scope string, version int64) {
	s.hub.notify(scope, version)
	s.metrics.listVersion.WithLabelValues(scope).Set(float64(version))
}

// Start loads the current versions and keeps re-reading them until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if err := s.refresh(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(s.cfg.RefreshEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("refresh list versions", "err", err)
				}
			}
		}
	}()
	return nil
}

// Refresh reads every scope's current version now, waking the watchers of
// those that moved (as after reconnecting to a database other instances
// write to).
func (s *Server) Refresh(ctx context.Context) error { return s.refresh(ctx) }

func (s *Server) refresh(ctx context.Context) error {
	scopes, err := s.svc.Lists.FindScopes(ctx)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		s.Notify(sc.Scope, sc.Version)
	}
	return nil
}

func actorOf(c echo.Context) allowlist.Actor {
	a, _ := c.Get("actor").(allowlist.Actor)
	return a
}

// authenticate reads a bearer token, if any. A token that is sent but
// unknown is refused everywhere, with the same answer for every failure.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		if h == "" {
			return next(c)
		}
		ip := c.RealIP()
		if wait, blocked := s.failures.blocked(ip); blocked {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			return allowlist.Errorf(allowlist.ETOOMANY, "too many failed sign-ins from this address; try again later")
		}
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			s.failures.fail(ip)
			return allowlist.Errorf(allowlist.EUNAUTHORIZED, "missing, unknown, expired or revoked token")
		}
		a, err := s.svc.Tokens.Authenticate(c.Request().Context(), strings.TrimSpace(secret))
		if err != nil {
			if allowlist.ErrorCode(err) == allowlist.EUNAUTHORIZED {
				s.failures.fail(ip)
			}
			return err
		}
		c.Set("actor", a)
		return next(c)
	}
}

var (
	errNeedToken = allowlist.Errorf(allowlist.EUNAUTHORIZED, "this needs a token: send Authorization: Bearer TOKEN")
	errForbidden = allowlist.Errorf(allowlist.EFORBIDDEN, "your token does not allow this")
)

// authorize enforces a route's access rule before its handler runs.
func (s *Server) authorize(r route) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a := actorOf(c)
			allowed := false
			switch r.access {
			case public:
				allowed = true
			case listReader:
				allowed = s.cfg.PublicLists || a.Role != ""
			case ownerAny:
				allowed = a.Role == allowlist.RoleAdmin || a.Role == allowlist.RoleOwner
			case ownerParam:
				allowed = a.Role == allowlist.RoleAdmin || (a.Role == allowlist.RoleOwner && a.Department == c.Param(r.param))
			case siteOwner:
				allowed = a.Role == allowlist.RoleAdmin
				if a.Role == allowlist.RoleOwner {
					site, err := s.svc.Sites.FindSite(c.Request().Context(), c.Param("id"))
					if err != nil {
						return err
					}
					allowed = site.ProposedBy == a.Department
				}
			case adminOnly:
				allowed = a.Role == allowlist.RoleAdmin
			case reporter:
				allowed = a.Role == allowlist.RoleReader && a.Department != ""
			}
			if allowed {
				return next(c)
			}
			if a.Role == "" {
				return errNeedToken
			}
			return errForbidden
		}
	}
}

// logRequests writes one structured line per request and records metrics.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, d)
		path := c.Request().URL.Path
		if strings.Contains(route, ":reference") {
			path = route // a request's reference is a capability: never logged
		}
		s.log.Info("request", "method", c.Request().Method, "route", route, "path", path,
			"status", status, "duration_ms", float64(d.Microseconds())/1000, "remote", c.RealIP(), "actor", actorOf(c).String())
		return nil
	}
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(c echo.Context) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(c.Request().Context()); err != nil {
			s.log.Warn("not ready", "err", err)
			return allowlist.Errorf(allowlist.EUNAVAILABLE, "the database is not usable")
		}
	}
	if _, ok := s.hub.version(allowlist.ScopeCommon); !ok {
		return allowlist.Errorf(allowlist.EUNAVAILABLE, "list versions not loaded yet")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleMetrics(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// Route is a registered method and path, for documentation checks.
type Route struct{ Method, Path string }

// Routes lists every route the server registers.
func (s *Server) Routes() []Route {
	out := make([]Route, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, Route{r.method, r.path})
	}
	return out
}
