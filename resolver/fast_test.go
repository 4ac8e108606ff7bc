package resolver

import (
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
			if e := ede(&got); e != nil && e.InfoCode == edeBlocked {
				want := ede(r.blocked(m, r.policy.Load()))
				if want == nil || e.ExtraText != want.ExtraText {
					t.Errorf("%s: fast EDE text %q, ordinary %v", name, e.ExtraText, want)
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
