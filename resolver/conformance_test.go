package resolver

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The conformance suite: the same raw queries go to our resolver and to a
// real Unbound, both forwarding to the same NSD serving a DNSSEC-signed
// zone (startNSD), and their answers are compared: rcode, flags, the
// question, and every section (records compared without TTLs, owner
// names in lower case). Each probe is asked of our resolver twice, so
// that both the cache miss and the cache hit (the fast path's packed
// cache, for plain queries) are held to Unbound's answer.
//
// A difference is allowed only where docs/resolver.md ("Where answers
// differ from Unbound") explains it; the reason is written here beside
// the probe and the test fails if the documented difference goes away,
// so that the page stays true.

type probe struct {
	name string
	net  string // "udp" (default) or "tcp"
	msg  func() []byte
	// differs names the documented difference (a heading of
	// docs/resolver.md's list), or "" when the answers must match.
	differs string
	// only compares just these parts of the answers: "rcode", "flags",
	// "question", "answer", "authority", "additional", "edns"; empty: all.
	only []string
}

// q builds a query for name and type with RD set and optional edits.
func q(name string, qtype uint16, edits ...func(*dns.Msg)) func() []byte {
	return func() []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		for _, e := range edits {
			e(m)
		}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
}

// raw turns packed bytes through fix, for what miekg will not pack.
func raw(build func() []byte, fix func([]byte) []byte) func() []byte {
	return func() []byte { return fix(build()) }
}

func edns(size uint16, do bool) func(*dns.Msg) {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

func option(o dns.EDNS0) func(*dns.Msg) {
	return func(m *dns.Msg) { m.IsEdns0().Option = append(m.IsEdns0().Option, o) }
}

// optRR is a packed OPT record (owner given as wire bytes).
func optRR(owner []byte, size uint16, ttl uint32) []byte {
	b := append([]byte(nil), owner...)
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, size)
	b = binary.BigEndian.AppendUint32(b, ttl)
	return binary.BigEndian.AppendUint16(b, 0)
}

// appendRR appends a record to a packed message in section 0..2
// (answer, authority, additional), counting it.
func appendRR(section int, rr []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		at := 6 + 2*section
		binary.BigEndian.PutUint16(b[at:], binary.BigEndian.Uint16(b[at:])+1)
		return append(b, rr...)
	}
}

// wireName packs labels as given (a label may hold any byte, dots too).
func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// rawQuery is a query with the question name given as wire labels.
func rawQuery(qtype uint16, labels ...string) func() []byte {
	return func() []byte {
		b := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
		b = append(b, wireName(labels...)...)
		b = binary.BigEndian.AppendUint16(b, qtype)
		return binary.BigEndian.AppendUint16(b, dns.ClassINET)
	}
}

