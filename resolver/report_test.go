package resolver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/e2e/realproc"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// usageRegistry is the fake registry's lists plus a /v1/usage endpoint
// that keeps what it is sent and answers with the status set in fail
// (0: 202).
type usageRegistry struct {
	*fakeRegistry
	srv   *httptest.Server
	mu    sync.Mutex
	fail  int
	got   []allowlist.UsageReport
	raw   [][]byte
	auths []string
}

func newUsageRegistry(t *testing.T) *usageRegistry {
	u := &usageRegistry{fakeRegistry: newRegistry(t)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/usage" {
			u.fakeRegistry.serve(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var rep allowlist.UsageReport
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Errorf("usage body: %v", err)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		u.got, u.raw, u.auths = append(u.got, rep), append(u.raw, body), append(u.auths, r.Header.Get("Authorization"))
		if u.fail != 0 {
			http.Error(w, "not now", u.fail)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(allowlist.UsageReceipt{ReportID: rep.ReportID, Entries: len(rep.Entries), Refused: len(rep.Refused)})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *usageRegistry) setFail(status int) {
	u.mu.Lock()
	u.fail = status
	u.mu.Unlock()
}

func (u *usageRegistry) snapshot() ([]allowlist.UsageReport, [][]byte, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]allowlist.UsageReport(nil), u.got...), append([][]byte(nil), u.raw...), append([]string(nil), u.auths...)
}

func (u *usageRegistry) ids() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ids []string
	for _, r := range u.got {
		ids = append(ids, r.ReportID)
	}
	return ids
}

// reporting starts a resolver that reports (every hour: the tests end
// periods themselves) to reg, logging at debug level into log.
func reporting(t *testing.T, reg *usageRegistry, mode string, log io.Writer, change ...func(*Options)) *Resolver {
	t.Helper()
	up := newUpstream(t, "192.0.2.1")
	o := Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}, Mode: mode, Token: "reader-token",
		Report: ReportOptions{Every: time.Hour, K: 5, Department: "hmrc"}}
	if mode == ModeRoute {
		o.FilteredUpstreams = []string{newUpstream(t, "192.0.2.9").addr}
	}
	for _, c := range change {
		c(&o)
	}
	if log != nil {
		o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := start(t, o)
	waitVersion(t, r, 7, 2*time.Second)
	return r
}

// askFrom sends a query over UDP from the loopback address from.
func askFrom(t *testing.T, r *Resolver, from, name string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := c.Exchange(m, r.Addr("udp"))
	if err != nil {
		t.Fatalf("%s from %s: %v", name, from, err)
	}
	return resp
}

