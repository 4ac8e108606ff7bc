package resolver

import (
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// step is the link of the chain that answers a query.
type step uint8

const (
	stepLocal    step = iota // localhost and the loopback reverse names (RFC 6761)
	stepRefuse               // RD clear: a forwarder only recurses
	stepNotReady             // no verified list yet, and nothing to forward to
	stepBlock                // the list does not allow the name (enforce mode)
	stepANY                  // ANY for an allowed name: the minimal answer (RFC 8482)
	stepCache                // a fresh answer in the cache
	stepForward              // ask the verdict's upstreams
)

// route is the resolver's chain: the one place where the way of every
// query is decided, for the UDP fast path (fast) and the ordinary path
// (answer) alike. Each path first checks the packet in its own form
// (parseQuery; check) and afterwards writes the answer in its own form
// (bytes; a dns.Msg), but between the two the links are these, in this
// order:
//
//  1. refuse/validate: the packet is a query we serve (done by the
//     caller, above), and it asks for recursion;
//  2. policy: decide gives the list's verdict on the name, and counts it
//     for usage reports (client: the asker). This is the one decision
//     point, where both paths pass: a per-decision hook belongs there;
//  3. local answers: localhost, no list yet, blocked, ANY;
//  4. cache: a fresh answer kept under key (the caller's key for the
//     question; packedRouted is added for routed names, cached apart);
//  5. forward: the verdict's upstream group (the forwarder).
//
// p is the list enforced (r.enforced()); name is the question name as the
// list sees it (policyName); rd is the query's RD bit; client is the
// asker (the zero Addr when the query was counted already). For a cached
// answer it also returns the time it was judged fresh at, to age its TTLs
// by: the clock is read only when the chain reaches the cache, so a
// blocked or local answer never pays for it.
func (r *Resolver) route(p *policy, name string, qtype uint16, rd bool, key packedKey, client netip.Addr) (step, verdict, *packedEntry, time.Time) {
	// 2. Policy.
	v := r.decide(p, name, client)
	// 1 (the part the decision does not override) and 3. Local answers.
	switch {
	case v.result == resultLocal:
		return stepLocal, v, nil, time.Time{}
	case !rd:
		return stepRefuse, verdict{result: resultRefused}, nil, time.Time{}
	case v.result == resultNotReady && v.g == nil:
		return stepNotReady, v, nil, time.Time{}
	case v.g == nil:
		return stepBlock, v, nil, time.Time{}
	case qtype == dns.TypeANY && v.result == resultAllowed:
		return stepANY, v, nil, time.Time{}
	}
	// 4. Cache.
	if v.routed {
		key.flags |= packedRouted
	}
	if e := r.cache.get(key); e != nil {
		if now := time.Now(); now.Before(e.expires) {
			return stepCache, v, e, now
		}
	}
	// 5. Forward.
	return stepForward, v, nil, time.Time{}
}

// verdict is the policy's decision for one query name.
type verdict struct {
	result string // the result label to count
	g      *group // the upstreams to ask; nil: answered here
	routed bool   // g is filtered_upstreams (whose answers are cached apart)
}

// decide is the policy, the one decision both paths take: where a query
// for name (lower case, dotted, no final dot; see policyName) goes, under
// the list p (nil: none verified yet). It counts the query for usage
// reports; client is the asker, the zero Addr when counted already.
func (r *Resolver) decide(p *policy, name string, client netip.Addr) verdict {
	if isLocal(name) {
		return verdict{result: resultLocal}
	}
	if p == nil {
		// Without a verified list, never allow everything.
		switch r.opt.Mode {
		case ModeRoute:
			return verdict{result: resultNotReady, g: r.fwd.filtered, routed: true}
		case ModeMonitor: // monitor never blocks
			return verdict{result: resultNotReady, g: r.fwd.up}
		}
		return verdict{result: resultNotReady}
	}
	i := p.matcher.Match(name)
	r.usage.count(p, i, name, client)
	switch {
	case i >= 0:
		return verdict{result: resultAllowed, g: r.fwd.up}
	case r.opt.Mode == ModeRoute:
		return verdict{result: resultRouted, g: r.fwd.filtered, routed: true}
	case r.opt.Mode == ModeMonitor:
		return verdict{result: resultWouldBlock, g: r.fwd.up}
	}
	return verdict{result: resultBlocked}
}

// policyName is the question name as the list sees it: its labels in
// lower case, dotted, without the final dot. A label holding anything a
// host name cannot (a dot, a space, any byte written escaped, such as
// "x\.github") becomes a single zero byte, which no pattern holds: it
// still counts as one label (so "*.example.org" covers it), but is never
// read as two ("x.github.com" is not "[x.github][com]").
func policyName(qname string) string {
	labels := dns.SplitDomainName(qname)
	for i, l := range labels {
		if strings.IndexByte(l, '\\') >= 0 {
			labels[i] = "\x00"
		} else {
			labels[i] = strings.ToLower(l)
		}
	}
	return strings.Join(labels, ".")
}

// ServeDNS answers one query. The policy applies to the query name only;
// an allowed name's answer is passed through, CNAME chain included.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	resp, result, _ := r.answer(req, "", clientAddr(w.RemoteAddr()))
	if resp != nil {
		r.write(w, req, resp)
	}
	r.m.count(result, time.Since(start))
}