func probes() []probe {
	long := func() []string { // a 255-octet name under example.org
		var ls []string
		total := 13 // "\x07example\x03org\x00"
		for total+64 <= 255 {
			ls = append(ls, strings.Repeat("a", 63))
			total += 64
		}
		if rest := 255 - total - 1; rest > 0 {
			ls = append(ls, strings.Repeat("b", rest))
		}
		return append(ls, "example", "org")
	}
	setOpcode := func(op int) func(*dns.Msg) { return func(m *dns.Msg) { m.Opcode = op } }
	ps := []probe{
		{name: "A", msg: q("www.example.org.", dns.TypeA)},
		{name: "AAAA", msg: q("www.example.org.", dns.TypeAAAA)},
		{name: "MX", msg: q("example.org.", dns.TypeMX)},
		{name: "TXT", msg: q("example.org.", dns.TypeTXT)},
		{name: "SOA", msg: q("example.org.", dns.TypeSOA)},
		{name: "NS", msg: q("example.org.", dns.TypeNS)},
		{name: "SRV", msg: q("_sip._udp.example.org.", dns.TypeSRV)},
		{name: "PTR", msg: q("ptr.example.org.", dns.TypePTR)},
		{name: "CNAME to A", msg: q("alias.example.org.", dns.TypeA)},
		{name: "CNAME chain", msg: q("chain.example.org.", dns.TypeA)},
		{name: "CNAME asked", msg: q("alias.example.org.", dns.TypeCNAME)},
		{name: "CNAME out of zone", msg: q("outside.example.org.", dns.TypeA)},
		{name: "wildcard", msg: q("anything.wild.example.org.", dns.TypeA)},
		{name: "NXDOMAIN", msg: q("nope.example.org.", dns.TypeA)},
		{name: "NODATA", msg: q("www.example.org.", dns.TypeMX)},
		{name: "unknown type", msg: q("www.example.org.", 65000)},
		{name: "mixed case", msg: q("WwW.ExAmPlE.oRg.", dns.TypeA)},
		{name: "underscore NXDOMAIN", msg: q("_dmarc.example.org.", dns.TypeTXT)},
		{name: "other zone", msg: q("www.example.net.", dns.TypeA)},
		{name: "DNSKEY", msg: q("example.org.", dns.TypeDNSKEY, edns(1232, true))},
		{name: "DO A", msg: q("www.example.org.", dns.TypeA, edns(1232, true))},
		{name: "DO NXDOMAIN", msg: q("nope2.example.org.", dns.TypeA, edns(1232, true))},
		{name: "DO NODATA", msg: q("mail.example.org.", dns.TypeAAAA, edns(1232, true))},
		{name: "DO wildcard", msg: q("x.wild.example.org.", dns.TypeA, edns(1232, true))},
		{name: "EDNS no DO", msg: q("www.example.org.", dns.TypeA, edns(1232, false))},
		{name: "CD", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.CheckingDisabled = true }))},
		{name: "CD DO", msg: q("www.example.org.", dns.TypeA, edns(1232, true), (func(m *dns.Msg) { m.CheckingDisabled = true }))},
		{name: "AD asked", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.AuthenticatedData = true }))},
		{name: "CD NXDOMAIN", msg: q("nope.example.org.", dns.TypeA, edns(1232, false), (func(m *dns.Msg) { m.CheckingDisabled = true }))},
		{name: "RD=0", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.RecursionDesired = false })), only: []string{"rcode", "flags", "question", "answer"}},
		{name: "header Z bit", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.Zero = true }))},
		{name: "EDNS version 1", msg: q("www.example.org.", dns.TypeA, edns(1232, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) })},
		{name: "EDNS version 1 DO", msg: q("www.example.org.", dns.TypeA, edns(1232, true), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) })},
		{name: "EDNS unknown flag", msg: q("www.example.org.", dns.TypeA, edns(1232, false), func(m *dns.Msg) { m.IsEdns0().SetZ(0x4000) })},
		{name: "EDNS unknown option", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}}))},
		{name: "EDNS cookie", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}))},
		{name: "EDNS NSID", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_NSID{Code: dns.EDNS0NSID}))},
		{name: "EDNS padding", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_PADDING{Padding: make([]byte, 16)}))},
		{name: "EDNS client subnet", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()}))},
		{name: "EDNS keepalive", msg: q("www.example.org.", dns.TypeA, edns(1232, false), option(&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}))},
		{name: "EDNS buffer 100", msg: q("www.example.org.", dns.TypeA, edns(100, false))},
		{name: "large no EDNS", msg: q("big.example.org.", dns.TypeTXT)},
		{name: "large buffer 512", msg: q("big.example.org.", dns.TypeTXT, edns(512, false))},
		{name: "large buffer 1232", msg: q("big.example.org.", dns.TypeTXT, edns(1232, false))},
		{name: "large buffer 4096", msg: q("big.example.org.", dns.TypeTXT, edns(4096, false)), differs: "UDP answers stop at 1232 bytes"},
		{name: "large buffer 4096 DO", msg: q("big.example.org.", dns.TypeTXT, edns(4096, true)), differs: "UDP answers stop at 1232 bytes"},
		{name: "large over TCP", net: "tcp", msg: q("big.example.org.", dns.TypeTXT, edns(1232, false))},
		{name: "large over TCP DO", net: "tcp", msg: q("big.example.org.", dns.TypeTXT, edns(4096, true))},
		{name: "A over TCP", net: "tcp", msg: q("www.example.org.", dns.TypeA)},
		{name: "ANY", msg: q("www.example.org.", dns.TypeANY), differs: "ANY"},
		{name: "qtype OPT", msg: q("www.example.org.", dns.TypeOPT)},
		{name: "qtype 0", msg: q("www.example.org.", 0)},
		{name: "qtype RRSIG", msg: q("www.example.org.", dns.TypeRRSIG)},
		{name: "AXFR over TCP", net: "tcp", msg: q("example.org.", dns.TypeAXFR)},
		{name: "IXFR over UDP", msg: q("example.org.", dns.TypeIXFR)},
		{name: "class CHAOS version.bind", msg: q("version.bind.", dns.TypeTXT, (func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })), differs: "CHAOS"},
		{name: "class CHAOS id.server", msg: q("id.server.", dns.TypeTXT, (func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })), differs: "CHAOS"},
		{name: "class HESIOD", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassHESIOD }))},
		{name: "class ANY", msg: q("www.example.org.", dns.TypeA, (func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY })), differs: "Classes other than IN"},
		{name: "opcode IQUERY", msg: q("www.example.org.", dns.TypeA, setOpcode(dns.OpcodeIQuery))},
		{name: "opcode STATUS", msg: q("www.example.org.", dns.TypeA, setOpcode(dns.OpcodeStatus))},
		{name: "opcode 3", msg: q("www.example.org.", dns.TypeA, setOpcode(3))},
		{name: "opcode NOTIFY", msg: q("example.org.", dns.TypeSOA, setOpcode(dns.OpcodeNotify))},
		{name: "opcode UPDATE", msg: q("example.org.", dns.TypeSOA, setOpcode(dns.OpcodeUpdate))},
		{name: "opcode 6 (DSO)", msg: q("www.example.org.", dns.TypeA, setOpcode(6))},
		{name: "opcode 15", msg: q("www.example.org.", dns.TypeA, setOpcode(15))},
		{name: "QDCOUNT 0", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { b[5] = 0; return b[:12] })},
		{name: "QDCOUNT 2", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { b[5] = 2; return append(b, b[12:]...) })},
		{name: "QR set", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { b[2] |= 0x80; return b })},
		{name: "TC set in query", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { b[2] |= 0x02; return b })},
		{name: "trailing garbage", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { return append(b, 0xde, 0xad) })},
		{name: "question cut short", msg: raw(q("www.example.org.", dns.TypeA), func(b []byte) []byte { return b[:len(b)-3] }), only: []string{"rcode"}},
		{name: "two OPTs", msg: raw(q("www.example.org.", dns.TypeA, edns(1232, false)), appendRR(2, optRR([]byte{0}, 1232, 0)))},
		{name: "OPT non-root owner", msg: raw(q("www.example.org.", dns.TypeA), appendRR(2, optRR(wireName("x"), 1232, 0))), only: []string{"rcode", "question", "answer", "authority", "additional"}},
		{name: "OPT in answer", msg: raw(q("www.example.org.", dns.TypeA), appendRR(0, optRR([]byte{0}, 1232, 0)))},
		{name: "OPT in authority", msg: raw(q("www.example.org.", dns.TypeA), appendRR(1, optRR([]byte{0}, 1232, 0)))},
		{name: "label with a dot", msg: rawQuery(dns.TypeA, "x.github", "example", "org")},
		{name: "dotted name split", msg: rawQuery(dns.TypeA, "x", "github", "example", "org")},
		{name: "label with a zero byte", msg: rawQuery(dns.TypeA, "w\x00w", "example", "org")},
		{name: "label with a space", msg: rawQuery(dns.TypeA, "w w", "example", "org")},
		{name: "label with high bytes", msg: rawQuery(dns.TypeA, "caf\xc3\xa9", "example", "org")},
		{name: "63-octet label", msg: rawQuery(dns.TypeA, strings.Repeat("l", 63), "example", "org")},
		{name: "255-octet name", msg: rawQuery(dns.TypeA, long()...)},
		{name: "localhost A", msg: q("localhost.", dns.TypeA)},
		{name: "localhost AAAA", msg: q("localhost.", dns.TypeAAAA)},
		{name: "name under localhost", msg: q("foo.localhost.", dns.TypeA)},
		{name: "1.0.0.127.in-addr.arpa PTR", msg: q("1.0.0.127.in-addr.arpa.", dns.TypePTR)},
		{name: "1.0.0.127.in-addr.arpa PTR EDNS", msg: q("1.0.0.127.in-addr.arpa.", dns.TypePTR, edns(1232, false))},
	}
	return ps
}

