package resolver

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	netw string
	msgs []*dns.Msg
}

func (r *recorder) LocalAddr() net.Addr {
	if r.netw == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msgs = append(r.msgs, m); return nil }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

// offline makes a resolver with a list installed and an upstream that
// does not answer (port 9 on loopback), for handler-level tests.
func offline(t testing.TB) *Resolver {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	r, err := New(Options{Registry: "http://127.0.0.1:1", Scope: "common", PublicKey: pub, CacheDir: t.TempDir(),
		Mode: ModeEnforce, Upstreams: []string{"127.0.0.1:9"}, UpstreamTimeout: 50 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	_, body := allowlist.NewList("common", 1, time.Now(), []allowlist.Entry{{Pattern: "*.zoom.example", Site: "z", Category: "other"}})
	p, err := verify(pub, "common", 0, body, list.Sign(key, body))
	if err != nil {
		t.Fatal(err)
	}
	r.install(p, "test")
	return r
}

// handle runs raw bytes through the server's own acceptance check and the
// handler, as miekg's server does, and returns the answers written.
func handle(r *Resolver, raw []byte, netw string) []*dns.Msg {
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		return nil // the server drops what it cannot parse
	}
	w := &recorder{netw: netw}
	r.ServeDNS(w, req)
	return w.msgs
}

// FuzzServeDNS feeds raw packets to the query handler: it must never panic
// and never answer over UDP with more than the client's buffer.
func FuzzServeDNS(f *testing.F) {
	r := offline(f)
	seedQueries(f, "a.zoom.example.", "blocked.example.com.")
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, msg := range handle(r, raw, "udp") {
			req := new(dns.Msg)
			req.Unpack(raw)
			limit := 512
			if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > limit {
				limit = int(o.UDPSize())
			}
			b, err := msg.Pack()
			if err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
			if len(b) > limit {
				t.Fatalf("answer of %d bytes for a %d-byte buffer", len(b), limit)
			}
		}
	})
}

// TestBadPackets sends hand-made bad packets: each gets FORMERR, a
// refusal, or is dropped; none panics.
func TestBadPackets(t *testing.T) {
	r := offline(t)
	q := func(mod func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("a.zoom.example.", dns.TypeA)
		mod(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := q(func(*dns.Msg) {})
	loop := append([]byte{}, good[:12]...)
	loop = append(loop, 0xc0, 12, 0, 1, 0, 1) // a name that points at itself
	long := new(dns.Msg)
	long.Question = []dns.Question{{Name: string(make([]byte, 0)), Qtype: dns.TypeA, Qclass: dns.ClassINET}}
	cases := map[string]struct {
		raw   []byte
		rcode int // -1: dropped
	}{
		"empty datagram":   {[]byte{}, -1},
		"truncated header": {good[:5], -1},
		"header only":      {good[:12], dns.RcodeFormatError},
		"QDCOUNT 0":        {q(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError},
		"QDCOUNT 2":        {q(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError},
		"compression loop": {loop, -1},
		"a response":       {q(func(m *dns.Msg) { m.Response = true }), -1},
		"class CHAOS":      {q(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused},
		"class 999":        {q(func(m *dns.Msg) { m.Question[0].Qclass = 999 }), dns.RcodeRefused},
		"EDNS version 1":   {q(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers},
		"oversized EDNS":   {q(func(m *dns.Msg) { m.SetEdns0(65535, false); m.Question[0].Name = "blocked.example.com." }), dns.RcodeNameError},
		"opcode STATUS":    {q(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus }), dns.RcodeNotImplemented},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := handle(r, c.raw, "udp")
			if c.rcode == -1 {
				if len(got) != 0 {
					t.Errorf("answered %s", got[0])
				}
				return
			}
			if len(got) != 1 || got[0].Rcode != c.rcode {
				t.Errorf("got %v, want rcode %s", got, dns.RcodeToString[c.rcode])
			}
		})
	}
	// A name over 255 octets cannot be packed by a well-behaved client; raw,
	// it fails to unpack and is dropped.
	raw := append([]byte{}, good[:12]...)
	for i := 0; i < 5; i++ {
		raw = append(raw, 63)
		raw = append(raw, make([]byte, 63)...)
	}
	raw = append(raw, 0, 0, 1, 0, 1)
	if got := handle(r, raw, "udp"); len(got) != 0 {
		t.Errorf("a 320-octet name was answered: %v", got)
	}
}
