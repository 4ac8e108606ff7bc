package resolver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/miekg/dns"
)

// fakeRegistry serves signed lists the way the registry's API does: the
// latest list, and a watch long-poll.
type fakeRegistry struct {
	t       *testing.T
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	sig     string
	version int64
	changed chan struct{}
	fetches atomic.Int64
	// With heads set it answers HEAD on the watch with the version's
	// identity and serves diffs, as the registry does; without, HEAD gets
	// a bare 200, as from a registry that predates patching.
	heads    bool
	history  map[int64][]allowlist.Entry
	at       time.Time
	tamper   func(*list.DiffBody) // changes a diff before it is served
	atSkew   time.Duration        // added to the announced generated_at
	diffs    atomic.Int64
	fullGets atomic.Int64
}

func newRegistry(t *testing.T) *fakeRegistry {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	f := &fakeRegistry{t: t, key: key, pub: pub, changed: make(chan struct{}), history: map[int64][]allowlist.Entry{}}
	f.publish(0, nil)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// publish makes version v with the given patterns current.
func (f *fakeRegistry) publish(v int64, patterns []string) {
	entries := []allowlist.Entry{}
	for _, p := range patterns {
		entries = append(entries, allowlist.Entry{Pattern: p, Site: "site-" + strings.TrimPrefix(p, "*."), Category: "other"})
	}
	l, body := allowlist.NewList("common", v, time.Now(), entries)
	f.mu.Lock()
	f.history[v], f.at = l.Entries, l.GeneratedAt
	f.mu.Unlock()
	f.set(v, body, list.Sign(f.key, body))
}

func (f *fakeRegistry) set(v int64, body []byte, sig string) {
	f.mu.Lock()
	f.version, f.body, f.sig = v, body, sig
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.fetches.Add(1)
	f.mu.Lock()
	body, sig, v, changed := f.body, f.sig, f.version, f.changed
	f.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/watch") {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		timeout, _ := time.ParseDuration(r.URL.Query().Get("timeout"))
		if v <= after {
			select {
			case <-changed:
				f.serve(w, r)
				return
			case <-time.After(timeout):
				w.WriteHeader(http.StatusNotModified)
				return
			case <-r.Context().Done():
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Allowlist-Signature", sig)
	f.mu.Lock()
	heads, history, at, tamper := f.heads, f.history, f.at.Add(f.atSkew), f.tamper
	f.mu.Unlock()
	if heads && strings.HasSuffix(r.URL.Path, "/diff") {
		f.diffs.Add(1)
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		f.mu.Lock()
		a, aok := history[from]
		b, bok := history[to]
		f.mu.Unlock()
		if !aok || !bok {
			http.NotFound(w, r)
			return
		}
		d := &list.DiffBody{Scope: "common", From: from, To: to}
		d.Added, d.Removed = list.Diff(a, b)
		if tamper != nil {
			tamper(d)
		}
		json.NewEncoder(w).Encode(d)
		return
	}
	if heads {
		l, err := allowlist.DecodeList(body)
		if err != nil {
			f.t.Error(err)
		}
		w.Header().Set("X-Allowlist-Version", strconv.FormatInt(v, 10))
		w.Header().Set("X-Allowlist-SHA256", l.SHA256)
		w.Header().Set("X-Allowlist-Generated-At", at.UTC().Truncate(time.Second).Format(time.RFC3339Nano))
	}
	if r.Method == "HEAD" {
		return
	}
	f.fullGets.Add(1)
	w.Write(body)
}

// upstream is a small authoritative-style DNS server for the tests.
type upstream struct {
	addr    string
	ip      string
	queries atomic.Int64
	servers []*dns.Server
}

func newUpstream(t *testing.T, ip string) *upstream {
	u := &upstream{ip: ip}
	conns, ln, err := bindPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns[1:] {
		c.Close()
	}
	pc := conns[0]
	u.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		q := req.Question[0]
		m := new(dns.Msg)
		m.SetReply(req)
		name := strings.ToLower(q.Name)
		switch {
		case strings.HasPrefix(name, "nx."):
			m.Rcode = dns.RcodeNameError
			zone := strings.TrimPrefix(name, "nx.")
			m.Ns = []dns.RR{mustRR(zone + " 300 IN SOA ns." + zone + " h." + zone + " 1 3600 600 86400 30")}
		case strings.HasPrefix(name, "alias."):
			m.Answer = []dns.RR{mustRR(q.Name + " 300 IN CNAME target.cdn.example.net."), mustRR("target.cdn.example.net. 300 IN A " + u.ip)}
		case strings.HasPrefix(name, "big."):
			for i := 0; i < 60; i++ {
				m.Answer = append(m.Answer, mustRR(fmt.Sprintf("%s 300 IN TXT \"%s\"", q.Name, strings.Repeat("x", 40))))
			}
			if w.LocalAddr().Network() == "udp" {
				m.Answer = nil
				m.Truncated = true
			}
		case q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{mustRR(q.Name + " 300 IN A " + u.ip)}
		}
		w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		u.servers = append(u.servers, s)
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) stop() {
	for _, s := range u.servers {
		s.Shutdown()
	}
	u.servers = nil
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, o Options) *Resolver {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.MetricsListen == "" {
		o.MetricsListen = "127.0.0.1:0"
	}
	if o.Scope == "" {
		o.Scope = "common"
	}
	if o.Mode == "" {
		o.Mode = ModeEnforce
	}
	if o.CacheDir == "" {
		o.CacheDir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
	o.WatchTimeout = 2 * time.Second
	o.PollInterval = 300 * time.Millisecond
	o.UpstreamTimeout = 500 * time.Millisecond
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); r.Shutdown(); r.Wait() })
	return r
}

func waitVersion(t *testing.T, r *Resolver, v int64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for r.Version() != v {
		if time.Since(start) > within {
			t.Fatalf("version %d not enforced within %v (have %d)", v, within, r.Version())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// readCache returns the cached body and signature, whole.
func readCache(dir string) ([]byte, string, error) {
	b, err := os.ReadFile(cachePath(dir))
	if err != nil {
		return nil, "", err
	}
	magic, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(magic) != cacheMagic {
		return nil, "", errors.New("not a list cache file")
	}
	sig, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, "", errors.New("list cache file is truncated")
	}
	return body, string(sig), nil
}

// waitCached waits until the cache file in dir holds version v: a new
// list is enforced first and kept as the cache just after.
func waitCached(t *testing.T, dir string, v int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("cache file at version %d", v), func() bool {
		b, _, err := readCache(dir)
		if err != nil {
			return false
		}
		l, err := allowlist.ParseList(b)
		return err == nil && l.Version == v
	})
}

// eventually polls cond for up to 2 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func query(t *testing.T, r *Resolver, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, r.Addr(netw))
	if err != nil {
		t.Fatalf("%s %s: %v", netw, name, err)
	}
	return resp
}

func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

func TestEnforce(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(3, []string{"*.zoom.example", "meet.example.org"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, RequestURL: "https://registry.example/"})
	waitVersion(t, r, 3, 2*time.Second)
	for _, netw := range []string{"udp", "tcp"} {
		t.Run(netw, func(t *testing.T) {
			for _, name := range []string{"zoom.example", "us02web.zoom.example", "MEET.example.org"} {
				m := query(t, r, netw, name, dns.TypeA)
				if m.Rcode != dns.RcodeSuccess || firstA(m) != "192.0.2.1" {
					t.Errorf("%s: %s", name, m)
				}
			}
			for _, name := range []string{"evil.example.com", "x.meet.example.org", "zoom.example.evil.net"} {
				m := query(t, r, netw, name, dns.TypeA)
				e := ede(m)
				if m.Rcode != dns.RcodeNameError || e == nil || e.InfoCode != edeBlocked {
					t.Fatalf("%s not blocked with EDE 15: %s", name, m)
				}
				for _, want := range []string{"scope common", "version 3", "https://registry.example/"} {
					if !strings.Contains(e.ExtraText, want) {
						t.Errorf("EDE text %q lacks %q", e.ExtraText, want)
					}
				}
			}
		})
	}
	// Without a request_url of its own, the text links to the registry's
	// check page for the very name, which says why it is blocked.
	plain := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, plain, 3, 2*time.Second)
	for _, netw := range []string{"udp", "tcp"} {
		e := ede(query(t, plain, netw, "Evil.Example.com", dns.TypeA))
		want := reg.srv.URL + "/check?department=common&q=evil.example.com"
		if e == nil || !strings.HasSuffix(e.ExtraText, "; why, and how to ask for it: "+want) {
			t.Errorf("%s: EDE %v, want it to end with %s", netw, e, want)
		}
	}
	// The whole answer of an allowed name passes through, CNAME chain included.
	m := query(t, r, "udp", "alias.zoom.example", dns.TypeA)
	if len(m.Answer) != 2 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("CNAME chain: %s", m)
	}
	// A truncated UDP answer upstream is fetched again over TCP.
	m = query(t, r, "tcp", "big.zoom.example", dns.TypeTXT)
	if len(m.Answer) != 60 {
		t.Errorf("TC retry over TCP: %d answers", len(m.Answer))
	}
	// ANY gets a minimal answer (RFC 8482), without asking upstream.
	before := up.queries.Load()
	m = query(t, r, "udp", "zoom.example", dns.TypeANY)
	if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeHINFO || up.queries.Load() != before {
		t.Errorf("ANY: %s", m)
	}
}