// answer is the ordinary path: the response to req as route decides it,
// the result label to count and the verdict it followed. skip is an
// upstream already waited on in vain for this query; client is the asker
// (the zero Addr: the query was counted already, see decide).
func (r *Resolver) answer(req *dns.Msg, skip string, client netip.Addr) (*dns.Msg, string, verdict) {
	// 1. Refuse/validate: what is not a query we serve gets an error;
	// an answer gets nothing.
	if m := r.check(req); m != nil {
		return m, resultRefused, verdict{}
	}
	if req.Response {
		return nil, resultRefused, verdict{}
	}
	q := req.Question[0]
	name := policyName(q.Name)
	p := r.enforced()
	key := packedKey{name: strings.ToLower(q.Name), qtype: q.Qtype, flags: packedUpstream}
	do := false
	if opt := req.IsEdns0(); opt != nil && opt.Do() {
		do = true
		key.flags |= packedDO
	}
	st, v, e, now := r.route(p, name, q.Qtype, req.RecursionDesired, key, client)
	switch st {
	case stepLocal:
		return localAnswer(req, name), resultLocal, v
	case stepRefuse:
		return reply(req, dns.RcodeRefused, edeNotSupported, "recursion desired (RD) is required"), resultRefused, v
	case stepNotReady:
		return reply(req, dns.RcodeRefused, edeNotReady, r.notReadyText()), resultNotReady, v
	case stepBlock:
		return r.blocked(req, p), resultBlocked, v
	case stepANY:
		return anyAnswer(req), resultAllowed, v
	case stepCache:
		m := new(dns.Msg)
		if m.Unpack(e.appendAged(nil, now)) == nil {
			r.m.cacheHits.Inc()
			return r.fromUpstream(req, m), v.result, v
		}
	}
	if v.routed {
		key.flags |= packedRouted
	}
	m := r.forward(req, v, key, do, skip)
	if m.Rcode == dns.RcodeServerFailure {
		return m, resultServfail, v
	}
	return m, v.result, v
}

