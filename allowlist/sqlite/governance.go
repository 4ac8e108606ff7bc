package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

var _ allowlist.Governance = (*DB)(nil)

// governor is the actor the audit log names for changes the registry's
// own rules make (lazy consensus, approval expiry, settled requests).
var governor = allowlist.Actor{Name: "governance", Role: "registry"}

// policy is the governance policy with the registry's quorum.
func (db *DB) policy() allowlist.Policy {
	p := db.opts.Policy
	p.Quorum = db.opts.Quorum
	return p
}

// Policy returns the governance policy in force.
func (db *DB) Policy() allowlist.Policy { return db.policy() }

// dueFormat is fixed-width, so that due times compare as text.
const dueFormat = "2006-01-02T15:04:05.000000000Z"

func due(t time.Time) string { return t.UTC().Format(dueFormat) }

func loadConsensus(ctx context.Context, q queryer, where string, args []any, sites []allowlist.Site, index map[string]int) error {
	rows, err := q.QueryContext(ctx, "SELECT site, revision FROM site_consensus"+where, args...)
	if err != nil {
		return fmt.Errorf("consensus: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site string
		var rev int
		if err := rows.Scan(&site, &rev); err != nil {
			return err
		}
		if i, ok := index[site]; ok {
			sites[i].Consensus = rev
		}
	}
	return rows.Err()
}

// recordWithdrawal notes that a decision on site was withdrawn at now.
func recordWithdrawal(ctx context.Context, tx *sql.Tx, site string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO decision_withdrawals (site, at) VALUES (?, ?)
		ON CONFLICT (site) DO UPDATE SET at = excluded.at`, site, ts(now))
	if err != nil {
		return fmt.Errorf("record withdrawal: %w", err)
	}
	return nil
}

// withdrawals returns when a decision on each site (or on one, if set)
// was last withdrawn.
func withdrawals(ctx context.Context, q queryer, site string) (map[string]time.Time, error) {
	rows, err := q.QueryContext(ctx, "SELECT site, at FROM decision_withdrawals WHERE CAST(? AS TEXT) = '' OR site = ?", site, site)
	if err != nil {
		return nil, fmt.Errorf("withdrawals: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var s, at string
		if err := rows.Scan(&s, &at); err != nil {
			return nil, err
		}
		out[s] = parseTS(at)
	}
	return out, rows.Err()
}

// FindSiteByName returns the site whose domains, in any revision, cover
// host: an exact pattern or a wildcard over it. ENOTFOUND.
func (db *DB) FindSiteByName(ctx context.Context, host string) (allowlist.Site, error) {
	candidates := []any{host}
	for name := host; ; {
		candidates = append(candidates, "*."+name)
		_, rest, ok := strings.Cut(name, ".")
		if !ok || rest == "" {
			break
		}
		name = rest
	}
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT d.site FROM site_domains d JOIN sites s ON s.id = d.site
		WHERE d.pattern IN (?`+strings.Repeat(", ?", len(candidates)-1)+`)
		ORDER BY s.status = 'withdrawn', d.revision = s.revision DESC, length(d.pattern) DESC, d.site LIMIT 1`, candidates...).Scan(&id)
	if err == sql.ErrNoRows {
		return allowlist.Site{}, notFound("site for", host)
	}
	if err != nil {
		return allowlist.Site{}, fmt.Errorf("find site by name: %w", err)
	}
	return db.FindSite(ctx, id)
}