func TestAnswerCache(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.example.org"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	query(t, r, "udp", "www.example.org", dns.TypeA)
	query(t, r, "udp", "WWW.example.org", dns.TypeA)
	m := query(t, r, "udp", "nx.example.org", dns.TypeA)
	query(t, r, "udp", "nx.example.org", dns.TypeA)
	if got := up.queries.Load(); got != 2 {
		t.Errorf("upstream asked %d times, want 2 (one positive, one negative, each cached)", got)
	}
	if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Errorf("negative answer: %s", m)
	}
	// The cached negative TTL is the SOA minimum (30), not the SOA TTL
	// (300): in the packed cache of the UDP fast path...
	e := r.cache.get(packedKey{name: "nx.example.org", qtype: dns.TypeA, flags: packedEDNS})
	if e == nil || e.expires.Sub(e.stored) != 30*time.Second {
		t.Errorf("UDP negative answer cached as %+v, want for 30s", e)
	}
	// ...and in the ordinary path's, which TCP uses.
	query(t, r, "tcp", "nx.tcp.example.org", dns.TypeA)
	c := r.cache.get(packedKey{name: "nx.tcp.example.org.", qtype: dns.TypeA, flags: packedUpstream})
	if c == nil {
		t.Fatal("TCP negative answer not cached")
	}
	if d := c.expires.Sub(c.stored); d != 30*time.Second {
		t.Errorf("TCP negative TTL %v, want 30s", d)
	}
}

