package allowlist

import (
	"context"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Staff request statuses. A request is received until an owner of its
// department answers it or links it to a site (in review), and ends
// allowed (the linked site reached the department's list, or an owner
// said so) or declined (with a reason).
const (
	RequestReceived = "received"
	RequestInReview = "in-review"
	RequestAllowed  = "allowed"
	RequestDeclined = "declined"
)

// RequestAnswer is what an owner does with a staff request: Status is
// in-review, allowed or declined (a decline needs Answer, the reason);
// Site links the request to a site, after which it becomes allowed by
// itself once the site reaches the request's department list.
type RequestAnswer struct {
	Status string `json:"status"`
	Answer string `json:"answer"`
	Site   string `json:"site"`
	// Group applies the answer to every open request for the same tool
	// in the same department.
	Group bool `json:"group"`
}

// ValidateRequestAnswer checks an owner's answer. EINVALID.
func ValidateRequestAnswer(in RequestAnswer) error {
	var c checker
	switch in.Status {
	case "", RequestInReview, RequestAllowed:
	case RequestDeclined:
		if strings.TrimSpace(in.Answer) == "" {
			c.add("answer", "a decline needs a reason the requester can read")
		}
	default:
		c.add("status", "must be in-review, allowed or declined")
	}
	c.text("answer", in.Answer, false, maxText)
	if in.Site != "" && !ValidSiteID(in.Site) {
		c.add("site", "is not a site id")
	}
	if in.Status == "" && in.Answer == "" && in.Site == "" {
		c.add("status", "give a status, an answer or a site")
	}
	return c.err()
}

// Policy is the registry's governance configuration. Zero values turn each
// rule off; every process sharing a database must use the same policy.
type Policy struct {
	// Quorum is the number of approvals that put a site on common.
	Quorum int
	// ConsensusSponsors and ConsensusAfter are lazy consensus: a site
	// approved by at least ConsensusSponsors departments, with no
	// objection for ConsensusAfter, joins common without a quorum.
	// Off while ConsensusAfter is zero.
	ConsensusSponsors int
	ConsensusAfter    time.Duration
	// DecisionSLA is how long a decision may wait for a department before
	// it is overdue. Off while zero.
	DecisionSLA time.Duration
	// ApprovalMaxAge is how long an approval counts before it must be
	// renewed; ApprovalWarning is how long before that its department is
	// told. An approval never expires sooner than ApprovalWarning after
	// that notice was sent. Off while ApprovalMaxAge is zero.
	ApprovalMaxAge  time.Duration
	ApprovalWarning time.Duration
}

// Rule names recorded in the audit log for changes the registry makes by
// itself.
const (
	RuleLazyConsensus  = "lazy-consensus"
	RuleApprovalExpiry = "approval-expiry"
)

// Sponsors returns the departments whose approval covers the site's
// current domains, ordered by when they approved.
func Sponsors(s Site) []Signoff {
	var out []Signoff
	for _, so := range s.Signoffs {
		if so.Decision == DecisionApprove && covers(s.History[so.Revision], s.Domains) {
			out = append(out, so)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Objections returns the objections on a site.
func Objections(s Site) []Signoff {
	var out []Signoff
	for _, so := range s.Signoffs {
		if so.Decision == DecisionObject {
			out = append(out, so)
		}
	}
	return out
}

// ConsensusDue returns when a site joins common by lazy consensus: the
// moment its ConsensusSponsors-th sponsor approved its current domains,
// or the latest decision on the site, or withdrawn (when a decision on it
// was last withdrawn), whichever is latest, plus ConsensusAfter. It is
// false while the rule is off, the site is not live, common already lists
// its current domains, it has fewer sponsors, or any department objects:
// an objection stops the clock, and its withdrawal starts it again.
func ConsensusDue(s Site, p Policy, withdrawn time.Time) (time.Time, bool) {
	if p.ConsensusAfter <= 0 || !live(s) || s.Consensus == s.Revision {
		return time.Time{}, false
	}
	if len(Objections(s)) > 0 {
		return time.Time{}, false
	}
	if slices.Equal(PublishedDomains(s, p.Quorum), s.Domains) {
		return time.Time{}, false
	}
	n := max(p.ConsensusSponsors, 1)
	sp := Sponsors(s)
	if len(sp) < n {
		return time.Time{}, false
	}
	start := sp[n-1].At
	for _, so := range s.Signoffs {
		if so.At.After(start) {
			start = so.At // the latest decision on the site
		}
	}
	if withdrawn.After(start) {
		start = withdrawn
	}
	return start.Add(p.ConsensusAfter), true
}

// Approval states.
const (
	ApprovalCurrent  = "current"
	ApprovalExpiring = "expiring" // inside the warning period
	ApprovalExpired  = "expired"
)

// ApprovalClock is when an approval was given or last renewed, and when
// its department was warned that it is about to expire (zero if not yet).
type ApprovalClock struct {
	Since    time.Time
	WarnedAt time.Time
}

// ApprovalTimes returns when an approval's department is to be warned and
// when the approval expires. An approval never expires before its warning
// was sent and ApprovalWarning has passed since: expires is zero while no
// warning was sent. ok is false when expiry is off.
func ApprovalTimes(c ApprovalClock, p Policy) (warn, expires time.Time, ok bool) {
	if p.ApprovalMaxAge <= 0 {
		return time.Time{}, time.Time{}, false
	}
	end := c.Since.Add(p.ApprovalMaxAge)
	warn = end.Add(-p.ApprovalWarning)
	if c.WarnedAt.IsZero() || c.WarnedAt.Before(c.Since) {
		return warn, time.Time{}, true
	}
	expires = end
	if late := c.WarnedAt.Add(p.ApprovalWarning); late.After(expires) {
		expires = late
	}
	return warn, expires, true
}

// ApprovalState says whether an approval still counts at now.
func ApprovalState(c ApprovalClock, now time.Time, p Policy) string {
	warn, expires, ok := ApprovalTimes(c, p)
	switch {
	case !ok || now.Before(warn):
		return ApprovalCurrent
	case !expires.IsZero() && !now.Before(expires):
		return ApprovalExpired
	default:
		return ApprovalExpiring
	}
}

// FallsBelowQuorum reports whether common stops listing some of the site's
// published domains once dept's decision no longer counts.
func FallsBelowQuorum(s Site, dept string, quorum int) bool {
	before := PublishedDomains(s, quorum)
	if len(before) == 0 {
		return false
	}
	t := s
	t.Signoffs = slices.DeleteFunc(slices.Clone(s.Signoffs), func(so Signoff) bool { return so.Department == dept })
	return !slices.Equal(PublishedDomains(t, quorum), before)
}

// awaitsDecision reports whether a site waits for dept's decision: it is
// live, common does not list its current domains, networks or handling
// yet, and dept has not decided on them. Undecided is the one rule of a
// department's queue (Governance.Queue), for the API and the pages.
func awaitsDecision(s Site, dept string, quorum int) bool {
	return len(Undecided(s, []string{dept}, quorum)) == 1
}

// Undecided returns the departments of depts whose decision the site
// awaits (see awaitsDecision).
func Undecided(s Site, depts []string, quorum int) []string {
	if !live(s) {
		return nil
	}
	current := revisionEndpoints(s, s.Revision)
	if slices.Equal(PublishedDomains(s, quorum), s.Domains) {
		if published, _ := PublishedEndpoints(s, quorum); endpointsCover(published, current) {
			return nil
		}
	}
	var out []string
	for _, d := range depts {
		decided := slices.ContainsFunc(s.Signoffs, func(so Signoff) bool {
			return so.Department == d && covers(s.History[so.Revision], s.Domains) && endpointsCover(revisionEndpoints(s, so.Revision), current)
		})
		if !decided {
			out = append(out, d)
		}
	}
	return out
}

// Overdue reports whether something waiting since since has waited longer
// than the decision SLA at now.
func Overdue(since, now time.Time, p Policy) bool {
	return p.DecisionSLA > 0 && now.Sub(since) > p.DecisionSLA
}

// The kinds of QueueItem.
const (
	QueueSite    = "site"    // a site to decide on (ID is its id)
	QueueRequest = "request" // a staff request to answer (ID is its number)
)

// QueueItem is one thing waiting for a department: a site to decide on or
// a staff request to answer.
type QueueItem struct {
	Kind    string    `json:"kind"` // QueueSite or QueueRequest
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Since   time.Time `json:"since"`
	Overdue bool      `json:"overdue"`
}

// SortQueue puts overdue items first, then the longest waiting.
func SortQueue(items []QueueItem) {
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Overdue != items[j].Overdue {
			return items[i].Overdue
		}
		if !items[i].Since.Equal(items[j].Since) {
			return items[i].Since.Before(items[j].Since)
		}
		return items[i].ID < items[j].ID
	})
}

// InScope reports whether a department's list carries the site: common
// lists it and the department did not object, or the department approved
// some revision of it itself.
func InScope(s Site, dept string, quorum int) bool {
	if !live(s) {
		return false
	}
	for _, so := range s.Signoffs {
		if so.Department != dept {
			continue
		}
		if so.Decision == DecisionObject {
			return false
		}
		if len(latestCovered(s, s.History[so.Revision])) > 0 {
			return true
		}
	}
	return len(PublishedDomains(s, quorum)) > 0
}

// RequestGroup is the staff requests for one tool in one department.
type RequestGroup struct {
	Department string    `json:"department"`
	Key        string    `json:"key"`
	Tool       string    `json:"tool"`
	Count      int       `json:"count"`
	Open       int       `json:"open"`
	First      time.Time `json:"first_at"`
	Last       time.Time `json:"last_at"`
	Requests   []int64   `json:"requests"`
}

// GroupKey names the tool a request asks for, so that requests for the
// same tool group together: the host of its URL without "www.", or else
// its name in lower case with spaces collapsed.
func GroupKey(tool, rawURL string) string {
	if rawURL != "" {
		u, err := url.Parse(strings.TrimSpace(rawURL))
		if err == nil && u.Hostname() != "" {
			return strings.TrimPrefix(strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), "www.")
		}
	}
	return strings.Join(strings.Fields(strings.ToLower(tool)), " ")
}

// GroupRequests groups requests by department and GroupKey: the most
// asked-for first (by open requests, then all), then by key.
func GroupRequests(rs []Request) []RequestGroup {
	index := map[[2]string]int{}
	var out []RequestGroup
	for _, r := range rs {
		k := [2]string{r.Department, GroupKey(r.Tool, r.URL)}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, RequestGroup{Department: k[0], Key: k[1], Tool: r.Tool, First: r.CreatedAt, Last: r.CreatedAt})
		}
		g := &out[i]
		g.Count++
		if r.Status == RequestReceived || r.Status == RequestInReview {
			g.Open++
		}
		if r.CreatedAt.Before(g.First) {
			g.First = r.CreatedAt
		}
		if !r.CreatedAt.Before(g.Last) {
			g.Last, g.Tool = r.CreatedAt, r.Tool
		}
		g.Requests = append(g.Requests, r.ID)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Open != b.Open {
			return a.Open > b.Open
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Department != b.Department {
			return a.Department < b.Department
		}
		return a.Key < b.Key
	})
	return out
}

