package resolver

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestFastPathMatchesOrdinaryPath sends the same questions through the
// fast path and the ordinary handler and compares the answers.
func TestFastPathMatchesOrdinaryPath(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(7, []string{"*.zoom.example", "meet.example.org"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 7, 2*time.Second)
	for _, name := range []string{"a.zoom.example.", "MEET.Example.org.", "blocked.example.com.", "nx.zoom.example.", "x.meet.example.org."} {
		for _, edns := range []int{0, 1, 2} { // none, EDNS, EDNS with DO
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			if edns > 0 {
				m.SetEdns0(1232, edns == 2)
			}
			// Twice: the first fills the packed cache for allowed names.
			query2 := func() *dns.Msg {
				resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m.Copy(), r.Addr("udp"))
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			first, second := query2(), query2()
			raw, _ := m.Pack()
			q, ok := parseQuery(raw, nil)
			if !ok {
				t.Fatalf("%s: not a fast-path query", name)
			}
			fast, _, _ := r.fast(raw, &q, nil)
			for deadline := time.Now().Add(2 * time.Second); fast == nil && time.Now().Before(deadline); fast, _, _ = r.fast(raw, &q, nil) {
				time.Sleep(5 * time.Millisecond) // the ordinary path stores just after sending
			}
			if fast == nil {
				t.Fatalf("%s edns=%d: the fast path did not answer the second time", name, edns)
			}
			var got dns.Msg
			if err := got.Unpack(fast); err != nil {
				t.Fatalf("%s: fast answer does not parse: %v", name, err)
			}
			for _, other := range []*dns.Msg{first, second} {
				if got.Rcode != other.Rcode || len(got.Answer) != len(other.Answer) || len(got.Ns) != len(other.Ns) ||
					(got.IsEdns0() == nil) != (other.IsEdns0() == nil) || got.Question[0].Name != name {
					t.Errorf("%s edns=%d: fast\n%s\nordinary\n%s", name, edns, &got, other)
				}
				if (ede(&got) == nil) != (ede(other) == nil) {
					t.Errorf("%s: EDE differs", name)
				}
			}
			if got.Id != m.Id {
				t.Errorf("%s: ID %d, want %d", name, got.Id, m.Id)
			}
		}
	}
}

func TestFastPathLowersTTLs(t *testing.T) {
	reg := newRegistry(t)
	reg.publish(1, []string{"*.zoom.example"})
	up := newUpstream(t, "192.0.2.1")
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
	waitVersion(t, r, 1, 2*time.Second)
	query(t, r, "udp", "ttl.zoom.example", dns.TypeA)
	k := packedKey{name: "ttl.zoom.example", qtype: dns.TypeA, flags: packedEDNS}
	// The ordinary path stores the answer just after sending it.
	e := r.cache.get(k)
	for deadline := time.Now().Add(2 * time.Second); e == nil && time.Now().Before(deadline); e = r.cache.get(k) {
		time.Sleep(5 * time.Millisecond)
	}
	if e == nil {
		t.Fatal("not in the packed cache")
	}
	older := *e // entries are never changed in place: replace it
	older.stored = e.stored.Add(-100 * time.Second)
	r.cache.put(k, &older)
	m := query(t, r, "udp", "ttl.zoom.example", dns.TypeA)
	if ttl := m.Answer[0].Header().Ttl; ttl != 200 {
		t.Errorf("TTL %d, want 300-100", ttl)
	}
	if up.queries.Load() != 1 {
		t.Errorf("upstream asked %d times", up.queries.Load())
	}
}

// FuzzParseQuery: the fast parser never panics, and whatever it accepts
// miekg/dns reads as the same question.
func FuzzParseQuery(f *testing.F) {
	for _, name := range []string{"a.zoom.example.", "X-Y_z.example.org."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(4096, true)
		b, _ = m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, ok := parseQuery(b, nil)
		if !ok {
			return
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil {
			t.Fatalf("fast path accepted what miekg cannot read: %v", err)
		}
		if len(m.Question) != 1 || strings.ToLower(strings.TrimSuffix(m.Question[0].Name, ".")) != string(q.name) || m.Question[0].Qtype != q.qtype {
			t.Fatalf("fast path read %q/%d, miekg %v", q.name, q.qtype, m.Question)
		}
		if q.size > upstreamSize || q.size < defaultClientUDP {
			t.Fatalf("client size %d", q.size)
		}
	})
}

// FuzzUpstreamAnswer feeds arbitrary upstream answers to the forwarder's
// byte-level handling: it never panics, and whatever it passes on to a
// client is a message miekg/dns reads, with the client's ID and question,
// the upstream's rcode and records, and an OPT exactly when the client
// sent one.
func FuzzUpstreamAnswer(f *testing.F) {
	client := new(dns.Msg)
	client.SetQuestion("A.Zoom.example.", dns.TypeA)
	client.Id = 0xbeef
	client.SetEdns0(1232, true)
	pkt, _ := client.Pack()
	for _, build := range []func(m *dns.Msg){
		func(m *dns.Msg) { m.Answer = []dns.RR{mustRR("a.zoom.example. 300 IN A 192.0.2.1")} },
		func(m *dns.Msg) {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{mustRR("zoom.example. 300 IN SOA ns.zoom.example. h.zoom.example. 1 3600 600 86400 30")}
			m.SetEdns0(4096, false)
		},
		func(m *dns.Msg) {
			m.Answer = []dns.RR{mustRR("a.zoom.example. 300 IN CNAME b.cdn.example."), mustRR("b.cdn.example. 60 IN A 192.0.2.2")}
			m.Compress = true
		},
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.zoom.example.", dns.TypeA)
		m.Response = true
		build(m)
		b, _ := m.Pack()
		f.Add(b)
	}
	q, ok := parseQuery(pkt, nil)
	if !ok {
		f.Fatal("seed query not parsed")
	}
	ex := &exchange{qname: []byte("\x01a\x04zoom\x07example\x00"), qtype: dns.TypeA}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 12 || !ex.echoes(b) {
			return
		}
		qend := 12 + len(ex.qname) + 4
		plan, ok := planAnswer(b, qend, nil)
		if !ok || !plan.prefix {
			return
		}
		wireTTL(b, qend)
		out := clientAnswer(nil, pkt, &q, b, &plan, qend)
		var up, m dns.Msg
		if err := up.Unpack(b); err != nil {
			return // the records are well framed, but their contents may not be: miekg refuses, so would a client
		}
		if err := m.Unpack(out); err != nil {
			t.Fatalf("client answer does not parse: %v\nupstream %x\nclient %x", err, b, out)
		}
		// The ordinary path keeps the same records of the same answer.
		want := scrub(&up)
		if m.Id != client.Id || m.Question[0].Name != "A.Zoom.example." || m.Rcode&0xF != up.Rcode&0xF ||
			// (names in rdata compressed against the question read the
			// client's spelling of it: compared without case)
			!strings.EqualFold(records(m.Answer), records(want.Answer)) || !strings.EqualFold(records(m.Ns), records(want.Ns)) ||
			len(want.Extra) != 0 || m.IsEdns0() == nil {
			t.Fatalf("client answer %v\nfrom upstream %v\nordinary path keeps %v", &m, &up, want)
		}
		if _, _, ok := ttlOffsets(out); !ok {
			t.Fatalf("cannot find the TTLs of %x", out)
		}
	})
}

