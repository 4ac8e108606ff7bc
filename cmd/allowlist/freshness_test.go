package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// freezer is an attacker on the network between a resolver and the
// registry. Live, it passes requests through and remembers the first list
// it carried. Frozen, it answers every watch (GET or HEAD) with 304 and
// that list's headers, its genuine but old timestamp among them, at once,
// and
// every fetch of the list with that list: it never forges a byte, it only
// holds the resolver in the past.
type freezer struct {
	t       *testing.T
	target  string
	frozen  atomic.Bool
	mu      sync.Mutex
	old     *recorded
	replays atomic.Int64
	url     string
}

type recorded struct {
	header http.Header
	body   []byte
}

func newFreezer(t *testing.T, target string, old *recorded) *freezer {
	f := &freezer{t: t, target: target, old: old}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *freezer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	old := f.old
	f.mu.Unlock()
	if f.frozen.Load() && old != nil {
		f.replays.Add(1)
		for k, v := range old.header {
			if strings.HasPrefix(k, "X-Allowlist-") || k == "Etag" || k == "Content-Type" {
				w.Header()[k] = v
			}
		}
		if strings.HasSuffix(r.URL.Path, "/watch") {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(old.body)))
		if r.Method != "HEAD" {
			w.Write(old.body)
		}
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, f.target+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	if r.Method == "GET" && r.URL.Path == "/v1/lists/common" && resp.StatusCode == 200 {
		f.mu.Lock()
		if f.old == nil {
			f.old = &recorded{header: resp.Header.Clone(), body: body}
		}
		f.mu.Unlock()
	}
}

// metricsOf reads a resolver's metrics as name (with labels) -> value.
func metricsOf(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// waitMetric waits until cond holds for a resolver's metrics.
func waitMetric(t *testing.T, addr, what string, within time.Duration, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := metricsOf(t, addr)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; metrics:\n%v", what, within, freshnessLines(m))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freshnessLines(m map[string]float64) string {
	var b strings.Builder
	for _, k := range []string{"allowlist_resolver_list_version", "allowlist_resolver_list_age_seconds", "allowlist_resolver_list_signed_timestamp_seconds",
		"allowlist_resolver_last_sync_timestamp_seconds", "allowlist_resolver_list_stale", "allowlist_resolver_list_expired", "allowlist_resolver_failing_closed", "allowlist_resolver_ready"} {
		fmt.Fprintf(&b, "%s %v\n", k, m[k])
	}
	return b.String()
}

// askRcode asks a resolver for an A record and returns the answer.
func askA(t *testing.T, server, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return resp
}

func edeText(m *dns.Msg) string {
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if ede, ok := e.(*dns.EDNS0_EDE); ok {
				return ede.ExtraText
			}
		}
	}
	return ""
}

// resolverConf writes a resolver config for the freshness tests.
func resolverConf(t *testing.T, dir, registry, pub, upstream, onExpiry string) string {
	return writeResolverConfig(t, filepath.Join(dir, "resolver-"+onExpiry+".yaml"), registry, pub, filepath.Join(dir, "cache-"+onExpiry), upstream,
		"watch_timeout: 1s\npoll_interval: 1s\nmax_list_age: 2s\nlist_expiry: 4s\non_expiry: "+onExpiry+"\n")
}

