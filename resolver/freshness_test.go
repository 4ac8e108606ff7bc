package resolver

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/miekg/dns"
)

// publishOld makes version v current with a generated_at an hour ago: a
// list that has not changed for an hour.
func (f *fakeRegistry) publishOld(v int64, patterns ...string) {
	entries := []allowlist.Entry{}
	for _, p := range patterns {
		entries = append(entries, allowlist.Entry{Pattern: p, Site: "site", Category: "other"})
	}
	_, body := allowlist.NewList("common", v, time.Now().Add(-time.Hour), entries)
	f.set(v, body, list.Sign(f.key, body))
}

// stamped serves f's answers with a freshness timestamp, as the registry
// does: made with key, at the time at() gives (none when it gives the zero
// time), naming the current version and (unless sha is set) its hash.
func stamped(t *testing.T, f *fakeRegistry, key ed25519.PrivateKey, at func() time.Time, sha string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, v := f.body, f.version
		f.mu.Unlock()
		l, err := allowlist.DecodeList(body)
		if err != nil {
			t.Error(err)
		}
		when := at()
		if when.IsZero() {
			f.serve(w, r)
			return
		}
		ts := allowlist.Timestamp{Scope: "common", Version: v, SHA256: l.SHA256, Time: when.UTC().Truncate(time.Second)}
		if sha != "" {
			ts.SHA256 = sha
		}
		sig, err := allowlist.SignTimestamp(key, ts)
		if err != nil {
			t.Error(err)
		}
		h := w.Header()
		h.Set("X-Allowlist-Version", strconv.FormatInt(v, 10))
		h.Set("X-Allowlist-SHA256", ts.SHA256)
		h.Set("X-Allowlist-Timestamp", ts.Time.Format(allowlist.TimestampFormat))
		h.Set("X-Allowlist-Timestamp-Signature", sig)
		f.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func ageBetween(t *testing.T, r *Resolver, lo, hi float64) {
	t.Helper()
	if age := r.listAge(); age < lo || age > hi {
		t.Fatalf("list age %.1f s, want %v..%v s", age, lo, hi)
	}
}

// TestAgeFromTimestamps: a list unchanged for an hour is current while the
// registry signs that it is; without timestamps (a registry that predates
// them) its age runs from its generated_at; the newest timestamp survives
// a restart without the registry.
func TestAgeFromTimestamps(t *testing.T) {
	f := newRegistry(t)
	f.publishOld(1, "*.zoom.us")
	dir := t.TempDir()
	opt := Options{PublicKey: f.pub, Upstreams: []string{newUpstream(t, "192.0.2.1").addr}, CacheDir: dir,
		MaxListAge: 30 * time.Minute, ListExpiry: 2 * time.Hour}

	opt.Registry = f.srv.URL
	old := start(t, opt)
	waitVersion(t, old, 1, 2*time.Second)
	ageBetween(t, old, 3590, 3700)
	if !old.freshness.stale.Load() || old.freshness.expired.Load() || !old.Ready() {
		t.Fatal("an hour-old list: want stale, not expired, enforced")
	}

	opt.Registry = stamped(t, f, f.key, time.Now, "")
	opt.CacheDir = t.TempDir()
	r := start(t, opt)
	waitVersion(t, r, 1, 2*time.Second)
	eventually(t, "a fresh age", func() bool { return r.listAge() >= 0 && r.listAge() < 2 })
	if r.freshness.stale.Load() || !strings.Contains(scrape(t, r), "allowlist_resolver_list_stale 0") {
		t.Fatal("a list the registry vouches for is stale")
	}

	// Restarted with the registry gone: the saved timestamp counts.
	eventually(t, "the timestamp saved", func() bool {
		_, err := os.Stat(stampPath(opt.CacheDir))
		return err == nil
	})
	waitCached(t, opt.CacheDir, 1)
	opt.Registry = "http://127.0.0.1:1"
	again := start(t, opt)
	waitVersion(t, again, 1, time.Second)
	ageBetween(t, again, 0, 5)
}

// TestTimestampsThatDoNotCount: one signed with another key is counted as
// a sync error; one from the future counts as now; one naming other
// content for the version held is equivocation. None makes the list
// younger than it is.
func TestTimestampsThatDoNotCount(t *testing.T) {
	f := newRegistry(t)
	f.publishOld(1, "*.zoom.us")
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	up := newUpstream(t, "192.0.2.1").addr
	run := func(reg string) *Resolver {
		r := start(t, Options{Registry: reg, PublicKey: f.pub, Upstreams: []string{up}, MaxListAge: 30 * time.Minute, ListExpiry: 2 * time.Hour})
		waitVersion(t, r, 1, 2*time.Second)
		return r
	}

	forged := run(stamped(t, f, otherKey, time.Now, ""))
	eventually(t, "the forged timestamp counted", func() bool {
		return strings.Contains(scrape(t, forged), `allowlist_resolver_sync_errors_total{reason="timestamp"}`)
	})
	ageBetween(t, forged, 3590, 3700)

	future := run(stamped(t, f, f.key, func() time.Time { return time.Now().Add(time.Hour) }, ""))
	eventually(t, "a future timestamp taken", func() bool { return future.listAge() < 60 })
	// Taken as of when it came, never as an hour ahead (which would keep
	// the list "fresh" for an hour after the registry went quiet).
	if at := time.Unix(0, future.freshness.signedAt.Load()); at.After(time.Now()) || future.listAge() < 0 {
		t.Fatalf("a timestamp from the future is taken as %v", at)
	}

	equivocal := run(stamped(t, f, f.key, time.Now, strings.Repeat("ab", 32)))
	within(t, 5*time.Second, "equivocation counted", func() bool {
		return strings.Contains(scrape(t, equivocal), `allowlist_resolver_sync_errors_total{reason="equivocation"}`)
	})
	ageBetween(t, equivocal, 3590, 3700)
}

// TestOnExpiryFail: past list_expiry with on_expiry: fail the resolver
// answers as with no list (REFUSED, saying why), readyz says not ready;
// a fresh timestamp puts the list back at once. With serve it keeps
// enforcing the list.
func TestOnExpiryFail(t *testing.T) {
	f := newRegistry(t)
	f.publishOld(1, "*.zoom.us")
	up := newUpstream(t, "192.0.2.1").addr
	for _, onExpiry := range []string{OnExpiryFail, OnExpiryServe} {
		var vouching atomic.Bool
		reg := stamped(t, f, f.key, func() time.Time {
			if vouching.Load() {
				return time.Now()
			}
			return time.Time{}
		}, "")
		r := start(t, Options{Registry: reg, PublicKey: f.pub, Upstreams: []string{up},
			MaxListAge: 10 * time.Minute, ListExpiry: 30 * time.Minute, OnExpiry: onExpiry})
		waitVersion(t, r, 1, 2*time.Second)
		eventually(t, "expired", r.freshness.expired.Load)
		m := query(t, r, "udp", "us02web.zoom.us", dns.TypeA)
		switch onExpiry {
		case OnExpiryFail:
			if m.Rcode != dns.RcodeRefused || ede(m) == nil || !strings.Contains(ede(m).ExtraText, "expired") || r.Ready() {
				t.Fatalf("fail: rcode %d, EDE %v, ready %v", m.Rcode, ede(m), r.Ready())
			}
			// The registry vouches for it again: enforced again.
			vouching.Store(true)
			within(t, 5*time.Second, "enforced again", func() bool { return r.Ready() && !r.freshness.expired.Load() })
			if m := query(t, r, "udp", "us02web.zoom.us", dns.TypeA); m.Rcode != dns.RcodeSuccess {
				t.Fatalf("after a fresh timestamp: rcode %d", m.Rcode)
			}
		case OnExpiryServe:
			if m.Rcode != dns.RcodeSuccess || !r.Ready() {
				t.Fatalf("serve: rcode %d, ready %v", m.Rcode, r.Ready())
			}
		}
	}
	if _, err := New(Options{Registry: f.srv.URL, PublicKey: f.pub, Scope: "common", CacheDir: t.TempDir(), Mode: ModeEnforce,
		Upstreams: []string{up}, OnExpiry: "panic"}); err == nil || !strings.Contains(err.Error(), "on_expiry") {
		t.Errorf("on_expiry: panic: %v", err)
	}
	if _, err := New(Options{Registry: f.srv.URL, PublicKey: f.pub, Scope: "common", CacheDir: t.TempDir(), Mode: ModeEnforce,
		Upstreams: []string{up}, MaxListAge: time.Hour, ListExpiry: time.Minute}); err == nil || !strings.Contains(err.Error(), "list_expiry") {
		t.Errorf("list_expiry under max_list_age: %v", err)
	}
}

// within polls cond for up to d: a watch answers only at its timeout.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting %v for %s", d, what)
		}
	}
}

