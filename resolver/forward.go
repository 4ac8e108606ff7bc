package resolver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamSize is the EDNS buffer we advertise upstream (the DNS Flag Day
// 2020 value, which avoids IP fragmentation).
const upstreamSize = 1232

// group is a set of upstreams tried in turn, starting with the last one
// that answered.
type group struct {
	addrs   []string
	timeout time.Duration
	good    atomic.Int32
	m       *metrics
}

var errNoUpstream = errors.New("no upstream answered")

// secureID draws a query ID from crypto/rand, so that an off-path attacker
// cannot predict it.
func secureID() uint16 {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return binary.BigEndian.Uint16(b[:])
}

// exchange sends the question upstream with a fresh random ID and our own
// EDNS options, over UDP from a fresh socket (so a random source port),
// retrying over TCP when the answer is truncated, and failing over to the
// next upstream on error or on a SERVFAIL or REFUSED answer; skip (an
// upstream already waited on in vain) is not asked. When every upstream
// asked answered with a failure, the last such answer is returned; when
// none answered, an error.
func (g *group) exchange(ctx context.Context, q dns.Question, do bool, skip string) (*dns.Msg, error) {
	req := new(dns.Msg)
	req.Id = secureID()
	req.RecursionDesired = true
	req.Question = []dns.Question{q}
	req.SetEdns0(upstreamSize, do)
	start := int(g.good.Load())
	var failed *dns.Msg
	var lastErr error = errNoUpstream
	for i := range g.addrs {
		idx := (start + i) % len(g.addrs)
		addr := g.addrs[idx]
		if addr == skip {
			continue
		}
		t0 := time.Now()
		resp, err := g.try(ctx, addr, req)
		if err == nil && resp.Rcode != dns.RcodeServerFailure && resp.Rcode != dns.RcodeRefused {
			g.good.Store(int32(idx))
			g.m.upstreamTime.Observe(time.Since(t0).Seconds())
			return resp, nil
		}
		g.m.upstreamErrs.WithLabelValues(addr).Inc()
		if err == nil {
			failed = resp
		} else {
			lastErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed != nil {
		return failed, nil
	}
	return nil, lastErr
}

func (g *group) try(ctx context.Context, addr string, req *dns.Msg) (*dns.Msg, error) {
	udp := &dns.Client{Net: "udp", Timeout: g.timeout, UDPSize: upstreamSize}
	resp, _, err := udp.ExchangeContext(ctx, req, addr)
	if err == nil && resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: g.timeout}
		req.Id = secureID()
		resp, _, err = tcp.ExchangeContext(ctx, req, addr)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || !sameQuestion(resp.Question[0], req.Question[0]) {
		return nil, errors.New("upstream answered another question")
	}
	return resp, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && equalFoldASCII(a.Name, b.Name)
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
