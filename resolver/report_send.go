package resolver

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sending usage reports: at the end of each period the report joins a
// queue of at most maxWaiting; the oldest is dropped when a fifth would
// wait. The head of the queue is posted to the registry's /v1/usage with
// the resolver's token; a failure (no answer, 5xx, 408, 429) is retried
// after a backoff of 1 s doubling up to 5 min, with jitter. Any other 4xx
// means the registry will never take that report: it is dropped and
// logged once. A report keeps its report_id across retries, so the
// registry counts it once however often it arrives.

const (
	maxWaiting  = 4
	sendBackoff = time.Second
	maxBackoff  = 5 * time.Minute
	sendTimeout = 30 * time.Second
)

type pending struct {
	id   string
	body []byte
}

type sender struct {
	now           chan struct{} // ReportNow
	url, token    string
	client        *http.Client
	queue         []pending // only the run goroutine touches it
	backoff       time.Duration
	failures      int
	sent, dropped prometheus.Counter
}

func (u *usage) initSender(r *Resolver) {
	u.url = r.fetch.base + "/v1/usage"
	u.token = r.fetch.token
	u.backoff = sendBackoff
	u.now = make(chan struct{}, 1)
	u.client = &http.Client{Timeout: sendTimeout, Transport: r.fetch.client.Transport}
	u.sent = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "resolver", Name: "usage_reports_sent_total",
		Help: "Usage reports the registry accepted."})
	u.dropped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "resolver", Name: "usage_reports_dropped_total",
		Help: "Usage reports given up: the oldest waiting when a fifth period ended with the registry unreachable, or refused by the registry (a 4xx other than 408 and 429)."})
}

// run ends a period every u.every and sends the reports, until ctx ends.
func (u *usage) run(ctx context.Context) {
	tick := time.NewTicker(u.every)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			u.end(now)
			if retry != nil {
				continue // the waiting report goes first, when its time comes
			}
		case <-u.now:
			u.end(time.Now())
			tick.Reset(u.every) // and try the waiting ones at once
		case <-retry:
		}
		retry = nil
		if wait := u.flush(ctx); wait > 0 {
			retry = time.After(wait)
		}
	}
}

// ReportNow ends the current period and sends its report (and any that
// wait) at once; the next period runs a whole report.every from now. It
// does nothing when reporting is off.
func (r *Resolver) ReportNow() {
	if r.usage == nil {
		return
	}
	select {
	case r.usage.now <- struct{}{}:
	default: // one is pending already
	}
}

// end closes the period at now and queues its report.
func (u *usage) end(now time.Time) {
	rep := u.cut(now)
	if rep == nil {
		u.r.log.Info("usage report skipped: no list enforced during the period")
		return
	}
	body, err := json.Marshal(rep)
	if err != nil {
		u.r.log.Error("usage report", "err", err)
		return
	}
	u.enqueue(pending{id: rep.ReportID, body: body})
}

// enqueue adds a report, dropping the oldest when maxWaiting wait already.
func (u *usage) enqueue(p pending) {
	if len(u.queue) >= maxWaiting {
		u.dropped.Inc()
		u.r.log.Warn("usage report dropped: the registry has not taken the last reports", "report_id", u.queue[0].id, "waiting", len(u.queue))
		u.queue = append(u.queue[:0], u.queue[1:]...)
	}
	u.queue = append(u.queue, p)
}

// flush sends the waiting reports, oldest first, until the queue is empty
// (0) or a send fails: then it returns how long to wait before the next try.
func (u *usage) flush(ctx context.Context) time.Duration {
	for len(u.queue) > 0 && ctx.Err() == nil {
		p := u.queue[0]
		status, err := u.post(ctx, p)
		switch {
		case err == nil:
			u.sent.Inc()
			u.failures = 0
		case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			u.dropped.Inc()
			u.failures = 0
			u.r.log.Error("usage report refused by the registry and dropped", "report_id", p.id, "status", status, "err", err)
		default:
			d := u.backoff << min(u.failures, 20)
			if d <= 0 || d > maxBackoff {
				d = maxBackoff
			}
			d += rand.N(d/4 + 1)
			u.failures++
			u.r.log.Warn("usage report not sent; trying again", "report_id", p.id, "in", d, "err", err)
			return d
		}
		u.queue = u.queue[1:]
	}
	return 0
}

// post sends one report: nil when the registry took it (202, or 200 for
// a report_id it had already; any 2xx), else the status (0: none) and
// what went wrong.
func (u *usage) post(ctx context.Context, p pending) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(p.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
}

// randomID is a report_id: 128 random bits in hex.
func randomID() string {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}
