package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/notify"
)

// GovernanceConfig is the registry policy that moves decisions along.
// Every rule is off by default; every process sharing a database must
// use the same values.
type GovernanceConfig struct {
	LazyConsensus struct {
		// Sponsors is how many departments must approve (default 1).
		Sponsors int `yaml:"sponsors"`
		// Days without objection after which the site joins common (0: off).
		Days int `yaml:"days"`
	} `yaml:"lazy_consensus"`
	// DecisionSLADays marks a decision overdue after this many days (0: off).
	DecisionSLADays int `yaml:"decision_sla_days"`
	ApprovalExpiry  struct {
		// Days an approval counts before it must be renewed (0: off).
		Days int `yaml:"days"`
		// WarningDays before expiry the department is told (default 30).
		WarningDays int `yaml:"warning_days"`
	} `yaml:"approval_expiry"`
}

// NotificationsConfig says how owners are told.
type NotificationsConfig struct {
	// Interval is how often timers and the outbox are looked at.
	Interval string `yaml:"interval"`
	// MaxAttempts and Backoff: a failed delivery is retried after
	// Backoff, doubling each time, MaxAttempts times in all.
	MaxAttempts int    `yaml:"max_attempts"`
	Backoff     string `yaml:"backoff"`
	// AllowPrivateWebhooks lets webhooks reach loopback and private
	// addresses (for a webhook receiver on the registry's own network).
	AllowPrivateWebhooks bool `yaml:"allow_private_webhooks"`
	SMTP                 struct {
		Addr     string `yaml:"addr"`
		From     string `yaml:"from"`
		Username string `yaml:"username"`
		Password string `yaml:"password"`
		StartTLS string `yaml:"starttls"`
	} `yaml:"smtp"`
}

const day = 24 * time.Hour

// Policy is the governance policy for the store.
func (g GovernanceConfig) Policy() allowlist.Policy {
	return allowlist.Policy{
		ConsensusSponsors: max(g.LazyConsensus.Sponsors, 1),
		ConsensusAfter:    time.Duration(g.LazyConsensus.Days) * day,
		DecisionSLA:       time.Duration(g.DecisionSLADays) * day,
		ApprovalMaxAge:    time.Duration(g.ApprovalExpiry.Days) * day,
		ApprovalWarning:   time.Duration(g.ApprovalExpiry.WarningDays) * day,
	}
}

// Validate names the first bad key.
func (g GovernanceConfig) Validate() error {
	switch {
	case g.LazyConsensus.Days < 0 || g.LazyConsensus.Sponsors < 0:
		return errors.New("governance.lazy_consensus: days and sponsors must not be negative")
	case g.DecisionSLADays < 0:
		return errors.New("governance.decision_sla_days: must not be negative")
	case g.ApprovalExpiry.Days < 0 || g.ApprovalExpiry.WarningDays < 0:
		return errors.New("governance.approval_expiry: days and warning_days must not be negative")
	case g.ApprovalExpiry.Days > 0 && g.ApprovalExpiry.WarningDays >= g.ApprovalExpiry.Days:
		return errors.New("governance.approval_expiry: warning_days must be fewer than days")
	}
	return nil
}

func (n NotificationsConfig) runner(publicURL string) (notify.Config, error) {
	c := notify.Config{MaxAttempts: n.MaxAttempts, AllowPrivateWebhooks: n.AllowPrivateWebhooks, BaseURL: strings.TrimRight(publicURL, "/"),
		SMTP: notify.SMTP{Addr: n.SMTP.Addr, From: n.SMTP.From, Username: n.SMTP.Username, Password: n.SMTP.Password, StartTLS: n.SMTP.StartTLS}}
	for _, d := range []struct {
		key, v string
		into   *time.Duration
	}{{"interval", n.Interval, &c.Interval}, {"backoff", n.Backoff, &c.Backoff}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("notifications.%s: %q is not a duration such as 30s", d.key, d.v)
		}
		*d.into = v
	}
	if n.MaxAttempts < 0 {
		return c, errors.New("notifications.max_attempts: must not be negative")
	}
	if err := c.SMTP.Validate(); err != nil {
		return c, fmt.Errorf("notifications.smtp.%w", err)
	}
	if c.SMTP.Addr != "" && c.BaseURL == "" {
		return c, errors.New("public_url: e-mail needs the registry's public address for its links")
	}
	return c, nil
}

// offsetClock is the real clock plus a duration read from a file at
// every use, so that a drill or a test can move the registry's time
// forward (to see lazy consensus or expiry happen) without waiting.
type offsetClock struct {
	path string
	mu   sync.Mutex
	last time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, err := os.ReadFile(c.path); err == nil {
		if d, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil && d >= c.last {
			c.last = d // the clock never goes back
		}
	}
	return time.Now().Add(c.last)
}
