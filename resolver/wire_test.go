package resolver

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseQuery: the fast parser never panics, and whatever it accepts
// miekg/dns reads as the same question.
func FuzzParseQuery(f *testing.F) {
	seedQueries(f, "a.zoom.example.", "X-Y_z.example.org.")
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

// seedQueries adds to f's corpus an A query for each name, without and
// with EDNS (DO set).
func seedQueries(f *testing.F, names ...string) {
	for _, name := range names {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(4096, true)
		b, _ = m.Pack()
		f.Add(b)
	}
}
