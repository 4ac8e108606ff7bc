// Package notify runs the registry's timers and delivers its
// notifications: each department's webhook (an HMAC-SHA256 signed JSON
// body) and e-mail to its contacts over SMTP. It knows the store only
// through allowlist.Timers, whose methods are safe with several registry
// processes sharing one database.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// Config configures a Runner.
type Config struct {
	// Interval is how often timers and the outbox are looked at.
	Interval time.Duration
	// ScheduleEvery is how often every timer's due time is computed again
	// (at every Interval while something changed, at least this often).
	ScheduleEvery time.Duration
	// BaseURL is the registry's public address, for links in messages.
	BaseURL string
	// SMTP sends e-mail when its Addr is set.
	SMTP SMTP
	// WebhookTimeout bounds one webhook call.
	WebhookTimeout time.Duration
	// MaxAttempts is how many times a delivery is tried before it fails.
	MaxAttempts int
	// Backoff is the wait after the first failure; it doubles each time.
	Backoff time.Duration
	// AllowPrivateWebhooks lets webhooks reach loopback and private
	// addresses (off: an owner could otherwise make the registry call
	// services on its own network).
	AllowPrivateWebhooks bool
	Logger               *slog.Logger
}

// Runner runs timers and delivers notifications until its context ends.
type Runner struct {
	store        allowlist.Timers
	cfg          Config
	log          *slog.Logger
	client       *http.Client
	lastSchedule time.Time
	dirty        atomic.Bool
}

// New returns a Runner over a store.
func New(store allowlist.Timers, cfg Config) *Runner {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ScheduleEvery <= 0 {
		cfg.ScheduleEvery = time.Minute
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dialer := &net.Dialer{Timeout: cfg.WebhookTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		if cfg.AllowPrivateWebhooks {
			return nil
		}
		host, _, _ := net.SplitHostPort(address)
		if ip := net.ParseIP(host); ip == nil || !publicIP(ip) {
			return fmt.Errorf("webhook address %s is not public (allow_private_webhooks is off)", host)
		}
		return nil
	}}
	client := &http.Client{
		Timeout: cfg.WebhookTimeout,
		// No proxy from the environment: the address check must see the real target.
		Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConns: 10, IdleConnTimeout: time.Minute},
		// A redirect is an answer, not a delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r := &Runner{store: store, cfg: cfg, log: cfg.Logger, client: client}
	r.dirty.Store(true)
	return r
}

func publicIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && allowlist.PublicAddr(a)
}

// Start queues the notifications for events so far (on a new database:
// marks where notifications begin) before returning, then runs in the
// background until ctx ends. Call it before serving requests, so that no
// event falls before the start of notifications.
func (r *Runner) Start(ctx context.Context) error {
	if _, err := r.store.EnqueueNotifications(ctx, r.notifyOptions()); err != nil {
		return fmt.Errorf("queue notifications: %w", err)
	}
	go r.Run(ctx)
	return nil
}

func (r *Runner) notifyOptions() allowlist.NotifyOptions {
	return allowlist.NotifyOptions{Email: r.cfg.SMTP.Addr != "", BaseURL: r.cfg.BaseURL}
}

// Run ticks until ctx ends: timers and the queueing of notifications in
// one loop, deliveries in another, so that a slow mail server or webhook
// never holds a timer back.
func (r *Runner) Run(ctx context.Context) {
	go r.loop(ctx, "deliver notifications", r.Deliver)
	r.loop(ctx, "governance timers", r.Timers)
}