// Reasons a name is not allowed, in WhyNot's answer.
const (
	WhyNotListed     = "not-in-catalogue"
	WhyProposed      = "proposed"
	WhyObjected      = "objected"
	WhySuspended     = "suspended"
	WhyWithdrawn     = "withdrawn"
	WhyExpired       = "approval-expired"
	WhyChangePending = "change-pending"
)

// Explanation says why a name is not on a list, in plain English, with
// the facts behind it.
type Explanation struct {
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	Site      string    `json:"site,omitempty"`
	Approvals []string  `json:"approvals"`
	Needed    int       `json:"needed"`
	Objection *Signoff  `json:"objection,omitempty"`
	Expired   []Signoff `json:"expired,omitempty"`
	// RequestURL is the page where staff ask for a tool.
	RequestURL string `json:"request_url"`
}

// WhyNot explains why a name is not on scope's list (ScopeCommon or a
// department): site is the catalogue site holding the name (nil when none
// does) and expired its approvals that expired. requestURL is the page
// where staff ask for a tool.
func WhyNot(site *Site, scope string, expired []Signoff, p Policy, requestURL string) Explanation {
	e := Explanation{Approvals: []string{}, RequestURL: requestURL}
	ask := " Ask for it at " + requestURL + "."
	if site == nil {
		e.Reason = WhyNotListed
		e.Message = "This tool is not in the catalogue. Nobody has proposed it yet." + ask + " Your organisation's filtering owners will review your request."
		return e
	}
	s := *site
	e.Site = s.ID
	for _, so := range Sponsors(s) {
		e.Approvals = append(e.Approvals, so.Department)
	}
	e.Needed = max(p.Quorum-len(e.Approvals), 0)
	if scope != ScopeCommon {
		for _, so := range s.Signoffs {
			if so.Department == scope && so.Decision == DecisionObject {
				o := so
				e.Objection = &o
			}
		}
	}
	switch {
	case s.Status == StatusSuspended:
		e.Reason = WhySuspended
		e.Message = s.Name + " is suspended: " + sentence(s.Reason)
	case s.Status == StatusWithdrawn:
		e.Reason = WhyWithdrawn
		e.Message = s.Name + " was withdrawn from the catalogue." + ask
	case e.Objection != nil:
		e.Reason = WhyObjected
		e.Message = "Your organisation objected to " + s.Name + " on " + e.Objection.At.UTC().Format("2 January 2006")
		if e.Objection.Comment != "" {
			e.Message = sentence(e.Message + ": " + e.Objection.Comment)
		} else {
			e.Message += "."
		}
		e.Message += " Ask your filtering owners if you think this should change."
	case len(expired) > 0 && e.Needed > 0:
		e.Reason = WhyExpired
		e.Expired = expired
		var ds []string
		for _, so := range expired {
			ds = append(ds, so.Department)
		}
		e.Message = s.Name + " left the list because the approval of " + strings.Join(ds, ", ") + " expired and was not renewed; " + countNeeded(e.Needed) + " more to return."
	case len(PublishedDomains(s, p.Quorum)) > 0:
		// Common lists some revision of it, just not this name.
		e.Reason = WhyChangePending
		e.Message = s.Name + " is listed, but this address was added recently and waits for " + countNeeded(e.Needed) + "."
	default:
		e.Reason = WhyProposed
		e.Message = s.Name + " is proposed"
		if len(e.Approvals) > 0 {
			e.Message += ", approved by " + strings.Join(e.Approvals, ", ")
		}
		e.Message += "; it needs " + countNeeded(e.Needed) + " more to join the common list."
	}
	return e
}