// TestFrozenRegistryIsNoticed puts a freezing proxy between a real
// registry and a real resolver (both processes). While the proxy passes
// answers through, the registry's timestamps keep the list fresh, although
// the list itself is older than list_expiry. Frozen, the proxy answers
// every watch with 304 and an old (genuine) timestamp: the resolver's age
// metric climbs from the last timestamp it got, past max_list_age and
// then list_expiry, where on_expiry: fail makes it refuse to forward.
// Then a resolver with an empty cache is handed, through a frozen proxy,
// the old version (genuinely signed, since superseded): it is recognised
// as old, refused with on_expiry: fail and enforced but flagged with
// on_expiry: serve.
func TestFrozenRegistryIsNoticed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "registry.db")
	reg := startRegistry(t, db, "--seed", "--timestamp-interval", "1s")
	out, _, code := cli(t, "keygen", "--db", db)
	if code != 0 {
		t.Fatal("keygen")
	}
	pub := strings.TrimSpace(out)
	up := startUpstream(t)
	proxy := newFreezer(t, reg.url, nil)
	res, metrics := startResolverMetrics(t, resolverConf(t, dir, proxy.url, pub, up, "fail"))

	seeded := waitMetric(t, metrics, "the seeded list enforced", 10*time.Second, func(m map[string]float64) bool {
		return m["allowlist_resolver_list_version"] >= 1
	})["allowlist_resolver_list_version"]
	if r := askA(t, res, "us02web.zoom.us"); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("allowed name: %s", r)
	}
	// Live for 6 s, longer than list_expiry: the list was generated
	// before that, but the registry's timestamps keep it current.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		m := metricsOf(t, metrics)
		if age := m["allowlist_resolver_list_age_seconds"]; age < 0 || age > 3.5 || m["allowlist_resolver_list_expired"] != 0 {
			t.Fatalf("live registry, yet the list looks old:\n%s", freshnessLines(m))
		}
	}

	proxy.frozen.Store(true)
	frozeAt := time.Now()
	stale := waitMetric(t, metrics, "list_stale past max_list_age", 6*time.Second, func(m map[string]float64) bool {
		return m["allowlist_resolver_list_stale"] == 1
	})
	if stale["allowlist_resolver_list_expired"] != 0 || stale["allowlist_resolver_failing_closed"] != 0 {
		t.Errorf("stale is not yet expired:\n%s", freshnessLines(stale))
	}
	expired := waitMetric(t, metrics, "failing closed past list_expiry", 8*time.Second, func(m map[string]float64) bool {
		return m["allowlist_resolver_failing_closed"] == 1
	})
	t.Logf("frozen: expired after %v", time.Since(frozeAt).Round(100*time.Millisecond))
	if expired["allowlist_resolver_list_age_seconds"] < 4 || expired["allowlist_resolver_list_expired"] != 1 || expired["allowlist_resolver_ready"] != 0 {
		t.Errorf("failing closed, but:\n%s", freshnessLines(expired))
	}
	// The replayed timestamp moved nothing (stale was read 2 s after the
	// freeze, when the last live watch had ended); the contact time kept
	// moving, which is why it cannot be the measure of a list's age.
	before := stale
	if expired["allowlist_resolver_list_signed_timestamp_seconds"] != before["allowlist_resolver_list_signed_timestamp_seconds"] {
		t.Errorf("the signed time moved while frozen:\n%s", freshnessLines(expired))
	}
	if expired["allowlist_resolver_last_sync_timestamp_seconds"] <= before["allowlist_resolver_last_sync_timestamp_seconds"] || proxy.replays.Load() == 0 {
		t.Errorf("the frozen proxy was not asked (%d replays)", proxy.replays.Load())
	}
	if expired["allowlist_resolver_sync_errors_total{reason=\"timestamp\"}"] != 0 {
		t.Error("a genuine old timestamp was counted as a bad one")
	}
	// What is kept for a restart is the newest genuine timestamp, not the
	// replayed one.
	saved, _ := os.ReadFile(filepath.Join(dir, "cache-fail", "timestamp"))
	if f := strings.Split(string(saved), "\n"); len(f) < 3 || f[2] != time.Unix(int64(before["allowlist_resolver_list_signed_timestamp_seconds"]), 0).UTC().Format(time.RFC3339) {
		t.Errorf("kept timestamp %q, signed time %v", saved, before["allowlist_resolver_list_signed_timestamp_seconds"])
	}
	r := askA(t, res, "us02web.zoom.us")
	if r.Rcode != dns.RcodeRefused || !strings.Contains(edeText(r), "expired") {
		t.Fatalf("failing closed, an allowed name got rcode %d, EDE %q", r.Rcode, edeText(r))
	}
	if resp, err := http.Get("http://" + metrics + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Errorf("readyz while failing closed: %v %v", resp.StatusCode, err)
	}
	// The proxy answers at once; the resolver waits between requests
	// that bring nothing new, instead of spinning.
	if n := proxy.replays.Load(); n > int64(time.Since(frozeAt)/(400*time.Millisecond))+3 {
		t.Errorf("%d requests to the frozen proxy in %v: the resolver spins", n, time.Since(frozeAt))
	}

	proxy.frozen.Store(false)
	waitMetric(t, metrics, "recovery once the registry answers again", 5*time.Second, func(m map[string]float64) bool {
		return m["allowlist_resolver_failing_closed"] == 0 && m["allowlist_resolver_list_stale"] == 0
	})
	if r := askA(t, res, "us02web.zoom.us"); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after recovery, an allowed name: %s", r)
	}

	// Zoom is suspended: the next version leaves it out. The proxy kept
	// the seeded version as first seen, with its timestamp, which by now
	// is old.
	if c, b := reg.call(t, "POST", "/v1/sites/zoom/suspend", reg.admin, `{"reason":"test"}`); c != 200 {
		t.Fatalf("suspend: %d %s", c, b)
	}
	proxy.mu.Lock()
	old := proxy.old
	proxy.mu.Unlock()
	if old == nil || old.header.Get("X-Allowlist-Version") != fmt.Sprint(seeded) || old.header.Get("X-Allowlist-Timestamp") == "" {
		t.Fatalf("the proxy did not keep version %v with its timestamp: %v", seeded, old)
	}
	stampAt, _ := time.Parse(time.RFC3339, old.header.Get("X-Allowlist-Timestamp"))
	time.Sleep(time.Until(stampAt.Add(5 * time.Second)))

	for _, onExpiry := range []string{"fail", "serve"} {
		replay := newFreezer(t, reg.url, old)
		replay.frozen.Store(true)
		res, metrics := startResolverMetrics(t, resolverConf(t, t.TempDir(), replay.url, pub, up, onExpiry))
		m := waitMetric(t, metrics, onExpiry+": the replayed version held and flagged", 10*time.Second, func(m map[string]float64) bool {
			return m["allowlist_resolver_list_version"] == seeded && m["allowlist_resolver_list_expired"] == 1
		})
		r := askA(t, res, "us02web.zoom.us")
		switch onExpiry {
		case "fail":
			if m["allowlist_resolver_failing_closed"] != 1 || r.Rcode != dns.RcodeRefused {
				t.Errorf("fail: an old version to an empty cache is enforced (rcode %d):\n%s", r.Rcode, freshnessLines(m))
			}
		case "serve":
			if m["allowlist_resolver_failing_closed"] != 0 || r.Rcode != dns.RcodeSuccess {
				t.Errorf("serve: the old version is not enforced (rcode %d):\n%s", r.Rcode, freshnessLines(m))
			}
		}
		if age := m["allowlist_resolver_list_age_seconds"]; age < 4 {
			t.Errorf("%s: the replayed version's age is %v s", onExpiry, age)
		}
		// Old from the moment it is installed, not only once list_expiry
		// has passed since: its age runs from the time the registry
		// signed, never from when this resolver first saw it.
		if signed := m["allowlist_resolver_list_signed_timestamp_seconds"]; signed > float64(stampAt.Unix()) {
			t.Errorf("%s: the replayed version counts as vouched for at %v, after its timestamp %v",
				onExpiry, time.Unix(int64(signed), 0).UTC(), stampAt)
		}
	}
}
