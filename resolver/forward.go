package resolver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
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

const (
	fwdSockets    = 4   // connected sockets per upstream address
	fwdSocketUses = 256 // queries before a socket is replaced
)

// fwdSocketAge is how long a socket serves before it is replaced, however
// few queries it carried: under light traffic too, source ports change.
var fwdSocketAge = 10 * time.Second

// forwarder is the chain's last link (route, step 5): the one type that
// asks upstreams, for both paths. It owns the upstream groups (the
// verdict names one), and asks them in two ways:
//
//   - ask, for the ordinary path: a miekg/dns exchange from a fresh
//     socket, failing over through the group, retrying over TCP when the
//     answer is truncated, the answer scrubbed (planAnswer) and cached;
//   - forward, for the UDP fast path: described below.
//
// Identical questions in flight share one upstream query on either way
// (flight; inflight): fewer upstream queries, and no window for a spoofer
// to race many of them (the birthday attack on DNS forwarders).
//
// The fast path's way (forward). An allowed name that misses the cache is sent
// upstream from here, without unpacking the query, starting a goroutine
// or opening a socket for it: the question is copied into a query of our
// own (a fresh random ID, our EDNS record), sent on one of a few
// long-lived connected UDP sockets per upstream, and the reader goroutine
// of that socket turns the answer into each waiting client's answer by
// patching bytes (their ID and spelling of the name, our flags and OPT).
//
// The protections of the ordinary path stay:
//   - IDs come from a ChaCha8 generator seeded from crypto/rand, and are
//     unique per socket among queries in flight;
//   - sockets are connected, so the kernel only delivers datagrams from
//     the upstream's address and port; each is replaced after
//     fwdSocketUses queries or fwdSocketAge, whichever comes first, so
//     its (kernel-chosen, random) source port changes often;
//   - identical questions in flight share one upstream query;
//   - an answer must echo the question exactly (case-insensitively).
//
// Anything unusual goes to the ordinary path for that query, which then
// does everything the slow way (failover, TCP on truncation, SERVFAIL with
// an Extended DNS Error): a truncated answer, an rcode other than NOERROR
// or NXDOMAIN, an OPT record that is not last, an answer larger than the
// client can take, or no answer within the upstream timeout.

type forwarder struct {
	r        *Resolver
	up       *group // upstreams
	filtered *group // filtered_upstreams (route mode)
	flight   singleflight.Group

	open atomic.Int32 // upstream sockets open (their readers running)

	mu       sync.Mutex
	rng      *mrand.ChaCha8
	inflight map[packedKey]*exchange
	pools    map[string]*sockPool
	closed   bool
}

// sockPool is the sockets to one upstream address.
type sockPool struct {
	addr  string
	socks []*upSock
	next  int
}

// upSock is one connected socket and the queries in flight on it.
type upSock struct {
	conn    *net.UDPConn
	uses    int
	born    time.Time
	retired bool // replaced: closed once nothing is pending on it
	pending map[uint16]*exchange
}

// exchange is one upstream query and the clients waiting for its answer.
type exchange struct {
	key     packedKey
	qname   []byte // wire form, lower case
	qtype   uint16
	do      bool
	id      uint16
	sock    *upSock
	g       *group
	idx     int // which of g's upstreams was asked
	sent    time.Time
	waiters []waiter
}

type waiter struct {
	conn   *net.UDPConn
	addr   netip.AddrPort
	pkt    []byte // the client's query, for the ordinary path if need be
	q      wireQuery
	result string
	start  time.Time
}

func newForwarder(r *Resolver) *forwarder {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return &forwarder{r: r, rng: mrand.NewChaCha8(seed), inflight: map[packedKey]*exchange{}, pools: map[string]*sockPool{},
		up:       &group{addrs: r.opt.Upstreams, timeout: r.opt.UpstreamTimeout, m: r.m},
		filtered: &group{addrs: r.opt.FilteredUpstreams, timeout: r.opt.UpstreamTimeout, m: r.m}}
}

// ask is the ordinary path's way: the group g's answer to q (scrubbed,
// and kept in the cache under key when it may be), sharing the exchange
// with identical questions in flight. skip is an upstream already waited
// on in vain.
func (f *forwarder) ask(g *group, q dns.Question, do bool, key packedKey, skip string) (*dns.Msg, error) {
	res, err, _ := f.flight.Do(fmt.Sprintf("%s|%d|%d|%s", key.name, key.qtype, key.flags, skip), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout*time.Duration(max(1, len(g.addrs)))+time.Second)
		defer cancel()
		now := time.Now()
		resp, err := g.exchange(ctx, q, do, skip)
		if err != nil {
			return nil, err
		}
		resp = scrub(resp)
		if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
			resp.Compress = true
			if wire, err := resp.Pack(); err == nil {
				f.r.cache.store(key, wire, now)
			}
		}
		return resp, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*dns.Msg), nil
}

