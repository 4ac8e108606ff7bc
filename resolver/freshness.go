package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/prometheus/client_golang/prometheus"
)

// A signature proves a list genuine, not current: someone between the
// registry and the resolver could answer every watch with 304, or hand an
// empty cache an old list, and the list would still verify. So the
// resolver measures its list's age from a time the registry signed: the
// newest of the list's own generated_at and the registry's timestamps
// (allowlist.Timestamp) for that very version and hash, which the registry
// signs again every few seconds and sends with every answer about the
// current version, 304s included. An attacker can replay an old timestamp
// but never make a new one, so a frozen or replayed list grows old on the
// resolver's clock, and past list_expiry on_expiry decides: keep serving
// (loudly), or fail closed.

// minSyncGap is the least time between two requests to the registry that
// bring nothing new.
const minSyncGap = 500 * time.Millisecond

// What on_expiry may say.
const (
	OnExpiryServe = "serve" // keep enforcing the expired list, loudly
	OnExpiryFail  = "fail"  // answer as with no verified list (enforce: REFUSED)
)

// ageState is what the resolver knows of its list's age. signedAt is
// fresh.at in unix nanos; failClosed is set past list_expiry with
// on_expiry: fail.
type ageState struct {
	mu         sync.Mutex
	fresh      freshness // for the list held
	next       freshness // the newest for another version
	signedAt   atomic.Int64
	stale      atomic.Bool
	expired    atomic.Bool
	failClosed atomic.Bool
	loudAt     atomic.Int64 // when the expiry was last logged
	noStamps   atomic.Bool  // the registry was seen to send none
}

// freshness is the signed time of the list held.
type freshness struct {
	version int64
	sha256  string
	at      time.Time    // when the list was last vouched for: the signed time, or its first arrival if that was earlier
	signed  time.Time    // the time as signed, to tell a newer timestamp from a replayed one
	stamp   stampHeaders // the timestamp's headers, to keep; none for a generated_at
}

// vouch records that version (with entries hashing to sha) was current at
// at, a time the registry signed. A time ahead of the resolver's clock
// counts as now: a registry whose clock runs fast cannot make a list look
// fresh for longer than it is. For the list held, the newest such time is
// its age's start; a timestamp for another version is kept for when that
// version is installed (a timestamp comes with the list it vouches for).
// It reports whether it moved the held list's signed time forward.
//
// Timestamps are compared by their signed times, so a replayed copy of a
// future-dated one (same signed time) never moves the age again: only its
// first arrival counted as now. arrived caps the time for one read back
// after a restart (the file's time), for the same reason.
func (r *Resolver) vouch(version int64, sha string, signed time.Time, s stampHeaders, arrived time.Time) bool {
	at := signed
	if at.After(arrived) {
		at = arrived
	}
	a := &r.freshness
	a.mu.Lock()
	defer a.mu.Unlock()
	f := freshness{version: version, sha256: sha, at: at, signed: signed, stamp: s}
	// Newer: another list, or another signed time that vouches later. A
	// copy of a timestamp already seen has the same signed time and does
	// not count again, even if, dated ahead, it would count as "now".
	newer := func(cur freshness) bool {
		return cur.version != version || cur.sha256 != sha || (!signed.Equal(cur.signed) && at.After(cur.at))
	}
	if p := r.policy.Load(); p == nil || p.version != version || p.sha256 != sha {
		if newer(a.next) {
			a.next = f
		}
		return false
	}
	if newer(a.fresh) {
		a.fresh = f
		a.signedAt.Store(at.UnixNano())
		return true
	}
	return false
}

// installed starts the age of a list just installed: from its signed
// generated_at, or a newer timestamp that came with it (which is then
// kept).
func (r *Resolver) installed(p *policy) {
	a := &r.freshness
	a.mu.Lock()
	f := freshness{version: p.version, sha256: p.sha256, at: p.generated, signed: p.generated}
	if now := time.Now(); f.at.After(now) {
		f.at = now
	}
	if n := a.next; n.version == p.version && n.sha256 == p.sha256 && n.at.After(f.at) {
		f = n
	}
	a.fresh = f
	a.signedAt.Store(f.at.UnixNano())
	a.mu.Unlock()
	if f.stamp.sig != "" {
		r.saveStamp(f.stamp)
	}
	r.checkAge()
}