// TestReplayedFutureTimestampCountsOnce: a timestamp dated ahead of the
// resolver's clock counts as "now" when it first arrives, never again when
// it is replayed, and after a restart no later than when it was saved.
func TestReplayedFutureTimestampCountsOnce(t *testing.T) {
	r := &Resolver{}
	p := &policy{version: 3, sha256: "abc", generated: time.Now().Add(-time.Hour)}
	r.policy.Store(p)
	r.freshness.fresh = freshness{version: 3, sha256: "abc", at: p.generated, signed: p.generated}
	ahead := time.Now().Add(time.Hour)
	first := time.Now().Add(-10 * time.Minute)
	if !r.vouch(3, "abc", ahead, stampHeaders{}, first) {
		t.Fatal("the first arrival did not count")
	}
	if r.vouch(3, "abc", ahead, stampHeaders{}, time.Now()) {
		t.Error("a replay of the same timestamp moved the age")
	}
	if got := time.Unix(0, r.freshness.signedAt.Load()); !got.Equal(first) {
		t.Errorf("vouched at %v, want its first arrival %v", got, first)
	}
	// A genuine later timestamp (signed now) still counts.
	if !r.vouch(3, "abc", time.Now(), stampHeaders{}, time.Now()) {
		t.Error("a genuine newer timestamp did not count")
	}
}