// outcome is what a server answered, normalised for comparison.
type outcome map[string]string

func normalise(resp []byte) outcome {
	if resp == nil {
		return outcome{"rcode": "no answer"}
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		if len(resp) < 12 {
			return outcome{"rcode": "runt answer"}
		}
		return outcome{"rcode": dns.RcodeToString[int(resp[3]&0xF)], "question": "unparseable: " + err.Error()}
	}
	o := outcome{}
	o["rcode"] = dns.RcodeToString[m.Rcode]
	var fl []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"}, {m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}} {
		if f.on {
			fl = append(fl, f.name)
		}
	}
	o["flags"] = fmt.Sprintf("opcode=%d %s", m.Opcode, strings.Join(fl, " "))
	var qs []string
	for _, x := range m.Question {
		qs = append(qs, x.String())
	}
	o["question"] = strings.Join(qs, "; ")
	o["answer"] = records(m.Answer)
	o["authority"] = records(m.Ns)
	o["additional"] = records(m.Extra)
	if opt := m.IsEdns0(); opt != nil {
		o["edns"] = fmt.Sprintf("version=%d do=%v", opt.Version(), opt.Do())
	} else {
		o["edns"] = "none"
	}
	return o
}

// records is a section as sorted text: TTLs zeroed, owners in lower case,
// the OPT record left out (the edns part compares it).
func records(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		rr = dns.Copy(rr)
		rr.Header().Ttl = 0
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		if sig, ok := rr.(*dns.RRSIG); ok {
			sig.OrigTtl = 0
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// exchange sends one packet and returns the answer, or nil when none
// comes within the wait.
func exchangeRaw(t *testing.T, netw, addr string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial(netw, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if netw == "tcp" {
		pkt = append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)
	}
	if _, err := c.Write(pkt); err != nil {
		return nil
	}
	if netw == "tcp" {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return nil
		}
		return b
	}
	b := make([]byte, 65535)
	n, err := c.Read(b)
	if err != nil {
		return nil
	}
	return b[:n]
}

func TestConformanceWithUnbound(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NSD and Unbound")
	}
	nsd := startNSD(t)
	unbound := startUnbound(t, nsd)
	reg := newRegistry(t)
	reg.publish(1, []string{"example.org", "*.example.org", "*.example.net"})
	r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{nsd}})
	waitVersion(t, r, 1, 2*time.Second)
	ours := r.Addr("udp")

	doc, err := os.ReadFile("../docs/resolver.md")
	if err != nil {
		t.Fatal(err)
	}
	ps := probes()
	if len(ps) < 60 {
		t.Fatalf("only %d probes", len(ps))
	}
	var report strings.Builder
	for _, p := range ps {
		netw := p.net
		if netw == "" {
			netw = "udp"
		}
		pkt := p.msg()
		want := normalise(exchangeRaw(t, netw, unbound, pkt, 1500*time.Millisecond))
		for round, label := range []string{"miss", "hit"} {
			got := normalise(exchangeRaw(t, netw, ours, pkt, 1500*time.Millisecond))
			parts := p.only
			if len(parts) == 0 {
				parts = []string{"rcode", "flags", "question", "answer", "authority", "additional", "edns"}
			}
			var diffs []string
			for _, part := range parts {
				if got[part] != want[part] {
					diffs = append(diffs, fmt.Sprintf("  %s:\n    ours:    %s\n    unbound: %s", part,
						strings.ReplaceAll(got[part], "\n", "\n             "), strings.ReplaceAll(want[part], "\n", "\n             ")))
				}
			}
			switch {
			case p.differs == "" && len(diffs) > 0:
				t.Errorf("probe %q (%s, %s): answers differ from Unbound's\n%s", p.name, netw, label, strings.Join(diffs, "\n"))
			case p.differs != "" && round == 0 && len(diffs) == 0:
				t.Errorf("probe %q: documented difference %q no longer shows; update docs/resolver.md", p.name, p.differs)
			case p.differs != "" && round == 0 && !strings.Contains(string(doc), "- **"+p.differs):
				t.Errorf("probe %q: difference %q is not in docs/resolver.md:\n%s", p.name, p.differs, strings.Join(diffs, "\n"))
			case p.differs != "" && round == 0:
				fmt.Fprintf(&report, "%s (documented: %s)\n%s\n", p.name, p.differs, strings.Join(diffs, "\n"))
			}
		}
	}
	// Pipelined TCP: five queries on one connection, each answer matched
	// by ID and compared (the order may differ: RFC 7766 §6.2.1.1).
	var pkts [][]byte
	for i, name := range []string{"www.example.org.", "big.example.org.", "nope.example.org.", "mail.example.org.", "localhost."} {
		pkt := q(name, dns.TypeA, edns(1232, i%2 == 0))()
		binary.BigEndian.PutUint16(pkt, uint16(0x100+i))
		pkts = append(pkts, pkt)
	}
	want, got := pipelined(t, unbound, pkts), pipelined(t, ours, pkts)
	for id, w := range want {
		for part, v := range w {
			if got[id][part] != v {
				t.Errorf("pipelined TCP, query %#x, %s:\n  ours:    %s\n  unbound: %s", id, part, got[id][part], v)
			}
		}
	}
	t.Logf("%d probes and a pipelined TCP exchange; documented differences:\n%s", len(ps), report.String())
}

// pipelined sends every packet on one TCP connection before reading, and
// returns the answers by ID.
func pipelined(t *testing.T, addr string, pkts [][]byte) map[uint16]outcome {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	for _, p := range pkts {
		out = append(binary.BigEndian.AppendUint16(out, uint16(len(p))), p...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	got := map[uint16]outcome{}
	for range pkts {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("%s: %d of %d answers: %v", addr, len(got), len(pkts), err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		got[binary.BigEndian.Uint16(b)] = normalise(b)
	}
	return got
}