// TestUsageReport: in each mode, a domain asked by 6 distinct clients
// (6 loopback source addresses, real UDP) is reported and one asked by 3
// is not; hits are counted once per query, on the fast path and on the
// ordinary path alike; the report validates as the registry validates it;
// and no client address appears in the report, the log, the metrics or
// the files in cache_dir.
func TestUsageReport(t *testing.T) {
	// Sinkhole answers for blocked names come from the ordinary path,
	// after the fast path decided them: counted once all the same.
	for _, c := range []struct{ mode, block string }{{ModeEnforce, BlockNXDOMAIN}, {ModeEnforce, BlockSinkhole}, {ModeRoute, ""}, {ModeMonitor, ""}} {
		mode := c.mode
		t.Run(mode+c.block, func(t *testing.T) {
			reg := newUsageRegistry(t)
			reg.publish(7, []string{"*.zoom.example", "meet.example.org"})
			var logs realproc.Buffer
			r := reporting(t, reg, mode, &logs, func(o *Options) { o.Block = c.block })
			var clients []string
			for i := 2; i <= 7; i++ {
				clients = append(clients, fmt.Sprintf("127.0.0.%d", i))
			}
			for i, c := range clients {
				// Several names under one registrable domain, and the
				// same one again: counted as one domain, six clients.
				askFrom(t, r, c, fmt.Sprintf("host%d.six-clients.co.uk", i))
				askFrom(t, r, c, "www.six-clients.co.uk")
				if i < 3 {
					askFrom(t, r, c, "app.three-clients.com")
				}
			}
			// Hits: the first query of a name misses the answer cache and
			// goes the ordinary way; the others are answered by the fast
			// path. Each is counted once.
			for i := 0; i < 13; i++ {
				askFrom(t, r, clients[i%6], "a.zoom.example")
			}
			for i := 0; i < 4; i++ {
				askFrom(t, r, clients[0], "MEET.example.org") // not fast-path spelling
			}
			// Over TCP, ServeDNS: counted as well.
			if resp := query(t, r, "tcp", "b.zoom.example", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
				t.Fatalf("tcp: %s", resp)
			}
			// Nothing to count: a public suffix, a reverse name, localhost.
			for _, n := range []string{"co.uk", "4.3.2.1.in-addr.arpa", "localhost"} {
				for _, c := range clients {
					askFrom(t, r, c, n)
				}
			}

			per := r.usage.cur.Load()
			tab := per.hits.Load()
			counts := map[string]uint64{}
			tab.m.Each(func(i int, name string, wild bool) {
				counts[allowlist.Pattern{Name: name, Wildcard: wild}.String()] = tab.counts[i].Load()
			})
			if counts["*.zoom.example"] != 14 || counts["meet.example.org"] != 4 {
				t.Errorf("hits before rounding: %v, want *.zoom.example 14 (13 UDP, 1 TCP), meet.example.org 4", counts)
			}

			r.usage.end(time.Now())
			wait := r.usage.flush(context.Background())
			got, raw, auths := reg.snapshot()
			if wait != 0 || len(got) != 1 {
				t.Fatalf("report not sent: wait %v, %d received", wait, len(got))
			}
			rep, body := got[0], raw[0]
			if err := rep.Validate(time.Now(), 5); err != nil {
				t.Errorf("the report does not validate: %v\n%s", err, body)
			}
			if auths[0] != "Bearer reader-token" {
				t.Errorf("Authorization %q", auths[0])
			}
			if rep.Department != "hmrc" || rep.Scope != "common" || rep.Mode != mode || rep.ListVersion != 7 || rep.K != 5 {
				t.Errorf("report header: %+v", rep)
			}
			wantEntries := []allowlist.UsageEntry{{Pattern: "*.zoom.example", Hits: 20}, {Pattern: "meet.example.org", Hits: 10}}
			if fmt.Sprint(rep.Entries) != fmt.Sprint(wantEntries) {
				t.Errorf("entries %v, want %v", rep.Entries, wantEntries)
			}
			// 12 queries from 6 clients: 20 queries (rounded up), 5 clients
			// (rounded down); three-clients.com, asked by 3, is not there.
			wantRefused := []allowlist.UsageRefused{{Domain: "six-clients.co.uk", Queries: 20, Clients: 5}}
			if fmt.Sprint(rep.Refused) != fmt.Sprint(wantRefused) {
				t.Errorf("refused %v, want %v\n%s", rep.Refused, wantRefused, body)
			}
			if bytes.Contains(body, []byte("host1")) || bytes.Contains(body, []byte("three-clients")) {
				t.Errorf("the report names more than registrable domains above k: %s", body)
			}

			// No client address anywhere the resolver writes.
			eventually(t, "the install logged", func() bool { return strings.Contains(logs.String(), "list installed") })
			waitCached(t, r.opt.CacheDir, 7)
			files := map[string][]byte{"report body": body, "log": []byte(logs.String()), "metrics": []byte(scrape(t, r))}
			filepath.Walk(r.opt.CacheDir, func(path string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					b, _ := os.ReadFile(path)
					files[path] = b
				}
				return nil
			})
			if !bytes.Contains(files["log"], []byte("list installed")) || len(files) < 4 {
				t.Fatalf("expected a log and a cache file to search: have %d places, log:\n%s", len(files), files["log"])
			}
			for what, b := range files {
				for _, c := range clients {
					ip := netip.MustParseAddr(c)
					raw4, raw16 := ip.As4(), ip.As16()
					if bytes.Contains(b, []byte(c)) || bytes.Contains(b, raw4[:]) || bytes.Contains(b, raw16[:]) {
						t.Errorf("%s holds the client address %s", what, c)
					}
				}
			}
			if m := scrape(t, r); !strings.Contains(m, "allowlist_resolver_usage_reports_sent_total 1") {
				t.Errorf("sent_total not 1:\n%s", grepLines(m, "usage"))
			}
		})
	}
}