// TestRegistryClockOffset: the registry's clock, read from its answers'
// Date, is exposed beside the list's age, so a stale alarm caused by a
// slow registry clock can be told from a frozen list.
func TestRegistryClockOffset(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(2, []string{"*.zoom.example"})
	skewed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Date", time.Now().Add(-90*time.Second).UTC().Format(http.TimeFormat))
		reg.serve(w, req)
	}))
	t.Cleanup(skewed.Close)
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: skewed.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 2, 2*time.Second)
	got := r.fetch.clockOffset.Load()
	if got < -91 || got > -89 {
		t.Errorf("offset %d s, want about -90", got)
	}
	if !strings.Contains(scrape(t, r), "allowlist_resolver_registry_clock_offset_seconds -9") {
		t.Error("the offset is not in the metrics")
	}

	f := &fetcher{}
	now := time.Date(2026, 12, 3, 14, 0, 0, 700e6, time.UTC)
	for _, c := range []struct {
		date string
		want int64
	}{
		{"Thu, 03 Dec 2026 14:02:00 GMT", 120},
		{"Thu, 03 Dec 2026 13:59:00 GMT", -60},
		{"not a date", -60}, // ignored: the last reading stays
		{"Thu, 03 Dec 2026 14:00:00 GMT", 0},
	} {
		f.readClock(http.Header{"Date": {c.date}}, now)
		if got := f.clockOffset.Load(); got != c.want {
			t.Errorf("%s: offset %d, want %d", c.date, got, c.want)
		}
	}
}