func TestRouteMode(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	filtered := newUpstream(t, "198.51.100.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Mode: ModeRoute, Upstreams: []string{up.addr}, FilteredUpstreams: []string{filtered.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	if got := firstA(query(t, r, "udp", "a.zoom.example", dns.TypeA)); got != "192.0.2.1" {
		t.Errorf("allowed name went to %s", got)
	}
	if got := firstA(query(t, r, "udp", "other.example.com", dns.TypeA)); got != "198.51.100.1" {
		t.Errorf("other name went to %s", got)
	}
}

func TestMonitorMode(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Mode: ModeMonitor, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	if got := firstA(query(t, r, "udp", "other.example.com", dns.TypeA)); got != "192.0.2.1" {
		t.Errorf("monitor blocked: %q", got)
	}
	// A query is counted just after its answer is written (the count
	// carries the latency), so the scrape may come first: give it a moment.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(scrape(t, r), `allowlist_resolver_queries_total{result="would_block"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("would_block not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBlockAnswers(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, Block: BlockSinkhole})
	waitVersion(t, r, 1, 2*time.Second)
	if m := query(t, r, "udp", "evil.example.com", dns.TypeA); firstA(m) != "0.0.0.0" || ede(m) == nil {
		t.Errorf("sinkhole A: %s", m)
	}
	if m := query(t, r, "udp", "evil.example.com", dns.TypeAAAA); len(m.Answer) != 1 || ede(m) == nil {
		t.Errorf("sinkhole AAAA: %s", m)
	}
	r2 := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, Block: BlockRefused})
	waitVersion(t, r2, 1, 2*time.Second)
	if m := query(t, r2, "udp", "evil.example.com", dns.TypeA); m.Rcode != dns.RcodeRefused || ede(m).InfoCode != edeBlocked {
		t.Errorf("refused: %s", m)
	}
}

// TestNewVersionWithin2s publishes a new version and measures how long the
// resolver takes to enforce it.
func TestNewVersionWithin2s(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	if query(t, r, "udp", "new.example.net", dns.TypeA).Rcode != dns.RcodeNameError {
		t.Fatal("not blocked before approval")
	}
	time.Sleep(100 * time.Millisecond) // the resolver is now waiting on watch
	reg.publish(2, []string{"*.zoom.example", "*.new.example.net"})
	took := waitVersion(t, r, 2, 2*time.Second)
	t.Logf("new version enforced %v after publication", took)
	if m := query(t, r, "udp", "new.example.net", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("newly approved name: %s", m)
	}
}

// TestRegistryDownAndRestartFromCache: with the registry gone, the
// resolver keeps answering; a new resolver starts from the cached list.
func TestRegistryDownAndRestartFromCache(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(5, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	dir := t.TempDir()
	o := Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: dir}
	r := start(t, o)
	waitVersion(t, r, 5, 2*time.Second)
	waitCached(t, dir, 5)
	reg.srv.CloseClientConnections()
	reg.srv.Close()
	time.Sleep(200 * time.Millisecond)
	if m := query(t, r, "udp", "a.zoom.example", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("registry down: %s", m)
	}
	if m := query(t, r, "udp", "evil.example.com", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("registry down, blocked name: %s", m)
	}
	r.Shutdown()
	r2 := start(t, o)
	if !r2.Ready() || r2.Version() != 5 {
		t.Fatalf("restart from cache: ready %v version %d", r2.Ready(), r2.Version())
	}
	if m := query(t, r2, "udp", "a.zoom.example", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("from cache: %s", m)
	}
}

// TestNotReady: with neither registry nor cache, enforce refuses with EDE
// 14 and route sends everything to the filtered upstreams.
func TestNotReady(t *testing.T) {
	up := newUpstream(t, "192.0.2.1")
	filtered := newUpstream(t, "198.51.100.1")
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	r := start(t, Options{Registry: "http://127.0.0.1:1", PublicKey: pub, Upstreams: []string{up.addr}})
	m := query(t, r, "udp", "zoom.example", dns.TypeA)
	if m.Rcode != dns.RcodeRefused || ede(m) == nil || ede(m).InfoCode != edeNotReady {
		t.Errorf("enforce without a list: %s", m)
	}
	if resp, err := http.Get("http://" + r.Addr("metrics") + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Errorf("readyz without a list: %v %v", resp.StatusCode, err)
	}
	rr := start(t, Options{Registry: "http://127.0.0.1:1", PublicKey: pub, Mode: ModeRoute, Upstreams: []string{up.addr}, FilteredUpstreams: []string{filtered.addr}})
	if got := firstA(query(t, rr, "udp", "zoom.example", dns.TypeA)); got != "198.51.100.1" {
		t.Errorf("route without a list went to %q", got)
	}
}

func TestTamperedCacheIsSetAside(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(4, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	dir := t.TempDir()
	o := Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: dir}
	r := start(t, o)
	waitVersion(t, r, 4, 2*time.Second)
	waitCached(t, dir, 4)
	r.Shutdown()
	for name, tamper := range map[string]func([]byte) []byte{
		"widened": func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "*.zoom.example", "*.evil.example", 1))
		},
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"garbage":   func(b []byte) []byte { return []byte("hello") },
	} {
		t.Run(name, func(t *testing.T) {
			good, _ := os.ReadFile(cachePath(dir))
			os.WriteFile(cachePath(dir), tamper(good), 0o600)
			o.Registry = "http://127.0.0.1:1" // registry down too
			r := start(t, o)
			if r.Ready() {
				t.Fatal("a tampered cache was used")
			}
			if _, err := os.Stat(cachePath(dir)); !os.IsNotExist(err) {
				t.Error("the tampered cache was not set aside")
			}
			if !strings.Contains(scrape(t, r), `allowlist_resolver_sync_errors_total{reason="cache_invalid"} 1`) {
				t.Error("no metric for the bad cache")
			}
			os.WriteFile(cachePath(dir), good, 0o600)
		})
	}
}