// TestUsageReportRetriedAndDropped: a report the registry fails to take is
// sent again with the same report_id; with the registry away, a fifth
// report drops the oldest; a 4xx other than 408 and 429 is not retried.
func TestUsageReportRetriedAndDropped(t *testing.T) {
	reg := newUsageRegistry(t)
	reg.publish(7, []string{"*.zoom.example"})
	r := reporting(t, reg, ModeEnforce, nil)
	u := r.usage
	ctx := context.Background()

	reg.setFail(http.StatusServiceUnavailable)
	u.end(time.Now())
	if wait := u.flush(ctx); wait < time.Second || wait > 2*time.Second {
		t.Errorf("first retry in %v, want 1 s plus jitter", wait)
	}
	if wait := u.flush(ctx); wait < 2*time.Second || wait > 3*time.Second {
		t.Errorf("second retry in %v, want 2 s plus jitter", wait)
	}
	reg.setFail(0)
	if wait := u.flush(ctx); wait != 0 {
		t.Fatalf("not sent once the registry is back: wait %v", wait)
	}
	ids := reg.ids()
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("a retried report must keep its report_id: %v", ids)
	}

	reg.setFail(http.StatusBadGateway)
	var queued []string
	for i := 0; i < 5; i++ {
		u.end(time.Now())
		queued = append(queued, u.queue[len(u.queue)-1].id)
		u.flush(ctx)
	}
	if len(u.queue) != maxWaiting || u.queue[0].id != queued[1] {
		t.Errorf("queue holds %d, the oldest %s; want 4 from %s", len(u.queue), u.queue[0].id, queued[1])
	}
	reg.setFail(0)
	before := len(reg.ids())
	u.flush(ctx)
	sent := reg.ids()[before:]
	if fmt.Sprint(sent) != fmt.Sprint(queued[1:]) {
		t.Errorf("sent %v, want the four newest in order %v", sent, queued[1:])
	}

	for _, status := range []int{http.StatusUnprocessableEntity, http.StatusForbidden} {
		reg.setFail(status)
		u.end(time.Now())
		if wait := u.flush(ctx); wait != 0 || len(u.queue) != 0 {
			t.Errorf("%d: retried (wait %v, %d waiting)", status, wait, len(u.queue))
		}
	}
	reg.setFail(http.StatusTooManyRequests)
	u.end(time.Now())
	if wait := u.flush(ctx); wait == 0 || len(u.queue) != 1 {
		t.Errorf("429 must be retried")
	}
	m := scrape(t, r)
	for _, want := range []string{"allowlist_resolver_usage_reports_sent_total 5", "allowlist_resolver_usage_reports_dropped_total 3"} {
		if !strings.Contains(m, want) {
			t.Errorf("want %s:\n%s", want, grepLines(m, "usage_reports"))
		}
	}
}

// TestUsageReportLoop: the resolver's own loop ends periods and retries
// through a failing registry until it takes the report.
func TestUsageReportLoop(t *testing.T) {
	reg := newUsageRegistry(t)
	reg.publish(7, []string{"*.zoom.example"})
	reg.setFail(http.StatusInternalServerError)
	up := newUpstream(t, "192.0.2.1")
	r, err := New(Options{Listen: "127.0.0.1:0", Registry: reg.srv.URL, PublicKey: reg.pub, Scope: "common", CacheDir: t.TempDir(),
		Mode: ModeMonitor, Upstreams: []string{up.addr}, Token: "tok", Logger: quiet(), Report: ReportOptions{Every: time.Minute, K: 2, Department: "hmrc"}})
	if err != nil {
		t.Fatal(err)
	}
	r.usage.every, r.usage.backoff = 100*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); r.Shutdown(); r.Wait() })
	waitVersion(t, r, 7, 2*time.Second)
	for deadline := time.Now().Add(5 * time.Second); len(reg.ids()) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the loop sent %d reports", len(reg.ids()))
		}
	}
	reg.setFail(0)
	first := reg.ids()[0]
	eventually(t, "the first report accepted", func() bool {
		for _, id := range reg.ids()[1:] {
			if id == first {
				return true
			}
		}
		return false
	})
	got, _, _ := reg.snapshot()
	rep := got[0]
	if rep.Department != "hmrc" || rep.Scope != "common" || rep.Mode != ModeMonitor || rep.K != 2 {
		t.Errorf("report %+v", rep)
	}
}