// forward sends a parsed query upstream, or joins one in flight for the
// same question. It returns false when it cannot (the caller then uses
// the ordinary path). pkt and q.name are copied.
func (f *forwarder) forward(conn *net.UDPConn, addr netip.AddrPort, pkt []byte, q *wireQuery, result string, g *group, start time.Time) bool {
	if len(g.addrs) == 0 {
		return false
	}
	w := waiter{conn: conn, addr: addr, pkt: append([]byte(nil), pkt...), q: *q, result: result, start: start}
	w.q.name = append([]byte(nil), q.name...)
	key := w.q.key(g == f.filtered)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	if ex := f.inflight[key]; ex != nil {
		ex.waiters = append(ex.waiters, w)
		f.mu.Unlock()
		return true
	}
	addrIdx := int(g.good.Load()) % len(g.addrs)
	s, err := f.socket(g.addrs[addrIdx])
	if err != nil {
		f.mu.Unlock()
		return false
	}
	ex := &exchange{key: key, qtype: q.qtype, do: q.do, sock: s, g: g, idx: addrIdx, sent: time.Now(), waiters: []waiter{w}}
	ex.qname = append([]byte(nil), pkt[12:q.qend-4]...)
	for i, c := range ex.qname {
		if 'A' <= c && c <= 'Z' {
			ex.qname[i] = c + 'a' - 'A'
		}
	}
	for {
		ex.id = uint16(f.rng.Uint64())
		if s.pending[ex.id] == nil {
			break
		}
	}
	s.pending[ex.id] = ex
	f.inflight[key] = ex
	s.uses++
	f.mu.Unlock()

	f.r.m.cacheMisses.Inc()
	if _, err := s.conn.Write(ex.query()); err != nil {
		f.fail(ex, "unreachable")
	}
	return true
}

// query builds the upstream query: our ID, RD, the question in lower case,
// and an OPT record with our buffer size and the client's DO bit.
func (ex *exchange) query() []byte {
	b := make([]byte, 0, 12+len(ex.qname)+4+11)
	b = binary.BigEndian.AppendUint16(b, ex.id)
	b = append(b, 0x01, 0x00) // RD
	b = append(b, 0, 1, 0, 0, 0, 0, 0, 1)
	b = append(b, ex.qname...)
	b = binary.BigEndian.AppendUint16(b, ex.qtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	return appendOPT(b, ex.do)
}

// socket returns a socket to addr with uses left, replacing a worn one.
// f.mu is held.
func (f *forwarder) socket(addr string) (*upSock, error) {
	p := f.pools[addr]
	if p == nil {
		p = &sockPool{addr: addr}
		f.pools[addr] = p
	}
	if len(p.socks) < fwdSockets {
		s, err := f.dial(addr)
		if err != nil {
			return nil, err
		}
		p.socks = append(p.socks, s)
		return s, nil
	}
	p.next = (p.next + 1) % len(p.socks)
	s := p.socks[p.next]
	if s.uses >= fwdSocketUses || time.Since(s.born) > fwdSocketAge {
		fresh, err := f.dial(addr)
		if err != nil {
			return nil, err
		}
		p.socks[p.next] = fresh
		f.retire(s)
		s = fresh
	}
	return s, nil
}

func (f *forwarder) dial(addr string) (*upSock, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	s := &upSock{conn: c.(*net.UDPConn), born: time.Now(), pending: map[uint16]*exchange{}}
	f.open.Add(1)
	go f.read(s)
	return s, nil
}

// retire closes a replaced socket as soon as no query is pending on it
// (forget), and at the latest once its queries have had their time. Under
// load a socket is replaced every fwdSocketUses queries: waiting out the
// timeout for each kept hundreds open, each with its reader's buffers.
// f.mu is held.
func (f *forwarder) retire(s *upSock) {
	s.retired = true
	if len(s.pending) == 0 {
		s.conn.Close()
		return
	}
	time.AfterFunc(f.r.opt.UpstreamTimeout+time.Second, func() { s.conn.Close() })
}

// read takes answers from one upstream socket until it is closed.
func (f *forwarder) read(s *upSock) {
	// We ask for answers of at most upstreamSize bytes, so 4 KiB holds
	// any answer a well-behaved upstream sends; a longer datagram is cut
	// here, and planAnswer refuses what is cut short. Sockets are many
	// and short-lived (fwdSocketUses), so their buffers are kept small.
	buf := make([]byte, 4096)
	out := make([]byte, 0, 4096)
	recs := make([]record, 0, 32)
	for {
		n, err := s.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			f.open.Add(-1)
			return
		}
		if err != nil {
			// ECONNREFUSED and the like: nothing listens upstream. Hand
			// the queries waiting on this socket to the ordinary path
			// now, starting with the next upstream, rather than after
			// the timeout.
			f.mu.Lock()
			var failed []*exchange
			for _, ex := range s.pending {
				failed = append(failed, ex)
			}
			f.mu.Unlock()
			for _, ex := range failed {
				f.fail(ex, "unreachable")
			}
			continue
		}
		b := buf[:n]
		if n < 12 || b[2]&0x80 == 0 {
			continue
		}
		f.mu.Lock()
		ex := s.pending[binary.BigEndian.Uint16(b)]
		if ex == nil || !ex.echoes(b) {
			// Late, unknown, or not an answer to our question: ignore
			// it, and keep waiting for the real one.
			f.mu.Unlock()
			continue
		}
		f.forget(ex)
		f.mu.Unlock()
		f.r.m.upstreamTime.Observe(time.Since(ex.sent).Seconds())
		out, recs = f.answer(ex, b, out, recs)
	}
}