// FindExpiredSignoffs lists a site's approvals that expired and were not
// given again.
func (db *DB) FindExpiredSignoffs(ctx context.Context, site string) ([]allowlist.Signoff, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT department, revision, by, comment, at FROM expired_signoffs e
		WHERE site = ? AND NOT EXISTS (SELECT 1 FROM signoffs s WHERE s.site = e.site AND s.department = e.department) ORDER BY department`, site)
	if err != nil {
		return nil, fmt.Errorf("expired signoffs: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Signoff{}
	for rows.Next() {
		so := allowlist.Signoff{Decision: allowlist.DecisionApprove}
		var at string
		if err := rows.Scan(&so.Department, &so.Revision, &so.By, &so.Comment, &at); err != nil {
			return nil, err
		}
		so.At = parseTS(at)
		out = append(out, so)
	}
	return out, rows.Err()
}

// FindApprovalClocks returns, by department, when each approval of site
// was given or renewed and when it was warned.
func (db *DB) FindApprovalClocks(ctx context.Context, site string) (map[string]allowlist.ApprovalClock, error) {
	all, err := approvalClocks(ctx, db.read, site)
	if err != nil {
		return nil, err
	}
	out := map[string]allowlist.ApprovalClock{}
	for k, c := range all {
		out[k[1]] = c
	}
	return out, nil
}

// FindDepartmentApprovals returns, by site, the clock of each approval a
// department gave.
func (db *DB) FindDepartmentApprovals(ctx context.Context, dept string) (map[string]allowlist.ApprovalClock, error) {
	all, err := approvalClocks(ctx, db.read, "", dept)
	if err != nil {
		return nil, err
	}
	out := map[string]allowlist.ApprovalClock{}
	for k, c := range all {
		out[k[0]] = c
	}
	return out, nil
}

// approvalClocks reads the clocks of every approval (of one site, or by
// one department, if set), keyed by site and department.
func approvalClocks(ctx context.Context, q queryer, site string, dept ...string) (map[[2]string]allowlist.ApprovalClock, error) {
	d := ""
	if len(dept) > 0 {
		d = dept[0]
	}
	rows, err := q.QueryContext(ctx, `SELECT s.site, s.department, s.at, c.renewed_at, c.warned_at FROM signoffs s
		LEFT JOIN approval_clocks c ON c.site = s.site AND c.department = s.department
		WHERE s.decision = 'approve' AND (CAST(? AS TEXT) = '' OR s.site = ?) AND (CAST(? AS TEXT) = '' OR s.department = ?)`, site, site, d, d)
	if err != nil {
		return nil, fmt.Errorf("approval clocks: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]allowlist.ApprovalClock{}
	for rows.Next() {
		var s, d, at string
		var renewed, warned sql.NullString
		if err := rows.Scan(&s, &d, &at, &renewed, &warned); err != nil {
			return nil, err
		}
		c := allowlist.ApprovalClock{Since: parseTS(at)}
		if r := parseTS(renewed.String); renewed.Valid && r.After(c.Since) {
			c.Since = r
		}
		if warned.Valid {
			c.WarnedAt = parseTS(warned.String)
		}
		out[[2]string{s, d}] = c
	}
	return out, rows.Err()
}

// RenewSignoff restarts the clock of a department's approval, keeping the
// revision it was made on. EINVALID, ENOTFOUND.
func (db *DB) RenewSignoff(ctx context.Context, a allowlist.Actor, site, dept string) (allowlist.Site, error) {
	err := db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		var decision string
		err := tx.QueryRowContext(ctx, "SELECT decision FROM signoffs WHERE site = ? AND department = ?", site, dept).Scan(&decision)
		if err == sql.ErrNoRows {
			return "", "", nil, allowlist.Errorf(allowlist.ENOTFOUND, "no sign-off by %q on site %q", dept, site)
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("find signoff: %w", err)
		}
		if decision != allowlist.DecisionApprove {
			return "", "", nil, allowlist.Errorf(allowlist.EINVALID, "only an approval can be renewed")
		}
		now := ts(db.opts.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO approval_clocks (site, department, renewed_at) VALUES (?, ?, ?)
			ON CONFLICT (site, department) DO UPDATE SET renewed_at = excluded.renewed_at`, site, dept, now); err != nil {
			return "", "", nil, fmt.Errorf("renew: %w", err)
		}
		return "signoff.renew", "site/" + site + "/signoffs/" + dept, nil, nil
	})
	if err != nil {
		return allowlist.Site{}, err
	}
	return db.FindSite(ctx, site)
}