func TestRefusesBadListsFromRegistry(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(5, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 5, 2*time.Second)

	// Signed by another key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, body := allowlist.NewList("common", 6, time.Now(), []allowlist.Entry{{Pattern: "*.evil.example", Site: "evil", Category: "other"}})
	reg.set(6, body, list.Sign(other, body))
	// No signature at all.
	time.Sleep(300 * time.Millisecond)
	reg.set(6, body, "")
	time.Sleep(300 * time.Millisecond)
	// A rollback to an older version, properly signed.
	_, old := allowlist.NewList("common", 2, time.Now(), []allowlist.Entry{{Pattern: "*.evil.example", Site: "evil", Category: "other"}})
	reg.set(2, old, list.Sign(reg.key, old))
	time.Sleep(300 * time.Millisecond)
	// Garbage with a 200.
	reg.set(7, []byte("{not json"), list.Sign(reg.key, []byte("{not json")))
	time.Sleep(500 * time.Millisecond)
	if r.Version() != 5 {
		t.Fatalf("now enforcing version %d", r.Version())
	}
	if m := query(t, r, "udp", "a.evil.example", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("a refused list took effect: %s", m)
	}
	metrics := scrape(t, r)
	for _, reason := range []string{"signature", "invalid"} {
		if !strings.Contains(metrics, `allowlist_resolver_sync_errors_total{reason="`+reason+`"}`) {
			t.Errorf("no %s sync error counted", reason)
		}
	}
	// The rollback is refused only when fetched outside watch (watch asks
	// for versions after 5): force a plain fetch by failing the watch.
	waitCached(t, r.opt.CacheDir, 5)
}

func TestRollbackRefused(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, body := allowlist.NewList("common", 9, time.Now(), nil)
	p, err := verify(pub, "common", 9, body, list.Sign(key, body))
	if err != nil || p.version != 9 {
		t.Fatalf("same version: %v", err)
	}
	_, older := allowlist.NewList("common", 8, time.Now(), nil)
	_, err = verify(pub, "common", 9, older, list.Sign(key, older))
	if se, ok := err.(*SyncError); !ok || se.Reason != "rollback" {
		t.Errorf("rollback: %v", err)
	}
	_, other := allowlist.NewList("dept-x", 10, time.Now(), nil)
	if _, err := verify(pub, "common", 9, other, list.Sign(key, other)); err == nil {
		t.Error("a list for another scope was accepted")
	}
}

func TestUpstreamDown(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	up.stop()
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	t0 := time.Now()
	m := query(t, r, "udp", "a.zoom.example", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || ede(m) == nil {
		t.Errorf("upstream down: %s", m)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("SERVFAIL took %v", d)
	}
	// Failover: a dead first upstream, a live second one.
	live := newUpstream(t, "192.0.2.9")
	r2 := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr, live.addr}})
	waitVersion(t, r2, 1, 2*time.Second)
	if got := firstA(query(t, r2, "udp", "b.zoom.example", dns.TypeA)); got != "192.0.2.9" {
		t.Errorf("failover answered %q", got)
	}
}

func TestRefusesWhatItDoesNotServe(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	notify := new(dns.Msg)
	notify.SetNotify("zoom.example.")
	if m, _, err := c.Exchange(notify, r.Addr("udp")); err != nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY: %v %v", m, err)
	}
	update := new(dns.Msg)
	update.SetUpdate("zoom.example.")
	if m, _, err := c.Exchange(update, r.Addr("udp")); err != nil || m.Rcode == dns.RcodeSuccess {
		t.Errorf("UPDATE: %v %v", m, err)
	}
	chaos := new(dns.Msg)
	chaos.SetQuestion("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	if m, _, err := c.Exchange(chaos, r.Addr("udp")); err != nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS: %v %v", m, err)
	}
	axfr := new(dns.Msg)
	axfr.SetQuestion("zoom.example.", dns.TypeAXFR)
	if m, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(axfr, r.Addr("tcp")); err != nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR: %v %v", m, err)
	}
}

// TestIdleTCPClientDoesNotBlockOthers holds a TCP connection open without
// sending anything while other clients query.
func TestIdleTCPClientDoesNotBlockOthers(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	var idle []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", r.Addr("tcp"))
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 10; i++ {
		if m := query(t, r, "tcp", "a.zoom.example", dns.TypeA); m.Rcode != dns.RcodeSuccess {
			t.Fatalf("query with idle clients: %s", m)
		}
	}
}