// TestReportNow: ReportNow (SIGUSR1 to allowlist resolve) ends the period
// and sends its report at once, an hour before it is due.
func TestReportNow(t *testing.T) {
	reg := newUsageRegistry(t)
	reg.publish(7, []string{"*.zoom.example"})
	r := reporting(t, reg, ModeEnforce, nil)
	askFrom(t, r, "127.0.0.1", "a.zoom.example")
	r.ReportNow()
	eventually(t, "a report sent on ReportNow", func() bool { return len(reg.ids()) == 1 })
	if got, _, _ := reg.snapshot(); len(got[0].Entries) != 1 || got[0].Entries[0].Pattern != "*.zoom.example" {
		t.Errorf("report %+v", got[0])
	}
}

// TestUsageHitsAcrossListChange: hits counted under a list replaced during
// the period are kept, by pattern.
func TestUsageHitsAcrossListChange(t *testing.T) {
	reg := newUsageRegistry(t)
	reg.publish(7, []string{"*.zoom.example"})
	r := reporting(t, reg, ModeEnforce, nil)
	for i := 0; i < 13; i++ {
		askFrom(t, r, "127.0.0.1", "a.zoom.example")
	}
	reg.publish(8, []string{"*.zoom.example", "new.example.org"})
	waitVersion(t, r, 8, 2*time.Second)
	for i := 0; i < 4; i++ {
		askFrom(t, r, "127.0.0.1", "a.zoom.example")
		askFrom(t, r, "127.0.0.1", "new.example.org")
	}
	rep := r.usage.cut(time.Now())
	want := []allowlist.UsageEntry{{Pattern: "*.zoom.example", Hits: 20}, {Pattern: "new.example.org", Hits: 10}}
	if fmt.Sprint(rep.Entries) != fmt.Sprint(want) || rep.ListVersion != 8 {
		t.Errorf("entries %v version %d, want %v at 8", rep.Entries, rep.ListVersion, want)
	}
	// The next period starts from zero.
	if rep := r.usage.cut(time.Now()); len(rep.Entries) != 0 || len(rep.Refused) != 0 {
		t.Errorf("a new period starts empty: %+v", rep)
	}
}