// listAge is the seconds since the registry last signed that the held
// list was current, or -1 with no list.
func (r *Resolver) listAge() float64 {
	at := r.freshness.signedAt.Load()
	if at == 0 {
		return -1
	}
	return time.Since(time.Unix(0, at)).Seconds()
}

// stampHeaders is what the registry's answer says about freshness.
type stampHeaders struct {
	version, sha, at, sig string
}

func stampOf(h http.Header) stampHeaders {
	return stampHeaders{h.Get(list.HeaderVersion), h.Get(list.HeaderSHA256), h.Get(list.HeaderTimestamp), h.Get(list.HeaderTimestampSignature)}
}

// takeStamp checks the timestamp an answer carried and takes its time
// for the list it names (see vouch). An answer without one (a registry older
// than timestamps) changes nothing: the age then runs from the list's
// generated_at. A timestamp that does not verify is counted and ignored.
func (r *Resolver) takeStamp(s stampHeaders) {
	if s.at == "" && s.sig == "" {
		if !r.freshness.noStamps.Swap(true) {
			r.log.Info("the registry sends no freshness timestamps; the list's age runs from its generated_at")
		}
		return
	}
	ts, err := allowlist.ParseTimestamp(r.opt.PublicKey, r.opt.Scope, s.version, s.sha, s.at, s.sig)
	if err != nil {
		r.m.syncErrors.WithLabelValues("timestamp").Inc()
		r.log.Warn("freshness timestamp refused", "err", err, "timestamp", s.at)
		return
	}
	if cur := r.policy.Load(); cur != nil && cur.version == ts.Version && cur.sha256 != ts.SHA256 {
		r.m.syncErrors.WithLabelValues("equivocation").Inc()
		r.log.Error("CRITICAL: the registry signed a timestamp for the version held with different content",
			"version", ts.Version, "held_sha256", cur.sha256, "timestamp_sha256", ts.SHA256)
		return
	}
	if r.vouch(ts.Version, ts.SHA256, ts.Time, s, time.Now()) {
		r.saveStamp(s)
	}
	r.checkAge()
}

// The newest timestamp for the list held is kept beside the cache file,
// so that after a restart with the registry out of reach the age still
// runs from it, not from the list's generated_at.
func stampPath(dir string) string { return filepath.Join(dir, "timestamp") }

// saveStamp writes the headers of a timestamp, one a line: version,
// sha256, time, signature. A failure is harmless (the age would run from
// an older signed time after a restart), so it is not fsynced.
func (r *Resolver) saveStamp(s stampHeaders) {
	tmp := stampPath(r.opt.CacheDir) + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.version+"\n"+s.sha+"\n"+s.at+"\n"+s.sig+"\n"), 0o640); err == nil {
		os.Rename(tmp, stampPath(r.opt.CacheDir))
	}
}

// loadStamp takes the saved timestamp, if it verifies and is for the list
// loaded from the cache.
func (r *Resolver) loadStamp() {
	b, err := os.ReadFile(stampPath(r.opt.CacheDir))
	if err != nil {
		return
	}
	arrived := time.Now()
	if fi, err := os.Stat(stampPath(r.opt.CacheDir)); err == nil && fi.ModTime().Before(arrived) {
		arrived = fi.ModTime() // written when the timestamp was taken
	}
	f := strings.Split(string(b), "\n")
	if len(f) < 4 {
		return
	}
	ts, err := allowlist.ParseTimestamp(r.opt.PublicKey, r.opt.Scope, f[0], f[1], f[2], f[3])
	if err == nil {
		r.vouch(ts.Version, ts.SHA256, ts.Time, stampHeaders{}, arrived)
	}
}