// TestReloadUnderLoad replaces the list every 100 ms while clients query
// without pause; no query may fail.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	reg := newRegistry(t)
	base := []string{"*.zoom.example"}
	for i := 0; i < 20000; i++ {
		base = append(base, fmt.Sprintf("*.site%d.example.net", i))
	}
	reg.publish(1, base)
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 5*time.Second)
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	var latMu sync.Mutex
	var lat []time.Duration
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name, want := "a.zoom.example.", dns.RcodeSuccess
				if i%2 == 1 {
					name, want = fmt.Sprintf("blocked%d.example.com.", w), dns.RcodeNameError
				}
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				t0 := time.Now()
				resp, _, err := c.Exchange(m, r.Addr("udp"))
				latMu.Lock()
				lat = append(lat, time.Since(t0))
				latMu.Unlock()
				sent.Add(1)
				if err != nil || resp.Rcode != want {
					failed.Add(1)
				}
			}
		}(w)
	}
	for v := int64(2); v <= 11; v++ {
		time.Sleep(100 * time.Millisecond)
		reg.publish(v, append(base, fmt.Sprintf("*.extra%d.example.org", v)))
	}
	waitVersion(t, r, 11, 5*time.Second)
	close(stop)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d queries across 10 reloads of a 20,000-entry list, %d failed, p50 %v, p99 %v", sent.Load(), failed.Load(), lat[len(lat)/2], lat[len(lat)*99/100])
	if failed.Load() != 0 || sent.Load() < 100 {
		t.Errorf("%d of %d queries failed", failed.Load(), sent.Load())
	}
}

func TestDiskFullKeepsOldCache(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	dir := t.TempDir()
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: dir})
	waitVersion(t, r, 1, 2*time.Second)
	waitCached(t, dir, 1)
	good, _ := os.ReadFile(cachePath(dir))
	// Make the directory unwritable: the next write fails as on a full disk.
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		// root ignores permissions: simulate with a file where the
		// directory for temporary files should be.
		os.Chmod(dir, 0o700)
		r.opt.CacheDir = cachePath(dir) // a file, not a directory
	}
	reg.publish(2, []string{"*.zoom.example", "*.new.example"})
	waitVersion(t, r, 2, 2*time.Second)
	// The cache is kept after enforcing: wait for the failed attempt.
	eventually(t, "the failed cache write to be counted", func() bool {
		return strings.Contains(scrape(t, r), `allowlist_resolver_sync_errors_total{reason="cache_write"} 1`)
	})
	now, _ := os.ReadFile(cachePath(dir))
	if string(now) != string(good) {
		t.Error("the old cache changed after a failed write")
	}
}

func scrape(t *testing.T, r *Resolver) string {
	resp, err := http.Get("http://" + r.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestEquivocationRefused: the same version with other content is refused.
func TestEquivocationRefused(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(3, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 3, 2*time.Second)
	waitCached(t, r.opt.CacheDir, 3)
	r.Shutdown()
	if err := r.accept(bytes.NewReader(mustBody(t, reg, 3, "*.evil.example")), "", 3); err == nil {
		t.Fatal("accepted an unsigned list")
	}
	body := mustBody(t, reg, 3, "*.evil.example")
	err := r.accept(bytes.NewReader(body), list.Sign(reg.key, body), 3)
	if se, ok := err.(*SyncError); !ok || se.Reason != "equivocation" {
		t.Fatalf("equivocation: %v", err)
	}
	if m := query(t, start(t, Options{Registry: "http://127.0.0.1:1", PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: r.opt.CacheDir}), "udp", "a.evil.example", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("the equivocating list reached the cache: %s", m)
	}
}

func mustBody(t *testing.T, reg *fakeRegistry, v int64, pattern string) []byte {
	_, body := allowlist.NewList("common", v, time.Now(), []allowlist.Entry{{Pattern: pattern, Site: "s", Category: "other"}})
	return body
}

// TestUDPAnswersAreCapped: whatever buffer a client claims, a UDP answer
// is at most 1232 bytes, with TC set; TCP gets it whole.
func TestUDPAnswersAreCapped(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	m := new(dns.Msg)
	m.SetQuestion("big.zoom.example.", dns.TypeTXT)
	m.SetEdns0(65535, false)
	c := &dns.Client{Net: "udp", UDPSize: 65535, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, r.Addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Compress = true // as it was sent
	b, _ := resp.Pack()
	if len(b) > 1232 || !resp.Truncated {
		t.Errorf("UDP answer of %d bytes, TC=%v", len(b), resp.Truncated)
	}
	noEDNS := new(dns.Msg)
	noEDNS.SetQuestion("big.zoom.example.", dns.TypeTXT)
	resp, _, _ = (&dns.Client{Net: "udp", Timeout: 3 * time.Second}).Exchange(noEDNS, r.Addr("udp"))
	resp.Compress = true
	if b, _ := resp.Pack(); len(b) > 512 || !resp.Truncated {
		t.Errorf("UDP answer without EDNS: %d bytes, TC=%v", len(b), resp.Truncated)
	}
}

// TestIdenticalQueriesCoalesce: a storm of one uncached question reaches
// the upstream far fewer times than it was asked.
func TestIdenticalQueriesCoalesce(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg)
			m.SetQuestion("storm.zoom.example.", dns.TypeA)
			(&dns.Client{Timeout: 3 * time.Second}).Exchange(m, r.Addr("udp"))
		}()
	}
	wg.Wait()
	if n := up.queries.Load(); n > 10 {
		t.Errorf("50 identical queries reached the upstream %d times", n)
	}
}

// TestLoadsWhenCacheDirUnwritable: a list still loads (in memory) when the
// cache directory cannot be created, and the failure is counted.
func TestLoadsWhenCacheDirUnwritable(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(2, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o600)
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: filepath.Join(file, "cache")})
	waitVersion(t, r, 2, 2*time.Second)
	if m := query(t, r, "udp", "meet.zoom.example", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("listed name: %s", dns.RcodeToString[m.Rcode])
	}
	eventually(t, "the cache write failure to be counted", func() bool {
		return strings.Contains(scrape(t, r), `allowlist_resolver_sync_errors_total{reason="cache_write"}`)
	})
}

