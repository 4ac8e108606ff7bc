package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// The staff request tracking, owners' queues, approval renewal, webhooks
// and delivery logs: the API side of allowlist.Governance.

var errNoGovernance = allowlist.Errorf(allowlist.ENOTIMPLEMENTED, "this registry's store does not track requests or notifications")

func (s *Server) governance() (allowlist.Governance, error) {
	if s.gov == nil {
		return nil, errNoGovernance
	}
	return s.gov, nil
}

// Now is the registry's clock (tests and drills may move it).
func (s *Server) Now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// RequestCreated answers POST /v1/requests: the number of the contract's
// first version (id), and the reference and status page that let the
// requester follow it.
type RequestCreated struct {
	ID        int64  `json:"id"`
	Reference string `json:"reference"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
}

// RequestView is a staff request as anyone holding its reference sees it:
// never the requester's e-mail, nor who in the department answered.
type RequestView struct {
	Tool       string     `json:"tool"`
	URL        string     `json:"url"`
	Reason     string     `json:"reason"`
	Department string     `json:"department"`
	Status     string     `json:"status"`
	Answer     string     `json:"answer"`
	Site       string     `json:"site,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// PublicRequest returns what a reference holder may see of a request.
func PublicRequest(r allowlist.Request) RequestView {
	return RequestView{Tool: r.Tool, URL: r.URL, Reason: r.Reason, Department: r.Department, Status: r.Status, Answer: r.Answer,
		Site: r.Site, CreatedAt: r.CreatedAt, AnsweredAt: r.AnsweredAt, UpdatedAt: r.UpdatedAt}
}

// FindRequest returns a request's public view by reference. ENOTFOUND.
func (s *Server) FindRequest(ctx context.Context, reference string) (RequestView, error) {
	g, err := s.governance()
	if err != nil {
		return RequestView{}, err
	}
	r, err := g.FindRequestByReference(ctx, reference)
	if err != nil {
		return RequestView{}, err
	}
	return PublicRequest(r), nil
}

func (s *Server) handleRequestStatus(c echo.Context) error {
	v, err := s.FindRequest(c.Request().Context(), c.Param("reference"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

func requestID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("reference"), 10, 64)
	if err != nil || id <= 0 {
		return 0, allowlist.Errorf(allowlist.ENOTFOUND, "request %q not found: owners act on a request by its number", c.Param("reference"))
	}
	return id, nil
}

// handleRequestAnswer lets an owner of the request's department (or an
// admin) answer, decline or link a request.
func (s *Server) handleRequestAnswer(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	var in allowlist.RequestAnswer
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := g.AnswerRequest(c.Request().Context(), actorOf(c), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// handleRequestGroups shows owners the demand for each tool.
func (s *Server) handleRequestGroups(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	dept, err := ownDepartment(c)
	if err != nil {
		return err
	}
	groups, err := g.FindRequestGroups(c.Request().Context(), dept)
	if err != nil {
		return err
	}
	if groups == nil {
		groups = []allowlist.RequestGroup{}
	}
	return c.JSON(http.StatusOK, groups)
}

// ownDepartment is an owner's department, or the ?department= an admin
// asks for ("" for all).
func ownDepartment(c echo.Context) (string, error) {
	a := actorOf(c)
	dept := c.QueryParam("department")
	if a.Role == allowlist.RoleOwner {
		if dept != "" && dept != a.Department {
			return "", errForbidden
		}
		dept = a.Department
	}
	return dept, nil
}

func (s *Server) handleQueue(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	if _, err := s.svc.Departments.FindDepartment(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	q, err := g.Queue(c.Request().Context(), c.Param("id"), s.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, q)
}

func (s *Server) handleSignoffRenew(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	site, err := g.RenewSignoff(c.Request().Context(), actorOf(c), c.Param("id"), c.Param("department"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(actorOf(c), site))
}

// WebhookCreated shows a new webhook with its signing secret, once.
type WebhookCreated struct {
	allowlist.Webhook
	Secret string `json:"secret"`
}

func (s *Server) handleWebhookSet(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	var in struct {
		URL string `json:"url"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	w, secret, err := g.SetWebhook(c.Request().Context(), actorOf(c), c.Param("id"), in.URL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, WebhookCreated{Webhook: w, Secret: secret})
}

func (s *Server) handleWebhookGet(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	w, err := g.FindWebhook(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, w)
}

func (s *Server) handleWebhookDelete(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	if err := g.DeleteWebhook(c.Request().Context(), actorOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleDeliveries(c echo.Context) error {
	g, err := s.governance()
	if err != nil {
		return err
	}
	if _, err := s.svc.Departments.FindDepartment(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	limit, err := pageLimit(c, allowlist.DefaultDeliveries)
	if err != nil {
		return err
	}
	ds, err := g.FindDeliveries(c.Request().Context(), c.Param("id"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ds)
}

// whyNot explains a name that is not on scope's list; form is the
// request page that asks for it.
func (s *Server) whyNot(ctx context.Context, host, scope, form string) (*allowlist.Explanation, error) {
	p := allowlist.Policy{Quorum: s.cfg.Quorum}
	if s.gov == nil {
		e := allowlist.WhyNot(nil, scope, nil, p, form)
		return &e, nil
	}
	var site *allowlist.Site
	var expired []allowlist.Signoff
	found, err := s.gov.FindSiteByName(ctx, host)
	switch {
	case err == nil:
		site = &found
		if expired, err = s.gov.FindExpiredSignoffs(ctx, found.ID); err != nil {
			return nil, err
		}
	case allowlist.ErrorCode(err) != allowlist.ENOTFOUND:
		return nil, err
	}
	e := allowlist.WhyNot(site, scope, expired, p, form)
	return &e, nil
}

// queueStats is what a store that keeps queues can count for metrics.
type queueStats interface {
	QueueStats(ctx context.Context, now time.Time) (waiting, overdue map[string]int, err error)
}

// queueCollector reports, at each scrape, what waits for each department
// and what of it is overdue under the decision SLA.
type queueCollector struct {
	s                *Server
	stats            queueStats
	waiting, overdue *prometheus.Desc
	// The counts read every site (about a second at 100,000 entries):
	// scrapes within a minute of each other share them.
	mu     sync.Mutex
	at     time.Time
	counts [2]map[string]int
}

func newQueueCollector(s *Server, stats queueStats) *queueCollector {
	return &queueCollector{s: s, stats: stats,
		waiting: prometheus.NewDesc("allowlist_decisions_waiting", "Sites awaiting a department's decision and staff requests not yet answered.", []string{"department"}, nil),
		overdue: prometheus.NewDesc("allowlist_decisions_overdue", "Of those, the ones waiting longer than the decision SLA.", []string{"department"}, nil),
	}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- q.waiting; ch <- q.overdue }

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if time.Since(q.at) > time.Minute {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		waiting, overdue, err := q.stats.QueueStats(ctx, q.s.Now())
		if err != nil {
			q.s.log.Warn("queue metrics", "err", err)
			return
		}
		q.at, q.counts = time.Now(), [2]map[string]int{waiting, overdue}
	}
	waiting, overdue := q.counts[0], q.counts[1]
	for d, n := range waiting {
		ch <- prometheus.MustNewConstMetric(q.waiting, prometheus.GaugeValue, float64(n), d)
		ch <- prometheus.MustNewConstMetric(q.overdue, prometheus.GaugeValue, float64(overdue[d]), d)
	}
}
