package resolver

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Tests for faults found by asking our resolver and Unbound the same
// questions behind real upstreams. Each failed before its fix.

// TestQueryChecks: what Unbound refuses or answers locally, we do too,
// on the ordinary path (the fast path hands all of these to it).
func TestQueryChecks(t *testing.T) {
	r := offline(t)
	q := func(name string, qtype uint16, mod func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		mod(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opt := func(owner string) dns.RR {
		return &dns.OPT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeOPT, Class: 1232}}
	}
	for _, c := range []struct {
		name  string
		raw   []byte
		rcode int
		check func(*dns.Msg) string
	}{
		{"two OPTs", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.Extra = []dns.RR{opt("."), opt(".")} }), dns.RcodeFormatError, nil},
		{"OPT not owned by the root", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.Extra = []dns.RR{opt("x.")} }), dns.RcodeFormatError, nil},
		{"OPT in the answer section", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.Answer = []dns.RR{opt(".")} }), dns.RcodeFormatError, nil},
		{"OPT in the authority section", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.Ns = []dns.RR{opt(".")} }), dns.RcodeFormatError, nil},
		{"qtype OPT", q("a.zoom.example.", dns.TypeOPT, func(*dns.Msg) {}), dns.RcodeFormatError, nil},
		{"TC in a query", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.Truncated = true }), dns.RcodeFormatError, nil},
		{"RD=0", q("a.zoom.example.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired = false }), dns.RcodeRefused, nil},
		{"localhost A", q("localhost.", dns.TypeA, func(*dns.Msg) {}), dns.RcodeSuccess, func(m *dns.Msg) string {
			if firstA(m) != "127.0.0.1" || !m.Authoritative {
				return "want an authoritative 127.0.0.1"
			}
			return ""
		}},
		{"localhost AAAA", q("LocalHost.", dns.TypeAAAA, func(*dns.Msg) {}), dns.RcodeSuccess, func(m *dns.Msg) string {
			if len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != "::1" {
				return "want ::1"
			}
			return ""
		}},
		{"loopback PTR", q("1.0.0.127.in-addr.arpa.", dns.TypePTR, func(*dns.Msg) {}), dns.RcodeSuccess, func(m *dns.Msg) string {
			if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "localhost." {
				return "want PTR localhost."
			}
			return ""
		}},
		{"other loopback reverse name", q("2.0.0.127.in-addr.arpa.", dns.TypePTR, func(*dns.Msg) {}), dns.RcodeNameError, nil},
		{"BADVERS for a blocked name", q("blocked.example.com.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers,
			func(m *dns.Msg) string {
				if e := ede(m); e != nil {
					return fmt.Sprintf("BADVERS carries EDE %d", e.InfoCode)
				}
				return ""
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := handle(r, c.raw, "udp")
			if len(got) != 1 || got[0].Rcode != c.rcode {
				t.Fatalf("got %v, want rcode %s", got, dns.RcodeToString[c.rcode])
			}
			if c.check != nil {
				if msg := c.check(got[0]); msg != "" {
					t.Errorf("%s: %s", msg, got[0])
				}
			}
		})
	}
}

// TestLabelWithADot: the wire name [x.github][com] has two labels; it is
// not x.github.com, and *.github.com does not allow it. A name with such
// a label under a listed wildcard is still covered by it.
func TestLabelWithADot(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.github.com", "*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	ask := func(labels ...string) *dns.Msg {
		pkt := rawQuery(dns.TypeA, labels...)()
		resp := exchangeRaw(t, "udp", r.Addr("udp"), pkt, 2*time.Second)
		m := new(dns.Msg)
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("%q: %v", labels, err)
		}
		return m
	}
	if m := ask("x.github", "com"); m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
		t.Errorf("[x.github][com] was allowed by *.github.com:\n%s", m)
	}
	if m := ask("x", "github", "com"); firstA(m) != "192.0.2.1" {
		t.Errorf("x.github.com was not allowed:\n%s", m)
	}
	if m := ask("a.b", "zoom", "example"); firstA(m) != "192.0.2.1" {
		t.Errorf("[a.b][zoom][example] is under *.zoom.example, but:\n%s", m)
	}
}

// TestSilentUpstreamCostsOneTimeout: with one upstream that never
// answers, a query gets SERVFAIL after one upstream_timeout: the ordinary
// path does not ask the upstream the fast path already waited on.
func TestSilentUpstreamCostsOneTimeout(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	silent := newRawUpstream(t, func(*dns.Msg) []*dns.Msg { return nil })
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{silent.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	m := query(t, r, "udp", "quiet.zoom.example", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || ede(m) == nil || ede(m).InfoCode != edeNetworkError {
		t.Errorf("want SERVFAIL with EDE 23, got %s", m)
	}
	time.Sleep(100 * time.Millisecond)
	silent.mu.Lock()
	defer silent.mu.Unlock()
	asked := 0
	for _, n := range silent.ports {
		asked += n
	}
	if asked != 1 {
		t.Errorf("the silent upstream was asked %d times for one query, want once", asked)
	}
}

// TestUpstreamServfailIsNotANetworkError: an upstream that answers
// SERVFAIL did answer: the client gets SERVFAIL without EDE 23.
func TestUpstreamServfailIsNotANetworkError(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, func(req *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		return []*dns.Msg{m}
	})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for _, netw := range []string{"udp", "tcp"} {
		m := query(t, r, netw, "broken-"+netw+".zoom.example", dns.TypeA)
		if m.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: want SERVFAIL, got %s", netw, m)
		}
		if e := ede(m); e != nil && (e.InfoCode == edeNetworkError || e.InfoCode == edeNoReachable) {
			t.Errorf("%s: upstream answered, yet EDE %d says it could not be reached", netw, e.InfoCode)
		}
	}
}