// failingSpool fails after a few bytes, as a full disk would.
type failingSpool struct{ left int }

func (f *failingSpool) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, &spoolError{errors.New("no space left on device")}
	}
	f.left -= len(p)
	return len(p), nil
}

// TestStreamErrorsAreTold: a full spool, a connection cut short and an
// oversized body each give their own reason, never "signature".
func TestStreamErrorsAreTold(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, body := allowlist.NewList("common", 3, time.Now(), []allowlist.Entry{{Pattern: "*.zoom.example", Site: "z", Category: "other"}})
	sig := list.Sign(key, body)
	reason := func(err error) string {
		var se *SyncError
		if errors.As(err, &se) {
			return se.Reason
		}
		return fmt.Sprint(err)
	}
	_, err := verifyStream(pub, "common", 0, io.TeeReader(bytes.NewReader(body), &failingSpool{left: 10}), sig)
	if reason(err) != "cache_write" {
		t.Errorf("full spool: %v", err)
	}
	cut := io.MultiReader(bytes.NewReader(body[:30]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := verifyStream(pub, "common", 0, cut, sig); reason(err) != "fetch" {
		t.Errorf("cut connection: %v", err)
	}
	big := &capReader{rc: io.NopCloser(bytes.NewReader(body)), left: 40}
	if _, err := verifyStream(pub, "common", 0, big, sig); reason(err) != "invalid" || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized body: %v", err)
	}
	exact := &capReader{rc: io.NopCloser(bytes.NewReader(body)), left: int64(len(body))}
	if _, err := verifyStream(pub, "common", 0, exact, sig); err != nil {
		t.Errorf("body of exactly the limit: %v", err)
	}
	if _, err := verifyStream(pub, "common", 0, bytes.NewReader(body[:len(body)-5]), sig); reason(err) != "signature" {
		t.Errorf("truncated body: %v", err)
	}
}

// rawUpstream answers from a plain UDP socket so that a test can see the
// source ports used and send answers a real server never would.
type rawUpstream struct {
	addr  string
	mu    sync.Mutex
	ports map[uint16]int
}

func newRawUpstream(t *testing.T, answer func(req *dns.Msg) []*dns.Msg) *rawUpstream {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	u := &rawUpstream{addr: pc.LocalAddr().String(), ports: map[uint16]int{}}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := new(dns.Msg)
			if req.Unpack(buf[:n]) != nil {
				continue
			}
			u.mu.Lock()
			u.ports[uint16(from.(*net.UDPAddr).Port)]++
			u.mu.Unlock()
			for _, m := range answer(req) {
				b, _ := m.Pack()
				pc.WriteTo(b, from)
			}
		}
	}()
	return u
}

// TestForwardIgnoresForeignAnswers: an answer with the right ID but
// another question is dropped, and the real answer that follows is used.
func TestForwardIgnoresForeignAnswers(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, func(req *dns.Msg) []*dns.Msg {
		forged := new(dns.Msg)
		forged.SetReply(req)
		forged.Question[0].Name = "evil.example."
		forged.Answer = []dns.RR{mustRR("evil.example. 300 IN A 203.0.113.66")}
		real := new(dns.Msg)
		real.SetReply(req)
		real.Answer = []dns.RR{mustRR(req.Question[0].Name + " 300 IN A 192.0.2.1")}
		return []*dns.Msg{forged, real}
	})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("h%d.zoom.example", i)
		m := query(t, r, "udp", name, dns.TypeA)
		if got := firstA(m); got != "192.0.2.1" || !strings.EqualFold(m.Question[0].Name, name+".") {
			t.Fatalf("%s answered %q for %s", name, got, m.Question[0].Name)
		}
	}
}

// TestForwardRotatesSourcePorts: upstream queries leave from sockets that
// are replaced as they are used, so their source ports keep changing.
func TestForwardRotatesSourcePorts(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, answersA("192.0.2.1"))
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	const n = 3 * fwdSockets * fwdSocketUses
	for i := 0; i < n; i++ {
		if got := firstA(query(t, r, "udp", fmt.Sprintf("p%d.zoom.example", i), dns.TypeA)); got != "192.0.2.1" {
			t.Fatalf("query %d: %q", i, got)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.ports) < 3*fwdSockets {
		t.Errorf("%d queries came from %d source ports, want at least %d", n, len(up.ports), 3*fwdSockets)
	}
	for port, uses := range up.ports {
		if uses > fwdSocketUses {
			t.Errorf("port %d carried %d queries (limit %d)", port, uses, fwdSocketUses)
		}
	}
}