func (r *Runner) loop(ctx context.Context, what string, step func(context.Context) error) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if err := step(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Changed tells the runner that decisions changed (wire it to the
// store with Subscribe), so that the next tick computes due times again.
func (r *Runner) Changed() { r.dirty.Store(true) }

// Tick does one round of Timers, then of Deliver.
func (r *Runner) Tick(ctx context.Context) error {
	if err := r.Timers(ctx); err != nil {
		return err
	}
	return r.Deliver(ctx)
}

// Timers does one round: store new due times, run due timers, settle
// linked requests, and queue notifications for new events.
func (r *Runner) Timers(ctx context.Context) error {
	// Due times are computed again after a change, but at most every 5 s:
	// it reads every site (about a second at 100,000 entries), and a due
	// time days away does not mind the wait.
	now := time.Now()
	since := now.Sub(r.lastSchedule)
	if (since >= 5*time.Second && r.dirty.Swap(false)) || since >= r.cfg.ScheduleEvery {
		r.lastSchedule = now
		if _, err := r.store.Schedule(ctx); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
	}
	ran, err := r.store.RunDueJobs(ctx)
	if err != nil {
		return fmt.Errorf("run timers: %w", err)
	}
	if ran > 0 {
		r.dirty.Store(true)
		r.log.Info("governance timers ran", "changes", ran)
	}
	if _, err := r.store.SettleRequests(ctx); err != nil {
		return fmt.Errorf("settle requests: %w", err)
	}
	if _, err := r.store.EnqueueNotifications(ctx, r.notifyOptions()); err != nil {
		return fmt.Errorf("queue notifications: %w", err)
	}
	return nil
}

// Deliver sends the deliveries that are due, until none is left.
func (r *Runner) Deliver(ctx context.Context) error {
	lease := 2*r.cfg.WebhookTimeout + time.Minute
	for {
		batch, err := r.store.ClaimDeliveries(ctx, lease, 10)
		if err != nil || len(batch) == 0 {
			return err
		}
		// Each target's deliveries go in order, and every target at once:
		// a webhook that does not answer holds up only its own. After a
		// target fails once, the rest of its batch are not tried this round
		// (each would wait a timeout) but recorded as such, to be retried
		// with the back-off like any failure.
		groups := map[string][]allowlist.Claimed{}
		var targets []string
		for _, d := range batch {
			k := d.Channel + " " + d.Target
			if _, ok := groups[k]; !ok {
				targets = append(targets, k)
			}
			groups[k] = append(groups[k], d)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(targets))
		for _, k := range targets {
			wg.Add(1)
			go func(ds []allowlist.Claimed) {
				defer wg.Done()
				failed := ""
				for _, d := range ds {
					if failed != "" {
						if err := r.store.FinishDelivery(ctx, d.ID, "not tried: "+failed, r.cfg.MaxAttempts, r.cfg.Backoff); err != nil {
							errs <- err
							return
						}
						continue
					}
					msg, err := r.deliverOne(ctx, d)
					if err != nil {
						errs <- err
						return
					}
					if msg != "" {
						failed = "the same target failed just before (" + msg + ")"
					}
				}
			}(groups[k])
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
}

// deliverOne sends one delivery and records the outcome; it returns why
// the target did not take it, or "".
func (r *Runner) deliverOne(ctx context.Context, d allowlist.Claimed) (string, error) {
	var err error
	switch d.Channel {
	case "webhook":
		err = r.postWebhook(ctx, d)
	case "email":
		err = r.cfg.SMTP.Send(d.Target, d.Subject, string(d.Payload))
	default:
		err = fmt.Errorf("unknown channel %q", d.Channel)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
		r.log.Warn("notification not delivered", "delivery", d.ID, "department", d.Department, "channel", d.Channel, "attempt", d.Attempts, "err", msg)
	}
	if err := r.store.FinishDelivery(ctx, d.ID, msg, r.cfg.MaxAttempts, r.cfg.Backoff); err != nil {
		return "", err
	}
	return msg, nil
}

// Signature returns the X-Allowlist-Signature value for a body sent at
// timestamp (Unix seconds): "t=TIMESTAMP,sha256=HEX", where HEX is the
// HMAC-SHA256, keyed with the webhook's secret, of "TIMESTAMP." followed
// by the exact body bytes.
func Signature(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	ts := strconv.FormatInt(timestamp, 10)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (r *Runner) postWebhook(ctx context.Context, d allowlist.Claimed) error {
	if d.Secret == "" {
		return errors.New("the department has no webhook any more")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(d.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "allowlist-registry")
	req.Header.Set("X-Allowlist-Event", d.Event)
	req.Header.Set("X-Allowlist-Delivery", strconv.FormatInt(d.ID, 10))
	req.Header.Set("X-Allowlist-Signature", Signature(d.Secret, time.Now().Unix(), d.Payload))
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}