// TestParseQueryOptions: queries with the options stub resolvers send
// (a cookie) stay on the fast path; options with rules of their own, and
// options that do not fill the OPT record exactly, go to the ordinary path.
func TestParseQueryOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []dns.EDNS0
		raw  []byte // replaces the packed OPT rdata when set
		fast bool
	}{
		{"no options", nil, nil, true},
		{"cookie", []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "24a5ac2f2f3c1a7e"}}, nil, true},
		{"nsid and padding", []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}, &dns.EDNS0_PADDING{Padding: make([]byte, 12)}}, nil, true},
		{"client subnet", []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("192.0.2.0").To4()}}, nil, false},
		{"option longer than the record", nil, []byte{0, 10, 0, 9, 1, 2}, false},
		{"half an option header", nil, []byte{0, 10}, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.zoom.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = c.opts
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if c.raw != nil {
			// The OPT record, with no options, ends the packet with its
			// RDLENGTH: give it this data instead.
			b = append(b[:len(b)-2], byte(len(c.raw)>>8), byte(len(c.raw)))
			b = append(b, c.raw...)
		}
		if _, ok := parseQuery(b, nil); ok != c.fast {
			t.Errorf("%s: fast path %v, want %v", c.name, ok, c.fast)
		}
	}
}

// TestUpstreamQueryMatchesMiekg: the fast path's upstream query is byte
// for byte what miekg/dns packs for the same question and EDNS record.
// (It once had a second zero byte before the OPT's type, which real
// servers answer FORMERR or drop.)
func TestUpstreamQueryMatchesMiekg(t *testing.T) {
	for _, do := range []bool{false, true} {
		ex := &exchange{id: 0x1234, qname: []byte("\x03www\x07example\x03org\x00"), qtype: dns.TypeAAAA, do: do}
		m := new(dns.Msg)
		m.SetQuestion("www.example.org.", dns.TypeAAAA)
		m.Id = 0x1234
		m.SetEdns0(upstreamSize, do)
		want, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if got := ex.query(); string(got) != string(want) {
			t.Errorf("do=%v:\n got % x\nwant % x", do, got, want)
		}
	}
}