// TestFailoverFromSilentUpstream: an upstream that swallows queries (no
// ICMP, no answer) costs the first query one timeout, not two, and the
// queries after it go straight to the next upstream.
func TestFailoverFromSilentUpstream(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	silent := newRawUpstream(t, func(*dns.Msg) []*dns.Msg { return nil })
	live := newUpstream(t, "192.0.2.9")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{silent.addr, live.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	t0 := time.Now()
	if got := firstA(query(t, r, "udp", "first.zoom.example", dns.TypeA)); got != "192.0.2.9" {
		t.Fatalf("failover answered %q", got)
	}
	// One upstream timeout (500ms in these tests) and the expiry tick.
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Errorf("first query after the silent upstream took %v", d)
	}
	if !strings.Contains(scrape(t, r), `allowlist_resolver_forward_fallbacks_total{reason="timeout"} 1`) {
		t.Error("the timeout was not counted as a fallback")
	}
	t0 = time.Now()
	for i := 0; i < 20; i++ {
		if got := firstA(query(t, r, "udp", fmt.Sprintf("n%d.zoom.example", i), dns.TypeA)); got != "192.0.2.9" {
			t.Fatalf("query %d answered %q", i, got)
		}
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("20 queries after failover took %v: still waiting on the silent upstream", d)
	}
}

// TestServesIPv6Loopback: the batched UDP reader works on an IPv6
// socket too (ipv6.PacketConn), for blocked, forwarded and cached names.
func TestServesIPv6Loopback(t *testing.T) {
	if ln, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback here:", err)
	} else {
		ln.Close()
	}
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Listen: "[::1]:0", Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for i := 0; i < 2; i++ { // forwarded, then from the cache
		if got := firstA(query(t, r, "udp", "meet.zoom.example", dns.TypeA)); got != "192.0.2.1" {
			t.Errorf("allowed name over IPv6 (%d): %q", i, got)
		}
	}
	if m := query(t, r, "udp", "games.example.com", dns.TypeA); m.Rcode != dns.RcodeNameError || ede(m) == nil {
		t.Errorf("blocked name over IPv6: %s", m)
	}
}

// startPatching starts a resolver on a registry that serves patches, with
// version 1 of patterns enforced and in its cache file.
func startPatching(t *testing.T, patterns []string) (*fakeRegistry, *Resolver, string) {
	t.Helper()
	reg := newRegistry(t)
	reg.heads = true
	reg.publish(1, patterns)
	up := newUpstream(t, "192.0.2.1")
	dir := t.TempDir()
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, CacheDir: dir})
	waitVersion(t, r, 1, 2*time.Second)
	waitCached(t, dir, 1)
	return reg, r, dir
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("*.%s%d.example.net", prefix, i)
	}
	return out
}