// TestForwardSocketsAgeOut: a fast-path socket is replaced after
// fwdSocketAge even when it has carried few queries.
func TestForwardSocketsAgeOut(t *testing.T) {
	old := fwdSocketAge
	fwdSocketAge = 100 * time.Millisecond
	defer func() { fwdSocketAge = old }()
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, answersA("192.0.2.1"))
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for round := 0; round < 3; round++ {
		for i := 0; i < fwdSockets; i++ {
			if got := firstA(query(t, r, "udp", fmt.Sprintf("r%d-%d.zoom.example", round, i), dns.TypeA)); got != "192.0.2.1" {
				t.Fatalf("answered %q", got)
			}
		}
		time.Sleep(2 * fwdSocketAge)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.ports) < 3*fwdSockets {
		t.Errorf("%d queries in 3 rounds came from %d source ports, want %d", 3*fwdSockets, len(up.ports), 3*fwdSockets)
	}
	// A replaced socket with nothing pending is closed then, not after
	// the upstream timeout (2 s, longer than the rounds took).
	if n := r.fwd.open.Load(); n > fwdSockets {
		t.Errorf("%d upstream sockets open, want at most %d", n, fwdSockets)
	}
}

// TestScrubsRecordsForOtherNames: records the question did not ask for
// (an address for a blocked name, stray NS records and glue) never reach
// the client, on either path.
func TestScrubsRecordsForOtherNames(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, func(req *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		name := req.Question[0].Name
		m.Answer = []dns.RR{mustRR(name + " 300 IN CNAME edge.cdn.example."), mustRR("blocked.example.com. 300 IN A 203.0.113.66"),
			mustRR("edge.cdn.example. 300 IN A 192.0.2.1")}
		m.Ns = []dns.RR{mustRR("example.com. 300 IN NS ns.evil.example.")}
		m.Extra = []dns.RR{mustRR("ns.evil.example. 300 IN A 203.0.113.53")}
		return []*dns.Msg{m}
	})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for i, netw := range []string{"udp", "udp", "tcp"} { // the second UDP query is a cache hit
		m := query(t, r, netw, fmt.Sprintf("meet%d.zoom.example", i/2), dns.TypeA)
		var got []string
		for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
			if rr.Header().Rrtype != dns.TypeOPT {
				got = append(got, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
			}
		}
		if want := fmt.Sprintf("meet%d.zoom.example. CNAME,edge.cdn.example. A", i/2); strings.Join(got, ",") != want {
			t.Errorf("%s: records %q, want %q", netw, got, want)
		}
	}
}

// TestCDBitIsTheQuerys: CD in an answer is the query's, whether the
// answer came from upstream, from the cache (filled by a query with
// another CD), or is a blocked answer.
func TestCDBitIsTheQuerys(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	for _, name := range []string{"cd.zoom.example.", "blocked.example.com."} {
		for _, cd := range []bool{false, true, false, true} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.CheckingDisabled = cd
			resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, r.Addr("udp"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.CheckingDisabled != cd {
				t.Errorf("%s: asked with CD=%v, answered with CD=%v", name, cd, resp.CheckingDisabled)
			}
		}
	}
}

// TestPipelinedTCPAnsweredWhenReady: of two queries sent on one TCP
// connection, the one answered locally is not held behind the one
// waiting on a slow upstream (RFC 7766 §6.2.1.1).
func TestPipelinedTCPAnsweredWhenReady(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newRawUpstream(t, func(req *dns.Msg) []*dns.Msg {
		time.Sleep(300 * time.Millisecond)
		return answersA("192.0.2.1")(req)
	})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	c, err := net.Dial("tcp", r.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	for i, name := range []string{"slow.zoom.example.", "blocked.example.com."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id = uint16(100 + i)
		b, _ := m.Pack()
		out = append(binary.BigEndian.AppendUint16(out, uint16(len(b))), b...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	var ids []uint16
	for len(ids) < 2 {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, binary.BigEndian.Uint16(b))
	}
	if ids[0] != 101 || ids[1] != 100 {
		t.Errorf("answers came in the order %v, want the blocked name's (101) first", ids)
	}
}

// TestCacheBoundedInBytes: however many answers are stored, the cache
// counts no more than its byte bound, and what it counts is what it holds.
func TestCacheBoundedInBytes(t *testing.T) {
	const limit = 256 << 10
	c := newCache(1_000_000, limit)
	m := new(dns.Msg)
	m.SetQuestion("x.zoom.example.", dns.TypeTXT)
	m.Response = true
	for i := 0; i < 4; i++ {
		m.Answer = append(m.Answer, mustRR(`x.zoom.example. 300 IN TXT "`+strings.Repeat("t", 200)+`"`))
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 5000; i++ {
		c.store(packedKey{name: fmt.Sprintf("n%d.zoom.example", i), qtype: dns.TypeTXT}, append([]byte(nil), wire...), now)
		if c.bytes > limit {
			t.Fatalf("after %d answers the cache holds %d bytes, over %d", i+1, c.bytes, limit)
		}
	}
	var sum int64
	for k, e := range c.entries {
		sum += k.cost(e)
	}
	if sum != c.bytes || len(c.entries) < 100 {
		t.Errorf("counted %d bytes, holds %d in %d entries", c.bytes, sum, len(c.entries))
	}
}

// answersA makes a raw upstream's answer: an A record for the question.
func answersA(ip string) func(req *dns.Msg) []*dns.Msg {
	return func(req *dns.Msg) []*dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{mustRR(req.Question[0].Name + " 300 IN A " + ip)}
		return []*dns.Msg{m}
	}
}