// TestUsageFastPathAllocs: with reporting on, the fast path answers a
// cached allowed name and a blocked name without allocating, and counts
// both.
func TestUsageFastPathAllocs(t *testing.T) {
	reg := newUsageRegistry(t)
	reg.publish(7, []string{"*.zoom.example"})
	r := reporting(t, reg, ModeEnforce, nil)
	askFrom(t, r, "127.0.0.1", "a.zoom.example") // fills the cache
	client := netip.MustParseAddr("127.0.0.9")
	out := make([]byte, 0, 4096)
	for _, name := range []string{"a.zoom.example.", "www.blocked.example.com."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA) // as askFrom asks, so the cache has it
		raw, _ := m.Pack()
		q, ok := parseQuery(raw, nil)
		if !ok {
			t.Fatal("not a fast-path query")
		}
		q.client = client
		eventually(t, "a fast answer for "+name, func() bool { resp, _, _ := r.fast(raw, &q, out[:0]); return resp != nil })
		allocs := testing.AllocsPerRun(1000, func() {
			if resp, _, _ := r.fast(raw, &q, out[:0]); resp == nil {
				t.Fatal("no fast answer")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per query with reporting on", name, allocs)
		}
	}
	per := r.usage.cur.Load()
	if i := per.domain("example.com"); i < 0 {
		t.Error("blocked queries not counted")
	} else if d := per.domains[i].Load(); d.queries.Load() < 1000 || d.clients[0].Load() == 0 || d.clients[1].Load() != 0 {
		t.Errorf("blocked queries not counted as one client's: %d queries", d.queries.Load())
	}
	tab := per.hits.Load()
	if n := tab.counts[tab.m.Match("a.zoom.example")].Load(); n < 1000 {
		t.Errorf("cached hits counted %d times", n)
	}
}

// TestRegistrableCut: what a refused name is counted as.
func TestRegistrableCut(t *testing.T) {
	for name, want := range map[string]string{
		"www.example.com":       "example.com",
		"example.com":           "example.com",
		"a.b.service.gov.uk":    "b.service.gov.uk",
		"www.hmrc.gov.uk":       "hmrc.gov.uk",
		"x.y.blogspot.com":      "y.blogspot.com",
		"com":                   "",
		"co.uk":                 "",
		"4.3.2.1.in-addr.arpa":  "",
		"arpa":                  "",
		"_dmarc.example.org":    "example.org",
		"_x.com":                "",
		"a.\x00.example.org":    "",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"1.2.3.4":               "",
	} {
		got := ""
		if cut := registrableCut(name); cut >= 0 {
			got = name[cut:]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

// TestReportOptions: what report: refuses.
func TestReportOptions(t *testing.T) {
	reg := newRegistry(t)
	base := Options{Registry: reg.srv.URL, PublicKey: reg.pub, Scope: "common", CacheDir: t.TempDir(), Mode: ModeEnforce,
		Upstreams: []string{"127.0.0.1:53"}, Token: "tok", Logger: quiet()}
	for _, c := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Report = ReportOptions{Every: 30 * time.Second, K: 5, Department: "hmrc"} }, "report.every"},
		{func(o *Options) { o.Report = ReportOptions{Every: 25 * time.Hour, K: 5, Department: "hmrc"} }, "report.every"},
		{func(o *Options) { o.Report = ReportOptions{Every: time.Minute, K: 1, Department: "hmrc"} }, "report.k"},
		{func(o *Options) { o.Report = ReportOptions{Every: time.Minute, K: 5} }, "report.department"},
		{func(o *Options) { o.Report = ReportOptions{Every: time.Minute, K: 5, Department: "hmrc"}; o.Token = "" }, "token"},
		{func(o *Options) {
			o.Report = ReportOptions{Every: time.Minute, K: 5, Department: "dwp"}
			o.Scope = "hmrc"
		}, "report.department"},
	} {
		o := base
		c.change(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", o.Report, err, c.want)
		}
	}
	o := base
	o.Scope, o.Report = "hmrc", ReportOptions{Every: time.Minute, K: 5}
	if r, err := New(o); err != nil || r.usage.department != "hmrc" {
		t.Errorf("a department's scope names the department: %v", err)
	}
}

// BenchmarkUsageFastPath is the fast path's own work per packet (parse,
// decide, answer into a buffer; no system calls) for cached allowed names
// and blocked names, with usage reports off and on, in turns (-count
// repeats the pair). 1,000 list entries; 1,000 cached names; 20,000
// blocked names under 200 registrable domains; 250 client addresses.
func BenchmarkUsageFastPath(b *testing.B) {
	var pats []allowlist.Pattern
	for _, e := range benchEntries(1000) {
		p, err := allowlist.ParsePattern(e.Pattern)
		if err != nil {
			b.Fatal(err)
		}
		pats = append(pats, p)
	}
	packets := func(names []string) [][]byte {
		var out [][]byte
		for _, n := range names {
			m := new(dns.Msg)
			m.SetQuestion(n, dns.TypeA)
			raw, _ := m.Pack()
			out = append(out, raw)
		}
		return out
	}
	var cached, blocked []string
	for i := 0; i < 1000; i++ {
		p := pats[i]
		name := p.Name
		if p.Wildcard {
			name = "x." + name
		}
		cached = append(cached, name+".")
	}
	for i := 0; i < 20000; i++ {
		blocked = append(blocked, fmt.Sprintf("blocked%d.site%d.com.", i, i%200))
	}
	var clients []netip.Addr
	for i := 0; i < 250; i++ {
		clients = append(clients, netip.AddrFrom4([4]byte{10, 1, byte(i / 100), byte(i)}))
	}
	resolvers := map[bool]*Resolver{}
	for _, on := range []bool{false, true} {
		o := Options{Registry: "http://127.0.0.1:1", PublicKey: make([]byte, 32), Scope: "common", CacheDir: b.TempDir(),
			Mode: ModeEnforce, Upstreams: []string{"127.0.0.1:9"}, Token: "t", Logger: quiet()}
		if on {
			o.Report = ReportOptions{Every: time.Hour, K: 5, Department: "hmrc"}
		}
		r, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		r.install(&policy{scope: "common", version: 1, entries: len(pats), matcher: allowlist.Compile(pats), generated: time.Now()}, "bench")
		for _, raw := range packets(cached) {
			q, _ := parseQuery(raw, nil)
			m := new(dns.Msg)
			m.Unpack(raw)
			resp := new(dns.Msg)
			resp.SetReply(m)
			resp.RecursionAvailable = true
			resp.Answer = []dns.RR{mustRR(m.Question[0].Name + " 3600 IN A 192.0.2.1")}
			wire, _ := resp.Pack()
			r.cache.store(q.key(false), wire, time.Now())
		}
		resolvers[on] = r
	}
	ask := func(r *Resolver, pkts [][]byte, i int, name, out []byte) {
		raw := pkts[i%len(pkts)]
		q, _ := parseQuery(raw, name)
		q.client = clients[i%len(clients)]
		if resp, _, _ := r.fast(raw, &q, out[:0]); resp == nil {
			b.Fatal("no fast answer")
		}
	}
	for _, set := range []struct {
		name string
		pkts [][]byte
	}{{"cached", packets(cached)}, {"blocked", packets(blocked)}} {
		for _, on := range []bool{false, true} {
			r := resolvers[on]
			name, out := make([]byte, 0, 256), make([]byte, 0, 4096)
			for i := range set.pkts { // every name seen once, as in a running resolver
				ask(r, set.pkts, i, name, out)
			}
			b.Run(fmt.Sprintf("%s/report=%v", set.name, on), func(b *testing.B) {
				// CPU time of this thread as well as wall time: on a shared
				// machine the first is what the code costs, the second
				// also how much of a core it was given.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var r0, r1 unix.Rusage
				unix.Getrusage(unix.RUSAGE_THREAD, &r0)
				i := 0
				for b.Loop() {
					ask(r, set.pkts, i, name, out)
					i++
				}
				unix.Getrusage(unix.RUSAGE_THREAD, &r1)
				cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// TestUsageReportLimits: a period with more entries hit and more refused
// domains above k than a report may carry gives the most hit and the most
// asked, within the limits, and still validates; a domain asked by more
// than 64 clients is sent as 60.
func TestUsageReportLimits(t *testing.T) {
	var pats []allowlist.Pattern
	for i := 0; i < allowlist.UsageMaxEntries+10; i++ {
		pats = append(pats, allowlist.Pattern{Name: fmt.Sprintf("tool%d.example.org", i)})
	}
	r, err := New(Options{Registry: "http://127.0.0.1:1", PublicKey: make([]byte, 32), Scope: "common", CacheDir: t.TempDir(),
		Mode: ModeMonitor, Upstreams: []string{"127.0.0.1:9"}, Token: "t", Logger: quiet(),
		Report: ReportOptions{Every: time.Hour, K: 5, Department: "hmrc"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &policy{scope: "common", version: 3, entries: len(pats), matcher: allowlist.Compile(pats), generated: time.Now()}
	r.install(p, "test")
	client := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range pats {
		n := 1
		if i < 10 {
			n = 100 + i // the ten most hit
		}
		for range n {
			r.decide(p, pats[i].Name, client(i))
		}
	}
	for d := 0; d < allowlist.UsageMaxRefused+100; d++ {
		clients := 5 + d%3
		if d == 7 {
			clients = 200
		}
		for c := 0; c < clients; c++ {
			r.decide(p, fmt.Sprintf("www%d.refused%d.net", c, d), client(c))
			if d < 10 {
				r.decide(p, fmt.Sprintf("more.refused%d.net", d), client(c)) // the most asked
			}
		}
	}
	rep := r.usage.cut(time.Now())
	if err := rep.Validate(time.Now(), 5); err != nil {
		t.Fatal(err)
	}
	if len(rep.Entries) != allowlist.UsageMaxEntries || rep.Entries[0] != (allowlist.UsageEntry{Pattern: "tool9.example.org", Hits: 110}) ||
		rep.Entries[9].Hits != 100 || rep.Entries[10].Hits != 10 {
		t.Errorf("%d entries, first %v, tenth %v", len(rep.Entries), rep.Entries[0], rep.Entries[9])
	}
	if len(rep.Refused) != allowlist.UsageMaxRefused || rep.Refused[0] != (allowlist.UsageRefused{Domain: "refused7.net", Queries: 400, Clients: 60}) {
		t.Errorf("%d refused, first %v", len(rep.Refused), rep.Refused[0])
	}
	for _, d := range rep.Refused[:10] {
		if n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(d.Domain, "refused"), ".net")); n >= 10 {
			t.Errorf("the most asked first: %v", rep.Refused[:10])
			break
		}
	}
}