// SetWebhook sets a department's webhook with a new signing secret,
// returned once. EINVALID, ENOTFOUND.
func (db *DB) SetWebhook(ctx context.Context, a allowlist.Actor, dept, url string) (allowlist.Webhook, string, error) {
	if err := allowlist.ValidateWebhookURL(url); err != nil {
		return allowlist.Webhook{}, "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return allowlist.Webhook{}, "", err
	}
	secret := "whsec_" + hex.EncodeToString(b)
	w := allowlist.Webhook{Department: dept, URL: url, CreatedAt: parseTS(ts(db.opts.Now())), CreatedBy: a.String()}
	err := db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		if err := departmentExists(ctx, tx, dept); err != nil {
			return "", "", nil, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (department, url, secret, created_at, created_by) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (department) DO UPDATE SET url = excluded.url, secret = excluded.secret, created_at = excluded.created_at, created_by = excluded.created_by`,
			dept, url, secret, ts(w.CreatedAt), w.CreatedBy)
		if err != nil {
			return "", "", nil, fmt.Errorf("set webhook: %w", err)
		}
		return "webhook.set", "department/" + dept + "/webhook", map[string]string{"url": url}, nil
	})
	if err != nil {
		return allowlist.Webhook{}, "", err
	}
	return w, secret, nil
}

// FindWebhook returns a department's webhook. ENOTFOUND.
func (db *DB) FindWebhook(ctx context.Context, dept string) (allowlist.Webhook, error) {
	w, _, err := findWebhook(ctx, db.read, dept)
	return w, err
}

func findWebhook(ctx context.Context, q queryer, dept string) (allowlist.Webhook, string, error) {
	w := allowlist.Webhook{Department: dept}
	var created, secret string
	err := q.QueryRowContext(ctx, "SELECT url, secret, created_at, created_by FROM webhooks WHERE department = ?", dept).Scan(&w.URL, &secret, &created, &w.CreatedBy)
	if err == sql.ErrNoRows {
		return w, "", allowlist.Errorf(allowlist.ENOTFOUND, "department %q has no webhook", dept)
	}
	if err != nil {
		return w, "", fmt.Errorf("webhook: %w", err)
	}
	w.CreatedAt = parseTS(created)
	return w, secret, nil
}

// DeleteWebhook removes a department's webhook. ENOTFOUND.
func (db *DB) DeleteWebhook(ctx context.Context, a allowlist.Actor, dept string) error {
	return db.record(ctx, a, func(tx *sql.Tx) (string, string, any, error) {
		res, err := tx.ExecContext(ctx, "DELETE FROM webhooks WHERE department = ?", dept)
		if err != nil {
			return "", "", nil, fmt.Errorf("delete webhook: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", "", nil, allowlist.Errorf(allowlist.ENOTFOUND, "department %q has no webhook", dept)
		}
		return "webhook.delete", "department/" + dept + "/webhook", nil, nil
	})
}

const deliveryColumns = "id, department, event, channel, target, subject, payload, status, attempts, last_error, next_at, created_at, delivered_at"

func scanDelivery(row interface{ Scan(...any) error }) (allowlist.Delivery, error) {
	var d allowlist.Delivery
	var next, created string
	var delivered sql.NullString
	if err := row.Scan(&d.ID, &d.Department, &d.Event, &d.Channel, &d.Target, &d.Subject, &d.Payload, &d.Status, &d.Attempts, &d.LastError, &next, &created, &delivered); err != nil {
		return d, err
	}
	d.NextAt, _ = time.Parse(dueFormat, next)
	d.CreatedAt = parseTS(created)
	if delivered.Valid {
		t := parseTS(delivered.String)
		d.DeliveredAt = &t
	}
	return d, nil
}

// FindDeliveries lists a department's latest deliveries, newest first.
func (db *DB) FindDeliveries(ctx context.Context, dept string, limit int) ([]allowlist.Delivery, error) {
	if limit <= 0 || limit > allowlist.MaxPage {
		limit = allowlist.DefaultDeliveries
	}
	rows, err := db.read.QueryContext(ctx, "SELECT "+deliveryColumns+" FROM deliveries WHERE department = ? ORDER BY id DESC LIMIT ?", dept, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	out := []allowlist.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Queue lists what waits for a department's decision: sites it has not
// decided on and staff requests not yet answered, overdue first.
func (db *DB) Queue(ctx context.Context, dept string, now time.Time) ([]allowlist.QueueItem, error) {
	all, err := db.queues(ctx, now)
	if err != nil {
		return nil, err
	}
	q := all[dept]
	if q == nil {
		q = []allowlist.QueueItem{}
	}
	return q, nil
}

// queues returns every department's queue, each sorted.
func (db *DB) queues(ctx context.Context, now time.Time) (map[string][]allowlist.QueueItem, error) {
	depts, err := departmentIDs(ctx, db.read)
	if err != nil {
		return nil, err
	}
	sites, err := loadSites(ctx, db.read, "", nil)
	if err != nil {
		return nil, err
	}
	p := db.policy()
	out := map[string][]allowlist.QueueItem{}
	for _, s := range sites {
		for _, d := range allowlist.Undecided(s, depts, p.Quorum) {
			out[d] = append(out[d], allowlist.QueueItem{Kind: allowlist.QueueSite, ID: s.ID, Title: s.Name, Since: s.UpdatedAt, Overdue: allowlist.Overdue(s.UpdatedAt, now, p)})
		}
	}
	open, err := findRequests(ctx, db.read, "status IN ('received') ORDER BY id")
	if err != nil {
		return nil, err
	}
	for _, r := range open {
		out[r.Department] = append(out[r.Department], allowlist.QueueItem{Kind: allowlist.QueueRequest, ID: strconv.FormatInt(r.ID, 10), Title: r.Tool, Since: r.CreatedAt, Overdue: allowlist.Overdue(r.CreatedAt, now, p)})
	}
	for _, d := range depts {
		allowlist.SortQueue(out[d])
	}
	return out, nil
}

// QueueStats counts, per department, what waits for it and what is
// overdue (for metrics).
func (db *DB) QueueStats(ctx context.Context, now time.Time) (waiting, overdue map[string]int, err error) {
	all, err := db.queues(ctx, now)
	if err != nil {
		return nil, nil, err
	}
	depts, err := departmentIDs(ctx, db.read)
	if err != nil {
		return nil, nil, err
	}
	waiting, overdue = map[string]int{}, map[string]int{}
	for _, d := range depts {
		waiting[d], overdue[d] = len(all[d]), 0
		for _, it := range all[d] {
			if it.Overdue {
				overdue[d]++
			}
		}
	}
	return waiting, overdue, nil
}

// Job kinds.
const (
	jobConsensus      = "consensus"
	jobApprovalWarn   = "approval-warn"
	jobApprovalExpire = "approval-expire"
)

// Schedule stores the due time of every timer the policy and the current
// decisions call for (lazy consensus, approval warnings and expiries). It
// is idempotent: a due time already stored is kept, once.
func (db *DB) Schedule(ctx context.Context) (int, error) {
	p := db.policy()
	if p.ConsensusAfter <= 0 && p.ApprovalMaxAge <= 0 {
		return 0, nil
	}
	sites, err := loadSites(ctx, db.read, "", nil)
	if err != nil {
		return 0, err
	}
	clocks, err := approvalClocks(ctx, db.read, "")
	if err != nil {
		return 0, err
	}
	withdrawn, err := withdrawals(ctx, db.read, "")
	if err != nil {
		return 0, err
	}
	type job struct{ kind, subject, due string }
	var jobs []job
	for _, s := range sites {
		if t, ok := allowlist.ConsensusDue(s, p, withdrawn[s.ID]); ok {
			jobs = append(jobs, job{jobConsensus, s.ID, due(t)})
		}
		for _, so := range s.Signoffs {
			c, ok := clocks[[2]string{s.ID, so.Department}]
			if !ok {
				continue
			}
			warn, expires, on := allowlist.ApprovalTimes(c, p)
			if !on {
				continue
			}
			subject := s.ID + "/" + so.Department
			if expires.IsZero() {
				jobs = append(jobs, job{jobApprovalWarn, subject, due(warn)})
			} else {
				jobs = append(jobs, job{jobApprovalExpire, subject, due(expires)})
			}
		}
	}
	// Most due times are stored already: write only the new ones, and
	// take the write lock only when there are some.
	stored := map[job]bool{}
	rows, err := db.read.QueryContext(ctx, "SELECT kind, subject, due_at FROM jobs WHERE done_at IS NULL")
	if err != nil {
		return 0, fmt.Errorf("jobs: %w", err)
	}
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.kind, &j.subject, &j.due); err != nil {
			rows.Close()
			return 0, err
		}
		stored[j] = true
	}
	rows.Close()
	jobs = slices.DeleteFunc(jobs, func(j job) bool { return stored[j] })
	if len(jobs) == 0 {
		return 0, nil
	}
	added := 0
	err = db.record(ctx, governor, func(tx *sql.Tx) (string, string, any, error) {
		for _, j := range jobs {
			res, err := tx.ExecContext(ctx, "INSERT INTO jobs (kind, subject, due_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", j.kind, j.subject, j.due)
			if err != nil {
				return "", "", nil, fmt.Errorf("schedule: %w", err)
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return "", "", nil, nil
	})
	return added, err
}

// errJobTaken ends a job's transaction when another process ran it.
var errJobTaken = allowlist.Errorf(allowlist.ECONFLICT, "job already done")

// RunDueJobs runs the timers due at now. Each job is marked done in the
// same transaction as its effect, so it runs once however many processes
// share the database; a job whose rule no longer applies (an objection
// arrived, the approval was renewed) is marked done with nothing else.
// It returns the number of jobs that changed something.
func (db *DB) RunDueJobs(ctx context.Context) (int, error) {
	now := db.opts.Now()
	rows, err := db.read.QueryContext(ctx, "SELECT id, kind, subject FROM jobs WHERE done_at IS NULL AND due_at <= ? ORDER BY due_at, id LIMIT 100", due(now))
	if err != nil {
		return 0, fmt.Errorf("due jobs: %w", err)
	}
	type job struct {
		id            int64
		kind, subject string
	}
	var jobs []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.kind, &j.subject); err != nil {
			rows.Close()
			return 0, err
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	ran := 0
	for _, j := range jobs {
		site, dept, _ := strings.Cut(j.subject, "/")
		acted := false
		err := db.updateSite(ctx, governor, site, func(tx *sql.Tx) (string, string, any, error) {
			res, err := tx.ExecContext(ctx, "UPDATE jobs SET done_at = ? WHERE id = ? AND done_at IS NULL", ts(now), j.id)
			if err != nil {
				return "", "", nil, fmt.Errorf("claim job: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return "", "", nil, errJobTaken
			}
			action, object, detail, err := db.runJob(ctx, tx, now, j.kind, site, dept)
			if err != nil {
				return "", "", nil, err
			}
			result := "no longer applies"
			if action != "" {
				result, acted = action, true
			}
			if _, err := tx.ExecContext(ctx, "UPDATE jobs SET result = ? WHERE id = ?", result, j.id); err != nil {
				return "", "", nil, fmt.Errorf("job result: %w", err)
			}
			return action, object, detail, nil
		})
		if err == errJobTaken {
			continue
		}
		if err != nil {
			return ran, fmt.Errorf("job %s %s: %w", j.kind, j.subject, err)
		}
		if acted {
			ran++
		}
	}
	return ran, nil
}

// runJob checks a timer's rule again inside the transaction and applies
// it: the audit entry it returns names the rule.
func (db *DB) runJob(ctx context.Context, tx *sql.Tx, now time.Time, kind, id, dept string) (string, string, any, error) {
	s, err := findSite(ctx, db, tx, id)
	if allowlist.ErrorCode(err) == allowlist.ENOTFOUND {
		return "", "", nil, nil
	}
	if err != nil {
		return "", "", nil, err
	}
	p := db.policy()
	switch kind {
	case jobConsensus:
		withdrawn, err := withdrawals(ctx, tx, s.ID)
		if err != nil {
			return "", "", nil, err
		}
		t, ok := allowlist.ConsensusDue(s, p, withdrawn[s.ID])
		if !ok || t.After(now) {
			return "", "", nil, nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO site_consensus (site, revision, at) VALUES (?, ?, ?)
			ON CONFLICT (site) DO UPDATE SET revision = excluded.revision, at = excluded.at`, s.ID, s.Revision, ts(now)); err != nil {
			return "", "", nil, fmt.Errorf("consensus: %w", err)
		}
		var sponsors []string
		for _, so := range allowlist.Sponsors(s) {
			sponsors = append(sponsors, so.Department)
		}
		return "site.consensus", "site/" + s.ID, map[string]any{"rule": allowlist.RuleLazyConsensus, "revision": s.Revision,
			"sponsors": sponsors, "no_objection_for_days": p.ConsensusAfter.Hours() / 24}, nil
	case jobApprovalWarn, jobApprovalExpire:
		clocks, err := approvalClocks(ctx, tx, s.ID)
		if err != nil {
			return "", "", nil, err
		}
		c, ok := clocks[[2]string{s.ID, dept}]
		if !ok {
			return "", "", nil, nil // withdrawn, or an objection now
		}
		state := allowlist.ApprovalState(c, now, p)
		object := "site/" + s.ID + "/signoffs/" + dept
		if kind == jobApprovalWarn {
			if state != allowlist.ApprovalExpiring || !c.WarnedAt.Before(c.Since) && !c.WarnedAt.IsZero() {
				return "", "", nil, nil
			}
			c.WarnedAt = now
			_, expires, _ := allowlist.ApprovalTimes(c, p)
			if _, err := tx.ExecContext(ctx, `INSERT INTO approval_clocks (site, department, warned_at) VALUES (?, ?, ?)
				ON CONFLICT (site, department) DO UPDATE SET warned_at = excluded.warned_at`, s.ID, dept, ts(now)); err != nil {
				return "", "", nil, fmt.Errorf("warn: %w", err)
			}
			return "signoff.expiry-warning", object, map[string]any{"rule": allowlist.RuleApprovalExpiry, "expires_at": expires,
				"falls_below_quorum": allowlist.FallsBelowQuorum(s, dept, p.Quorum)}, nil
		}
		if state != allowlist.ApprovalExpired {
			return "", "", nil, nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO expired_signoffs (site, department, revision, by, comment, at, expired_at)
			SELECT site, department, revision, by, comment, at, ? FROM signoffs WHERE site = ? AND department = ?
			ON CONFLICT (site, department) DO UPDATE SET revision = excluded.revision, by = excluded.by, comment = excluded.comment,
			at = excluded.at, expired_at = excluded.expired_at`, ts(now), s.ID, dept); err != nil {
			return "", "", nil, fmt.Errorf("expire: %w", err)
		}
		for _, q := range []string{"DELETE FROM signoffs WHERE site = ? AND department = ?", "DELETE FROM approval_clocks WHERE site = ? AND department = ?"} {
			if _, err := tx.ExecContext(ctx, q, s.ID, dept); err != nil {
				return "", "", nil, fmt.Errorf("expire: %w", err)
			}
		}
		return "signoff.expire", object, map[string]any{"rule": allowlist.RuleApprovalExpiry, "approved_at": c.Since, "warned_at": c.WarnedAt,
			"falls_below_quorum": allowlist.FallsBelowQuorum(s, dept, p.Quorum)}, nil
	}
	return "", "", nil, fmt.Errorf("unknown job kind %q", kind)
}

// notice is one event for one department.
type notice struct {
	dept, event, subject, message, link string
}

// EnqueueNotifications turns new audit entries into deliveries (one per
// department webhook and, with Email, per contact), in one transaction
// with the cursor that marks them done: each entry is notified once,
// whichever process gets there. The first call starts after the entries
// already in the log. It returns how many deliveries it queued.
func (db *DB) EnqueueNotifications(ctx context.Context, opts allowlist.NotifyOptions) (int, error) {
	queued := 0
	err := db.record(ctx, governor, func(tx *sql.Tx) (string, string, any, error) {
		var cursor sql.NullString
		if err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'notify.audit_seq'").Scan(&cursor); err != nil && err != sql.ErrNoRows {
			return "", "", nil, fmt.Errorf("notify cursor: %w", err)
		}
		setCursor := func(seq int64) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('notify.audit_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", strconv.FormatInt(seq, 10))
			return err
		}
		if !cursor.Valid {
			var last int64
			if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM audit").Scan(&last); err != nil {
				return "", "", nil, err
			}
			return "", "", nil, setCursor(last)
		}
		after, _ := strconv.ParseInt(cursor.String, 10, 64)
		rows, err := tx.QueryContext(ctx, "SELECT seq, at, action, object, detail FROM audit WHERE seq > ? ORDER BY seq LIMIT 500", after)
		if err != nil {
			return "", "", nil, fmt.Errorf("audit: %w", err)
		}
		type entry struct {
			seq                        int64
			at, action, object, detail string
		}
		var entries []entry
		for rows.Next() {
			var e entry
			if err := rows.Scan(&e.seq, &e.at, &e.action, &e.object, &e.detail); err != nil {
				rows.Close()
				return "", "", nil, err
			}
			entries = append(entries, e)
		}
		rows.Close()
		if len(entries) == 0 {
			return "", "", nil, nil
		}
		depts, err := departmentIDs(ctx, tx)
		if err != nil {
			return "", "", nil, err
		}
		now := db.opts.Now()
		for _, e := range entries {
			for _, n := range db.notices(ctx, tx, depts, e.action, e.object, e.detail, opts.BaseURL) {
				k, err := enqueue(ctx, tx, now, e.seq, n, opts.Email)
				if err != nil {
					return "", "", nil, err
				}
				queued += k
			}
		}
		return "", "", nil, setCursor(entries[len(entries)-1].seq)
	})
	return queued, err
}

// notices says who hears of an audit entry, and what.
func (db *DB) notices(ctx context.Context, tx *sql.Tx, depts []string, action, object, detail, base string) []notice {
	var d struct {
		Department       string          `json:"department"`
		Tool             string          `json:"tool"`
		URL              string          `json:"url"`
		Reason           string          `json:"reason"`
		Patch            json.RawMessage `json:"patch"`
		ExpiresAt        time.Time       `json:"expires_at"`
		FallsBelowQuorum bool            `json:"falls_below_quorum"`
	}
	_ = json.Unmarshal([]byte(detail), &d)
	kind, id, _ := strings.Cut(object, "/")
	siteID, dept, _ := strings.Cut(id, "/signoffs/")
	name := siteID
	if kind == "site" {
		if s, err := findSite(ctx, db, tx, siteID); err == nil {
			name = s.Name
		}
	}
	everyone := func(event, subject, message, link string) []notice {
		var out []notice
		for _, dep := range depts {
			out = append(out, notice{dep, event, subject, message, link})
		}
		return out
	}
	switch action {
	case "site.create":
		return everyone(allowlist.EventSiteAwaiting, name+" awaits your decision", name+" was proposed for the allow-list and waits for your organisation's decision.", base+"/owner")
	case "site.update":
		var p struct {
			Domains *[]string `json:"domains"`
		}
		if json.Unmarshal(d.Patch, &p) == nil && p.Domains != nil {
			return everyone(allowlist.EventSiteAwaiting, name+" awaits your decision", name+" now asks for other web addresses, which wait for your organisation's decision.", base+"/owner")
		}
	case "request.create":
		return []notice{{d.Department, allowlist.EventRequest, "A member of staff asks for " + d.Tool, "A member of staff in your organisation asks for " + d.Tool + " (" + d.URL + ").", base + "/owner"}}
	case "site.suspend":
		return everyone(allowlist.EventSiteSuspended, name+" was suspended", name+" was suspended and leaves every list in the next version.", base+"/catalogue")
	case "signoff.expiry-warning":
		date := d.ExpiresAt.UTC().Format("2 January 2006")
		out := []notice{{dept, allowlist.EventApprovalExpiring, "Your approval of " + name + " expires on " + date,
			"Your organisation's approval of " + name + " expires on " + date + " unless you renew it.", base + "/owner"}}
		if d.FallsBelowQuorum {
			for _, dep := range depts {
				if dep != dept {
					out = append(out, notice{dep, allowlist.EventSiteLeaving, name + " may leave the common list on " + date,
						name + " will leave the common list on " + date + " unless the approval of " + dept + " is renewed or another organisation approves it.", base + "/owner"})
				}
			}
		}
		return out
	case "site.consensus":
		return everyone(allowlist.EventConsensus, name+" joined the common list by lazy consensus", name+" had sponsors and no objection for the agreed time, so it joined the common list.", base+"/catalogue")
	}
	return nil
}

// enqueue stores one notice's deliveries: the department's webhook and,
// with email, each of its contacts.
func enqueue(ctx context.Context, tx *sql.Tx, now time.Time, seq int64, n notice, email bool) (int, error) {
	payload, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%d-%s", seq, n.dept), "event": n.event, "department": n.dept,
		"subject": n.subject, "message": n.message, "link": n.link, "at": now.UTC()})
	var targets [][2]string
	if w, _, err := findWebhook(ctx, tx, n.dept); err == nil {
		targets = append(targets, [2]string{"webhook", w.URL})
	}
	if email {
		cs, err := findContacts(ctx, tx, n.dept)
		if err != nil {
			return 0, err
		}
		for _, c := range cs {
			targets = append(targets, [2]string{"email", c.Email})
		}
	}
	for _, t := range targets {
		body := payload
		if t[0] == "email" {
			body = []byte(n.message + "\n\n" + n.link + "\n")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (department, event, channel, target, subject, payload, next_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, n.dept, n.event, t[0], t[1], n.subject, body, due(now), ts(now)); err != nil {
			return 0, fmt.Errorf("queue delivery: %w", err)
		}
	}
	return len(targets), nil
}

// ClaimDeliveries takes up to limit due deliveries for lease: another
// process does not take them until the lease ends (a crash mid-send means
// the receiver may see one twice; the payload's id tells).
func (db *DB) ClaimDeliveries(ctx context.Context, lease time.Duration, limit int) ([]allowlist.Claimed, error) {
	var out []allowlist.Claimed
	// Due times follow the registry's clock (which drills may move);
	// leases follow the real one, so that moving the registry's clock
	// never ends a lease while its holder is still sending.
	now, real := db.opts.Now(), time.Now()
	err := db.record(ctx, governor, func(tx *sql.Tx) (string, string, any, error) {
		rows, err := tx.QueryContext(ctx, "SELECT "+deliveryColumns+` FROM deliveries WHERE status = 'pending' AND next_at <= ?
			AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_at, id LIMIT ?`, due(now), due(real), limit)
		if err != nil {
			return "", "", nil, fmt.Errorf("due deliveries: %w", err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return "", "", nil, err
			}
			out = append(out, allowlist.Claimed{Delivery: d})
		}
		rows.Close()
		for i := range out {
			// A webhook delivery goes to the department's address as it is
			// now, and the delivery log says so.
			if out[i].Channel == "webhook" {
				w, secret, err := findWebhook(ctx, tx, out[i].Department)
				if err == nil {
					out[i].Target, out[i].Secret = w.URL, secret
				}
			}
			if _, err := tx.ExecContext(ctx, "UPDATE deliveries SET lease_until = ?, attempts = attempts + 1, target = ? WHERE id = ?", due(real.Add(lease)), out[i].Target, out[i].ID); err != nil {
				return "", "", nil, err
			}
			out[i].Attempts++
		}
		return "", "", nil, nil
	})
	return out, err
}

// FinishDelivery records a delivery attempt: delivered when errText is
// empty; otherwise retried after a backoff, or failed after maxAttempts.
func (db *DB) FinishDelivery(ctx context.Context, id int64, errText string, maxAttempts int, base time.Duration) error {
	now := db.opts.Now()
	return db.record(ctx, governor, func(tx *sql.Tx) (string, string, any, error) {
		var attempts int
		if err := tx.QueryRowContext(ctx, "SELECT attempts FROM deliveries WHERE id = ?", id).Scan(&attempts); err != nil {
			return "", "", nil, fmt.Errorf("delivery: %w", err)
		}
		var err error
		switch {
		case errText == "":
			_, err = tx.ExecContext(ctx, "UPDATE deliveries SET status = 'delivered', delivered_at = ?, last_error = '', lease_until = NULL WHERE id = ?", ts(now), id)
		case attempts >= maxAttempts:
			_, err = tx.ExecContext(ctx, "UPDATE deliveries SET status = 'failed', last_error = ?, lease_until = NULL WHERE id = ?", errText, id)
		default:
			_, err = tx.ExecContext(ctx, "UPDATE deliveries SET last_error = ?, next_at = ?, lease_until = NULL WHERE id = ?", errText, due(now.Add(allowlist.Backoff(attempts, base))), id)
		}
		return "", "", nil, err
	})
}