// TestPatchedUpdates: with a registry that answers HEAD on the watch, a
// new version is taken as the diff from the held one, the rebuilt list is
// the registry's byte for byte (it becomes the cache file), and the
// patched matcher answers for added and removed patterns.
func TestPatchedUpdates(t *testing.T) {
	v1 := names("tool", 300)
	reg, r, dir := startPatching(t, v1)
	v2 := append(slices.Clone(v1[10:]), "*.new.example.org", "exact.example.org")
	reg.publish(2, v2)
	waitVersion(t, r, 2, 2*time.Second)
	waitCached(t, dir, 2)
	for name, want := range map[string]int{"a.new.example.org": dns.RcodeSuccess, "exact.example.org": dns.RcodeSuccess,
		"x.exact.example.org": dns.RcodeNameError, "a.tool3.example.net": dns.RcodeNameError, "a.tool30.example.net": dns.RcodeSuccess} {
		if m := query(t, r, "udp", name, dns.TypeA); m.Rcode != want {
			t.Errorf("%s: rcode %d, want %d", name, m.Rcode, want)
		}
	}
	reg.mu.Lock()
	body2 := reg.body
	reg.mu.Unlock()
	cached, _, err := readCache(dir)
	if err != nil || !bytes.Equal(cached, body2) {
		t.Fatalf("cache after a patch is not the registry's body (%v)", err)
	}
	reg.publish(3, append(slices.Clone(v2), "*.third.example.org"))
	waitVersion(t, r, 3, 2*time.Second)
	m := scrape(t, r)
	for _, want := range []string{`allowlist_resolver_list_updates_total{how="full"} 1`, `allowlist_resolver_list_updates_total{how="patch"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "allowlist_resolver_patch_failures_total") {
		t.Error("a patch failed")
	}
	if got := reg.fullGets.Load(); got != 1 {
		t.Errorf("%d whole lists fetched, want only the first", got)
	}
	if q := query(t, r, "udp", "b.third.example.org", dns.TypeA); q.Rcode != dns.RcodeSuccess {
		t.Errorf("pattern of version 3 not allowed: %d", q.Rcode)
	}
}

// TestPatchFallsBackToWholeList: whatever goes wrong with a patch (a diff
// that does not give the announced list, an announcement that does not
// match the signature, no cache file to patch), the resolver takes the
// whole list instead and enforces it; nothing wrong is ever enforced.
func TestPatchFallsBackToWholeList(t *testing.T) {
	cases := []struct {
		reason string
		break_ func(reg *fakeRegistry, dir string)
	}{
		{"invalid", func(reg *fakeRegistry, _ string) {
			reg.tamper = func(d *list.DiffBody) {
				d.Added = append(d.Added, allowlist.Entry{Pattern: "*.smuggled.example.com", Site: "x", Category: "other"})
			}
		}},
		{"invalid", func(reg *fakeRegistry, _ string) {
			reg.tamper = func(d *list.DiffBody) {
				d.Removed = append(d.Removed, allowlist.Entry{Pattern: "nothere.example.com", Site: "x", Category: "other"})
			}
		}},
		{"signature", func(reg *fakeRegistry, _ string) { reg.atSkew = time.Second }},
		{"diff", func(reg *fakeRegistry, _ string) {
			reg.tamper = func(d *list.DiffBody) { d.From = 99 }
		}},
		{"no_base", func(_ *fakeRegistry, dir string) { os.Remove(cachePath(dir)) }},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			reg, r, dir := startPatching(t, names("tool", 50))
			reg.mu.Lock()
			c.break_(reg, dir)
			reg.mu.Unlock()
			reg.publish(2, append(names("tool", 40), "*.new.example.org"))
			waitVersion(t, r, 2, 3*time.Second)
			if q := query(t, r, "udp", "a.smuggled.example.com", dns.TypeA); q.Rcode != dns.RcodeNameError {
				t.Error("a name only the tampered diff added is allowed")
			}
			if q := query(t, r, "udp", "a.new.example.org", dns.TypeA); q.Rcode != dns.RcodeSuccess {
				t.Error("version 2 not enforced")
			}
			m := scrape(t, r)
			for _, want := range []string{`allowlist_resolver_patch_failures_total{reason="` + c.reason + `"} 1`, `allowlist_resolver_list_updates_total{how="full"} 2`} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			waitCached(t, dir, 2)
		})
	}
}

// TestPatchCompilesAfreshOnceStale: a change that removes most of the list
// would leave the patched matcher mostly empty slots; the resolver then
// compiles the rebuilt list instead, still without fetching it whole.
func TestPatchCompilesAfreshOnceStale(t *testing.T) {
	reg, r, _ := startPatching(t, names("tool", 1500))
	reg.publish(2, append(names("tool", 100), "*.new.example.org"))
	waitVersion(t, r, 2, 2*time.Second)
	if p := r.policy.Load(); p.matcher.Stale() != 0 || p.entries != 101 {
		t.Errorf("matcher after a large removal: %d stale, %d entries", p.matcher.Stale(), p.entries)
	}
	for name, want := range map[string]int{"a.tool5.example.net": dns.RcodeSuccess, "a.tool500.example.net": dns.RcodeNameError, "a.new.example.org": dns.RcodeSuccess} {
		if m := query(t, r, "udp", name, dns.TypeA); m.Rcode != want {
			t.Errorf("%s: rcode %d, want %d", name, m.Rcode, want)
		}
	}
	if m := scrape(t, r); !strings.Contains(m, `allowlist_resolver_list_updates_total{how="patch"} 1`) {
		t.Error("the change was not taken as a patch")
	}
}

// TestMisplacedOPTFromUpstream: an upstream that puts an OPT record among
// its answers (FuzzUpstreamAnswer found the fast path taking it for the
// message's OPT) gets its answer handed on without it, over UDP and TCP,
// with the client's EDNS in the additional section.
func TestMisplacedOPTFromUpstream(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, func(req *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 4096}}
		m.Answer = []dns.RR{opt, mustRR(req.Question[0].Name + " 300 IN A 192.0.2.1")}
		return []*dns.Msg{m}
	})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for i, netw := range []string{"udp", "udp", "tcp"} { // the second UDP query is a cache hit
		m := query(t, r, netw, fmt.Sprintf("h%d.zoom.example", i/2), dns.TypeA)
		if firstA(m) != "192.0.2.1" || len(m.Answer) != 1 || m.IsEdns0() == nil {
			t.Fatalf("%s: %v", netw, m)
		}
	}
}

// TestBlockedLongNameFitsSmallClient: the EDE text of a blocked answer
// carries the name, so a long name makes it long; a client that can take
// only 512 bytes over UDP still gets no more than that (TC, for TCP), and
// over TCP the whole text.
func TestBlockedLongNameFitsSmallClient(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(3, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 3, 2*time.Second)
	l := strings.Repeat("a", 60)
	name := l + "." + l + "." + l + "." + l[:50] + ".com."
	for _, size := range []uint16{512, 700} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(size, false)
		pkt, _ := m.Pack()
		b := exchangeRaw(t, "udp", r.Addr("udp"), pkt, 2*time.Second)
		got := new(dns.Msg)
		if err := got.Unpack(b); err != nil || len(b) > int(size) || !got.Truncated || got.Rcode != dns.RcodeNameError {
			t.Errorf("EDNS size %d: a %d-byte answer (TC %v, rcode %d, %v)", size, len(b), got.Truncated, got.Rcode, err)
		}
		if e := ede(got); e == nil || e.InfoCode != edeBlocked {
			t.Errorf("EDNS size %d: no EDE 15 left in the truncated answer: %v", size, got)
		}
	}
	e := ede(query(t, r, "tcp", name, dns.TypeA))
	if e == nil || !strings.HasSuffix(e.ExtraText, "&q="+strings.TrimSuffix(name, ".")) {
		t.Errorf("over TCP: %v", e)
	}
}

// TestBlockedTextNeverCarriesCredentials: every refused client reads the
// blocked answer's address, so a user name, password or query in the
// registry URL never reaches it.
func TestBlockedTextNeverCarriesCredentials(t *testing.T) {
	r, err := New(Options{Registry: "https://reader:s3cret@registry.example/?token=abc#x", PublicKey: make([]byte, 32), Scope: "hmrc",
		Mode: ModeEnforce, CacheDir: t.TempDir(), Upstreams: []string{"127.0.0.1:9"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	text, withName := r.blockedText(&policy{scope: "hmrc", version: 4})
	if !withName || !strings.HasSuffix(text, "https://registry.example/check?department=hmrc&q=") ||
		strings.Contains(text, "s3cret") || strings.Contains(text, "reader") || strings.Contains(text, "abc") {
		t.Errorf("blocked text %q", text)
	}
}