// sentence ends s with a full stop, unless an owner's words already end
// it ("a data breach." is not said as "a data breach..").
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

func countNeeded(n int) string {
	if n == 1 {
		return "1 approval"
	}
	return strconv.Itoa(n) + " approvals"
}

// Webhook is where a department's notifications are POSTed. The secret
// that signs them is shown once, when the webhook is set.
type Webhook struct {
	Department string    `json:"department"`
	URL        string    `json:"url"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
}

// Delivery is one notification to one place (a webhook, or one contact's
// e-mail address), with what became of it.
type Delivery struct {
	ID          int64      `json:"id"`
	Department  string     `json:"department"`
	Event       string     `json:"event"`
	Channel     string     `json:"channel"` // "webhook" or "email"
	Target      string     `json:"target"`
	Subject     string     `json:"subject"`
	Payload     []byte     `json:"-"`
	Status      string     `json:"status"` // pending, delivered, failed
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error"`
	NextAt      time.Time  `json:"next_at"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Notification events.
const (
	EventSiteAwaiting     = "site.awaiting-decision"
	EventRequest          = "request.received"
	EventSiteSuspended    = "site.suspended"
	EventApprovalExpiring = "approval.expiring"
	EventSiteLeaving      = "site.leaving-list"
	EventConsensus        = "site.lazy-consensus"
)

// Backoff returns how long to wait before retrying a delivery that failed
// attempts times: base doubled for each failure, at most a day.
func Backoff(attempts int, base time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d < 24*time.Hour; i++ {
		d *= 2
	}
	return min(d, 24*time.Hour)
}

// Governance is the part of the store that moves decisions along: staff
// requests tracked to an answer, timers, and notifications.
// Implementations: allowlist/sqlite.
type Governance interface {
	// FindRequestByReference returns a request by its reference, without
	// the requester's e-mail. ENOTFOUND.
	FindRequestByReference(ctx context.Context, reference string) (Request, error)
	// FindRequest returns a request by id. ENOTFOUND.
	FindRequest(ctx context.Context, id int64) (Request, error)
	// AnswerRequest records an owner's answer. EINVALID, ENOTFOUND,
	// EFORBIDDEN (an owner of another department).
	AnswerRequest(ctx context.Context, a Actor, id int64, in RequestAnswer) (Request, error)
	// FindRequestGroups groups a department's requests ("" for all).
	FindRequestGroups(ctx context.Context, department string) ([]RequestGroup, error)
	// Queue lists what waits for a department's decision, overdue first.
	Queue(ctx context.Context, department string, now time.Time) ([]QueueItem, error)
	// FindSiteByName returns the site whose domains (of any revision)
	// cover a host name. ENOTFOUND.
	FindSiteByName(ctx context.Context, host string) (Site, error)
	// FindExpiredSignoffs lists the approvals of a site that expired.
	FindExpiredSignoffs(ctx context.Context, site string) ([]Signoff, error)
	// FindApprovalClocks returns when each approval of a site was given
	// or renewed and when it was warned, by department.
	FindApprovalClocks(ctx context.Context, site string) (map[string]ApprovalClock, error)
	// FindDepartmentApprovals returns, by site, the clock of each
	// approval a department gave.
	FindDepartmentApprovals(ctx context.Context, department string) (map[string]ApprovalClock, error)
	// RenewSignoff restarts the clock of a department's approval.
	// EINVALID (not an approval), ENOTFOUND.
	RenewSignoff(ctx context.Context, a Actor, site, department string) (Site, error)
	// SetWebhook sets a department's webhook and returns its new signing
	// secret, once. EINVALID, ENOTFOUND.
	SetWebhook(ctx context.Context, a Actor, department, url string) (Webhook, string, error)
	// FindWebhook returns a department's webhook. ENOTFOUND.
	FindWebhook(ctx context.Context, department string) (Webhook, error)
	// DeleteWebhook removes it. ENOTFOUND.
	DeleteWebhook(ctx context.Context, a Actor, department string) error
	// FindDeliveries lists a department's latest deliveries, newest first.
	FindDeliveries(ctx context.Context, department string, limit int) ([]Delivery, error)
}

// ValidateWebhookURL checks a webhook address. A user name or password in
// it is refused: the address is shown to the department's owners and kept
// in the audit log, and the receiver has the signing secret to check each
// delivery with instead. EINVALID.
func ValidateWebhookURL(v string) error {
	var c checker
	if v == "" {
		c.add("url", "is required")
	}
	c.url("url", v)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		c.add("url", "must not carry a user name or password; the receiver checks X-Allowlist-Signature with the webhook's secret instead")
	}
	return c.err()
}

// NotifyOptions say how notifications are addressed.
type NotifyOptions struct {
	// Email sends each event to the department's contacts as well.
	Email bool
	// BaseURL is the registry's public address, for links.
	BaseURL string
}

// Claimed is a delivery a process has taken on, with the webhook secret
// to sign it.
type Claimed struct {
	Delivery
	Secret string
}

// Timers is the part of a store that runs the registry's timers and its
// notification outbox. Each method is safe to call from several
// processes sharing one database: what is due is done once.
type Timers interface {
	// Schedule stores the due times the policy calls for.
	Schedule(ctx context.Context) (int, error)
	// RunDueJobs runs the timers that are due.
	RunDueJobs(ctx context.Context) (int, error)
	// SettleRequests makes allowed the requests whose linked site is
	// listed for their department.
	SettleRequests(ctx context.Context) (int, error)
	// EnqueueNotifications queues deliveries for new events.
	EnqueueNotifications(ctx context.Context, opts NotifyOptions) (int, error)
	// ClaimDeliveries takes due deliveries for a lease.
	ClaimDeliveries(ctx context.Context, lease time.Duration, limit int) ([]Claimed, error)
	// FinishDelivery records an attempt's outcome.
	FinishDelivery(ctx context.Context, id int64, errText string, maxAttempts int, base time.Duration) error
}