// echoes reports whether b's question is exactly ex's.
func (ex *exchange) echoes(b []byte) bool {
	qend := 12 + len(ex.qname) + 4
	if binary.BigEndian.Uint16(b[4:]) != 1 || len(b) < qend {
		return false
	}
	for i, c := range b[12 : 12+len(ex.qname)] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != ex.qname[i] {
			return false
		}
	}
	return binary.BigEndian.Uint16(b[qend-4:]) == ex.qtype && binary.BigEndian.Uint16(b[qend-2:]) == dns.ClassINET
}

// forget removes ex from the maps. f.mu is held.
func (f *forwarder) forget(ex *exchange) {
	delete(ex.sock.pending, ex.id)
	if ex.sock.retired && len(ex.sock.pending) == 0 {
		ex.sock.conn.Close() // its reader stops
	}
	if f.inflight[ex.key] == ex {
		delete(f.inflight, ex.key)
	}
}

// answer sends the upstream answer b to every waiter of ex, or hands them
// to the ordinary path when b is not one this path can pass on.
func (f *forwarder) answer(ex *exchange, b []byte, out []byte, recs []record) ([]byte, []record) {
	qend := 12 + len(ex.qname) + 4
	plan, ok := planAnswer(b, qend, recs)
	if !ok || !plan.prefix {
		f.r.m.fwdFallbacks.WithLabelValues("answer").Inc()
		f.handOver(ex, "")
		return out, plan.recs
	}
	now := time.Now()
	for i, w := range ex.waiters {
		out = clientAnswer(out[:0], w.pkt, &w.q, b, &plan, qend)
		if len(out) > w.q.size {
			f.r.m.fwdFallbacks.WithLabelValues("size").Inc()
			go f.r.slowUDP(w.conn, w.addr, w.pkt, w.q, true, w.start, "")
			continue
		}
		if i == 0 {
			// Cached before it is sent: the client's next question may
			// be this one again.
			f.r.cache.store(w.q.key(ex.key.flags&packedRouted != 0), append([]byte(nil), out...), now)
		}
		w.conn.WriteToUDPAddrPort(out, w.addr)
		f.r.m.count(w.result, time.Since(w.start))
	}
	return out, plan.recs
}

// claim takes ex out of the maps, if nothing else has: only the claimer
// answers its waiters.
func (f *forwarder) claim(ex *exchange) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ex.sock.pending[ex.id] != ex {
		return false
	}
	f.forget(ex)
	return true
}

// handOver sends every waiter of a claimed ex to the ordinary path, which
// does not ask skip again (an upstream that did not answer in time).
func (f *forwarder) handOver(ex *exchange, skip string) {
	for _, w := range ex.waiters {
		go f.r.slowUDP(w.conn, w.addr, w.pkt, w.q, true, w.start, skip)
	}
}

// expire hands queries unanswered after the upstream timeout to the
// ordinary path, which tries the other upstreams and answers SERVFAIL if
// none answers. It runs until the forwarder is closed.
func (f *forwarder) expire(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return
		}
		var late []*exchange
		for _, ex := range f.inflight {
			if time.Since(ex.sent) > f.r.opt.UpstreamTimeout {
				late = append(late, ex)
			}
		}
		f.mu.Unlock()
		for _, ex := range late {
			f.fail(ex, "timeout")
		}
	}
}

// fail gives up on ex's upstream: the group moves on to its next
// upstream (unless another query already moved it), and the waiters go to
// the ordinary path, which starts there.
func (f *forwarder) fail(ex *exchange, reason string) {
	if !f.claim(ex) {
		return
	}
	f.r.m.fwdFallbacks.WithLabelValues(reason).Inc()
	f.r.m.upstreamErrs.WithLabelValues(ex.g.addrs[ex.idx]).Inc()
	ex.g.good.CompareAndSwap(int32(ex.idx), int32((ex.idx+1)%len(ex.g.addrs)))
	f.handOver(ex, ex.g.addrs[ex.idx])
}

// close stops the forwarder and closes its sockets.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, p := range f.pools {
		for _, s := range p.socks {
			s.conn.Close()
		}
	}
}
