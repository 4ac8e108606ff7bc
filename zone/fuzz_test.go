package zone_test

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter records what the handler writes, as a client at a TCP or UDP
// address would receive it. A request's TSIG, if any, is taken as failed
// verification: the server never vouches for fuzzed bytes.
type fakeWriter struct {
	tcp    bool
	status error
	out    [][]byte
}

func (w *fakeWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 4000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 4000}
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err == nil {
		w.out = append(w.out, b)
	}
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.out = append(w.out, append([]byte(nil), b...))
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return w.status }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// FuzzZoneServeDNS: whatever a client sends, the zone server answers with
// messages that parse, never with zone records unless the request was a
// transfer it authorised, and never panics.
func FuzzZoneServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"common.rpz.allowlist.", dns.TypeSOA}, {"common.rpz.allowlist.", dns.TypeAXFR}, {"dept-a.rpz.allowlist.", dns.TypeIXFR}, {"x.example.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.qtype == dns.TypeIXFR {
			m.SetIxfr(q.name, 1, "a.", "b.")
		}
		b, _ := m.Pack()
		f.Add(b, false)
		f.Add(b, true)
		m.SetTsig("xfr-all.", dns.HmacSHA256, 300, 0)
		b, _ = m.Pack()
		f.Add(b, true)
	}
	e := newEnv(f, envOptions{})
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		r := new(dns.Msg)
		if r.Unpack(raw) != nil {
			return
		}
		w := &fakeWriter{tcp: tcp}
		if r.IsTsig() != nil {
			w.status = dns.ErrSig
		}
		e.zs.ServeDNS(w, r)
		for _, b := range w.out {
			a := new(dns.Msg)
			if err := a.Unpack(b); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			for _, rr := range a.Answer {
				if _, ok := rr.(*dns.CNAME); ok {
					t.Fatalf("zone records sent to an unauthenticated client: %v", a)
				}
			}
		}
	})
}