// check answers what is not a query this server serves, as Unbound does
// (flags included), or returns nil.
func (r *Resolver) check(req *dns.Msg) *dns.Msg {
	switch {
	case req.Response:
		return nil
	case req.Opcode == dns.OpcodeNotify:
		return reply(req, dns.RcodeRefused, edeNotSupported, "NOTIFY is not served")
	case req.Opcode != dns.OpcodeQuery:
		// UPDATE, IQUERY, STATUS and the rest are not ours to serve.
		return failure(req, dns.RcodeNotImplemented)
	case len(req.Question) != 1 || req.Truncated || !optPlaced(req):
		return failure(req, dns.RcodeFormatError)
	}
	q := req.Question[0]
	if q.Qtype == dns.TypeOPT {
		return failure(req, dns.RcodeFormatError) // a meta type, not a question
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		// RFC 6891 §6.1.3: BADVERS for an EDNS version we do not speak,
		// before anything else is done with the query.
		m := reply(req, dns.RcodeBadVers, 0, "")
		return m
	}
	switch {
	case q.Qclass != dns.ClassINET:
		return reply(req, dns.RcodeRefused, edeNotSupported, "only class IN is served")
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		m := failure(req, dns.RcodeRefused)
		m.Extra = append(m.Extra, edeMarker(edeNotSupported, "zone transfers are not served"))
		return m
	}
	return nil
}

// optPlaced reports whether req has at most one OPT record, in the
// additional section, owned by the root (RFC 6891 §6.1.1).
func optPlaced(req *dns.Msg) bool {
	n := 0
	for _, rr := range req.Answer {
		if rr.Header().Rrtype == dns.TypeOPT {
			return false
		}
	}
	for _, rr := range req.Ns {
		if rr.Header().Rrtype == dns.TypeOPT {
			return false
		}
	}
	for _, rr := range req.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
			if rr.Header().Name != "." {
				return false
			}
		}
	}
	return n <= 1
}

// forward is the ordinary path's link 5: the upstream group's answer,
// kept in the cache under key. Failure is SERVFAIL, quickly (the group's
// timeout bounds it): with EDE 22 or 23 when no upstream answered,
// without when one answered SERVFAIL itself.
func (r *Resolver) forward(req *dns.Msg, v verdict, key packedKey, do bool, skip string) *dns.Msg {
	r.m.cacheMisses.Inc()
	up, err := r.fwd.ask(v.g, req.Question[0], do, key, skip)
	if err != nil {
		code := uint16(edeNetworkError)
		if len(v.g.addrs) > 1 {
			code = edeNoReachable
		}
		return reply(req, dns.RcodeServerFailure, code, "no upstream answered")
	}
	if up.Rcode != dns.RcodeSuccess && up.Rcode != dns.RcodeNameError {
		// The upstream answered, with a failure of its own: SERVFAIL,
		// which says so without claiming a network error.
		return reply(req, dns.RcodeServerFailure, 0, "")
	}
	return r.fromUpstream(req, up)
}

// fast is the UDP fast path: it answers the packet b (parsed as q, which
// is link 1) into out, as route decides. When it cannot, it returns nil,
// and, for a name to forward that is not in the cache, the result to
// count and the upstream group to ask (nil: the ordinary path answers).
func (r *Resolver) fast(b []byte, q *wireQuery, out []byte) ([]byte, string, *group) {
	p := r.enforced()
	if p == nil {
		return nil, "", nil // not ready: the ordinary path says why
	}
	st, v, e, now := r.route(p, unsafe.String(unsafe.SliceData(q.name), len(q.name)), q.qtype, true, q.key(false), q.client)
	switch st {
	case stepBlock:
		if out = r.blockedWire(b, q, p, out); out == nil {
			return nil, "", nil
		}
		return out, v.result, nil
	case stepCache:
		if len(e.wire) > q.size || e.qend != q.qend {
			return nil, v.result, v.g // kept for another buffer size: ask again
		}
		out = e.appendAged(out, now)
		copy(out[:2], b[:2])               // the client's ID
		copy(out[12:q.qend], b[12:q.qend]) // and its spelling of the name
		out[2] = out[2]&^0x01 | b[2]&0x01  // RD as asked
		out[3] = out[3]&^0x10 | b[3]&0x10  // CD as asked (RFC 4035 §3.2.2)
		r.m.cacheHits.Inc()
		return out, v.result, nil
	case stepForward:
		return nil, v.result, v.g
	}
	return nil, "", nil // local names and ANY: the ordinary path
}