// checkAge compares the list's age with max_list_age and list_expiry, says
// so when either is crossed (both ways), and fails closed past list_expiry
// when on_expiry says so. It runs after every answer from the registry and
// every second besides, since a registry that stops answering sends none.
func (r *Resolver) checkAge() {
	age := r.listAge()
	stale := age > r.opt.MaxListAge.Seconds()
	expired := age > r.opt.ListExpiry.Seconds()
	r.freshness.failClosed.Store(expired && r.opt.OnExpiry == OnExpiryFail)
	if r.Ready() {
		r.m.ready.Set(1)
	} else {
		r.m.ready.Set(0)
	}
	since := time.Unix(0, r.freshness.signedAt.Load()).UTC().Format(time.RFC3339)
	if was := r.freshness.stale.Swap(stale); stale && !was {
		r.log.Warn("list is older than max_list_age: the registry has not vouched for it since "+since,
			"age_seconds", int64(age), "max_list_age", r.opt.MaxListAge.String(), "version", r.Version())
	}
	now := time.Now().UnixNano()
	was := r.freshness.expired.Swap(expired)
	switch {
	case expired && (!was || now-r.freshness.loudAt.Load() > int64(5*time.Minute)):
		r.freshness.loudAt.Store(now)
		then := "still enforcing it (on_expiry: serve)"
		if r.opt.OnExpiry == OnExpiryFail {
			then = "failing closed (on_expiry: fail): answering as with no verified list"
		}
		r.log.Error("LIST EXPIRED: the registry has not vouched for the list since "+since+" (older than list_expiry, "+
			"the registry is out of reach or someone is holding back its answers); "+then,
			"age_seconds", int64(age), "list_expiry", r.opt.ListExpiry.String(), "version", r.Version())
	case !expired && was:
		r.log.Info("list is current again", "age_seconds", int64(age), "version", r.Version())
	}
}

// watchAge runs checkAge every second until ctx ends.
func (r *Resolver) watchAge(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.checkAge()
		}
	}
}

// enforced is the list queries are answered from: the one held, unless it
// expired and on_expiry is fail.
func (r *Resolver) enforced() *policy {
	if r.freshness.failClosed.Load() {
		return nil
	}
	return r.policy.Load()
}

// notReadyText is the Extended DNS Error text when no list is enforced.
func (r *Resolver) notReadyText() string {
	if r.freshness.failClosed.Load() {
		return fmt.Sprintf("the allow-list resolver's list expired (not vouched for by the registry since %s)",
			time.Unix(0, r.freshness.signedAt.Load()).UTC().Format(time.RFC3339))
	}
	return "the allow-list resolver has no verified list yet"
}

// checkFreshnessOptions fills in and checks list_expiry and on_expiry.
func checkFreshnessOptions(opt *Options) error {
	if opt.ListExpiry <= 0 {
		opt.ListExpiry = 7 * 24 * time.Hour
	}
	if opt.OnExpiry == "" {
		opt.OnExpiry = OnExpiryServe
	}
	switch {
	case opt.OnExpiry != OnExpiryServe && opt.OnExpiry != OnExpiryFail:
		return fmt.Errorf("on_expiry: %q is not serve or fail", opt.OnExpiry)
	case opt.ListExpiry < opt.MaxListAge:
		return errors.New("list_expiry: must not be shorter than max_list_age")
	}
	return nil
}

// registerFreshnessMetrics adds the metrics of the list's signed age
// (allowlist_resolver_list_age_seconds is among the others).
func (r *Resolver) registerFreshnessMetrics() {
	flag := func(b *atomic.Bool) func() float64 {
		return func() float64 {
			if b.Load() {
				return 1
			}
			return 0
		}
	}
	ns, sub := "allowlist", "resolver"
	r.m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "list_signed_timestamp_seconds",
			Help: "Unix time the registry last signed that the list held is current (0: no list)."},
			func() float64 { return float64(r.freshness.signedAt.Load()) / 1e9 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "list_stale",
			Help: "1 when the list is older than max_list_age (by its signed time)."}, flag(&r.freshness.stale)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "list_expired",
			Help: "1 when the list is older than list_expiry (by its signed time): enforced anyway with on_expiry: serve, not with fail."}, flag(&r.freshness.expired)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "failing_closed",
			Help: "1 when the list expired and on_expiry is fail: queries are answered as with no verified list."}, flag(&r.freshness.failClosed)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "list_expiry_seconds",
			Help: "The configured list_expiry."}, func() float64 { return r.opt.ListExpiry.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "registry_clock_offset_seconds",
			Help: "The registry's clock minus this host's, from the Date of its latest answer (whole seconds; 0 until one arrives). Not signed: for diagnosis only."},
			func() float64 { return float64(r.fetch.clockOffset.Load()) }),
	)
}
