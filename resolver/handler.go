package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Extended DNS Error codes (RFC 8914) used here.
const (
	edeBlocked       = 15
	edeNotReady      = 14
	edeNotSupported  = 21
	edeNoReachable   = 22
	edeNetworkError  = 23
	blockedTTL       = 60
	defaultClientUDP = 512
)

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
			return verdict{result: resultNotReady, g: r.filtered, routed: true}
		case ModeMonitor: // monitor never blocks
			return verdict{result: resultNotReady, g: r.up}
		}
		return verdict{result: resultNotReady}
	}
	i := p.matcher.Match(name)
	r.usage.count(p, i, name, client)
	switch {
	case i >= 0:
		return verdict{result: resultAllowed, g: r.up}
	case r.opt.Mode == ModeRoute:
		return verdict{result: resultRouted, g: r.filtered, routed: true}
	case r.opt.Mode == ModeMonitor:
		return verdict{result: resultWouldBlock, g: r.up}
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

// answer decides the response to req, the result label to count and the
// verdict it followed. Checks first (what is not a query we serve gets an
// error), then the policy, then the cache and the upstreams. skip is an
// upstream already waited on in vain for this query; client is the asker
// (the zero Addr: the query was counted already, see decide).
func (r *Resolver) answer(req *dns.Msg, skip string, client netip.Addr) (*dns.Msg, string, verdict) {
	var none verdict
	if m := r.check(req); m != nil {
		return m, resultRefused, none
	}
	if req.Response {
		return nil, resultRefused, none // never answer an answer
	}
	q := req.Question[0]
	name := policyName(q.Name)
	p := r.enforced()
	v := r.decide(p, name, client)
	switch {
	case v.result == resultLocal:
		return localAnswer(req, name), resultLocal, v
	case !req.RecursionDesired:
		// A forwarder only recurses; it has no data of its own to give a
		// non-recursive query (Unbound does the same).
		return reply(req, dns.RcodeRefused, edeNotSupported, "recursion desired (RD) is required"), resultRefused, none
	case v.result == resultNotReady && v.g == nil:
		return reply(req, dns.RcodeRefused, edeNotReady, r.notReadyText()), resultNotReady, v
	case v.g == nil:
		return r.blocked(req, p), resultBlocked, v
	case q.Qtype == dns.TypeANY && v.result == resultAllowed:
		return anyAnswer(req), resultAllowed, v
	}
	m := r.forward(req, v, skip)
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

// failure answers a query that cannot be served at all: the rcode, the
// question echoed, RD as asked, and no RA (as Unbound answers).
func failure(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode, m.Rcode = req.Id, true, req.Opcode, rcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled && req.Opcode == dns.OpcodeQuery
	m.Question = req.Question
	return m
}

// Local answers (RFC 6761 §6.3): every name at or under localhost is the
// loopback host, and the loopback addresses map back to "localhost.",
// without asking anyone.
var localZones = []string{"localhost", "127.in-addr.arpa", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"}

// isLocal reports whether name (as policyName gives it) is answered here.
func isLocal(name string) bool {
	for _, z := range localZones {
		if name == z || (len(name) > len(z) && name[len(name)-len(z)-1] == '.' && name[len(name)-len(z):] == z) {
			return true
		}
	}
	return false
}

// localAnswer answers a local name authoritatively, as Unbound's default
// local zones do: A 127.0.0.1 and AAAA ::1 for localhost and every name
// under it, PTR localhost. for 127.0.0.1 and ::1; NODATA for other types
// and NXDOMAIN for other reverse names, with the zone's SOA.
func localAnswer(req *dns.Msg, name string) *dns.Msg {
	q := req.Question[0]
	zone := "localhost"
	for _, z := range localZones {
		if name == z || strings.HasSuffix(name, "."+z) {
			zone = z
		}
	}
	m := reply(req, dns.RcodeSuccess, 0, "")
	m.Authoritative = true
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 10800}
	switch {
	case zone == "localhost" && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)}}
	case zone == "localhost" && q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback}}
	case name == "1.0.0.127.in-addr.arpa" || name == "1."+localZones[2]:
		if q.Qtype == dns.TypePTR {
			m.Answer = []dns.RR{&dns.PTR{Hdr: hdr, Ptr: "localhost."}}
		}
	case zone != "localhost" && name != zone:
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone + ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 10800},
			Ns: "localhost.", Mbox: "nobody.invalid.", Serial: 1, Refresh: 3600, Retry: 1200, Expire: 604800, Minttl: 10800}}
	}
	return m
}

// blocked is enforce mode's local answer, with EDE 15 naming the scope,
// the version and where to ask for the tool.
func (r *Resolver) blocked(req *dns.Msg, p *policy) *dns.Msg {
	text := fmt.Sprintf("blocked by the cross-government allow-list (scope %s, version %d); ask for this tool at %s",
		p.scope, p.version, r.opt.RequestURL)
	q := req.Question[0]
	switch r.opt.Block {
	case BlockRefused:
		return reply(req, dns.RcodeRefused, edeBlocked, text)
	case BlockSinkhole:
		m := reply(req, dns.RcodeSuccess, edeBlocked, text)
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: blockedTTL}
		switch q.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: r.opt.SinkholeV4}}
		case dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: r.opt.SinkholeV6}}
		default:
			m.Ns = []dns.RR{negativeSOA(p.version)}
		}
		return m
	default:
		m := reply(req, dns.RcodeNameError, edeBlocked, text)
		m.Ns = []dns.RR{negativeSOA(p.version)}
		return m
	}
}

// negativeSOA lets clients cache a blocked answer briefly (RFC 2308); its
// serial is the list version.
func negativeSOA(version int64) dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: blockedTTL},
		Ns: "allowlist.invalid.", Mbox: "hostmaster.allowlist.invalid.", Serial: uint32(version),
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: blockedTTL}
}

// anyAnswer answers ANY minimally, as RFC 8482 recommends.
func anyAnswer(req *dns.Msg) *dns.Msg {
	m := reply(req, dns.RcodeSuccess, 0, "")
	m.Answer = []dns.RR{&dns.HINFO{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600}, Cpu: "RFC8482"}}
	return m
}

// reply makes a local answer; the EDE option is added in write when the
// client speaks EDNS.
func reply(req *dns.Msg, rcode int, ede uint16, text string) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	m.RecursionDesired = req.RecursionDesired
	if ede != 0 {
		m.Extra = append(m.Extra, edeMarker(ede, text))
	}
	return m
}

// edeMarker carries an EDE through to write, which moves it into the OPT
// record or drops it for a client without EDNS.
func edeMarker(code uint16, text string) dns.RR {
	o := new(dns.OPT)
	o.Hdr.Name, o.Hdr.Rrtype = ".", dns.TypeOPT
	o.Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: code, ExtraText: text}}
	return o
}

// forward answers from the cache or the upstream group. Failure is
// SERVFAIL, quickly (the group's timeout bounds it): with EDE 22 or 23
// when no upstream answered, without when one answered SERVFAIL itself.
func (r *Resolver) forward(req *dns.Msg, v verdict, skip string) *dns.Msg {
	q := req.Question[0]
	flags := uint8(packedUpstream)
	do := false
	if opt := req.IsEdns0(); opt != nil && opt.Do() {
		do = true
		flags |= packedDO
	}
	if v.routed {
		flags |= packedRouted
	}
	key := packedKey{name: strings.ToLower(q.Name), qtype: q.Qtype, flags: flags}
	now := time.Now()
	if e := r.cache.get(key); e != nil && now.Before(e.expires) {
		m := new(dns.Msg)
		if m.Unpack(e.appendAged(nil, now)) == nil {
			r.m.cacheHits.Inc()
			return r.fromUpstream(req, m)
		}
	}
	r.m.cacheMisses.Inc()
	// Identical questions in flight share one upstream exchange: fewer
	// upstream queries, and no window for a spoofer to race many of them
	// (the birthday attack on DNS forwarders).
	g := v.g
	res, err, _ := r.flight.Do(fmt.Sprintf("%s|%d|%d|%s", key.name, key.qtype, key.flags, skip), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout*time.Duration(max(1, len(g.addrs)))+time.Second)
		defer cancel()
		resp, err := g.exchange(ctx, q, do, skip)
		if err != nil {
			return nil, err
		}
		resp = scrub(resp)
		if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
			resp.Compress = true
			if wire, err := resp.Pack(); err == nil {
				r.cache.store(key, wire, now)
			}
		}
		return resp, nil
	})
	if err != nil {
		code := uint16(edeNetworkError)
		if len(g.addrs) > 1 {
			code = edeNoReachable
		}
		return reply(req, dns.RcodeServerFailure, code, "no upstream answered")
	}
	up := res.(*dns.Msg)
	if up.Rcode != dns.RcodeSuccess && up.Rcode != dns.RcodeNameError {
		// The upstream answered, with a failure of its own: SERVFAIL,
		// which says so without claiming a network error.
		return reply(req, dns.RcodeServerFailure, 0, "")
	}
	return r.fromUpstream(req, up)
}

// scrub keeps of an upstream answer what planAnswer keeps: the records
// about the question, none about other names, no OPT. An answer
// planAnswer refuses (truncated even over TCP, an unusual rcode, not
// well formed) keeps only its rcode.
func scrub(m *dns.Msg) *dns.Msg {
	out := m.Copy()
	out.Answer, out.Ns, out.Extra = nil, nil, nil
	out.Compress = false
	wire, err := m.Pack()
	if err != nil || len(m.Question) != 1 {
		return out
	}
	qend, ok := backwardName(wire, 12)
	if !ok {
		return out
	}
	plan, ok := planAnswer(wire, qend+4, nil)
	if !ok {
		return out
	}
	all := make([]dns.RR, 0, len(plan.recs))
	all = append(append(append(all, m.Answer...), m.Ns...), m.Extra...)
	if len(all) != len(plan.recs) {
		return out
	}
	for k, rec := range plan.recs {
		if !rec.keep {
			continue
		}
		switch rec.section {
		case 0:
			out.Answer = append(out.Answer, all[k])
		case 1:
			out.Ns = append(out.Ns, all[k])
		default:
			out.Extra = append(out.Extra, all[k])
		}
	}
	return out
}

// fromUpstream turns an upstream answer into the answer to req: the
// client's ID and question spelling, our flags, no upstream OPT (in any
// section: one misplaced among the answers is the upstream's error, not
// something to hand on).
func (r *Resolver) fromUpstream(req, up *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Rcode = up.Rcode
	m.Authoritative = false
	m.RecursionAvailable = true
	m.AuthenticatedData = up.AuthenticatedData
	m.Answer = withoutOPT(up.Answer)
	m.Ns = withoutOPT(up.Ns)
	m.Extra = withoutOPT(up.Extra)
	return m
}

func withOPTOnly(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// write finishes a response for this client: EDNS in kind (with any EDE),
// and no larger than the client can take over UDP (RFC 6891 §7).
func (r *Resolver) write(w dns.ResponseWriter, req, m *dns.Msg) {
	var ede []dns.EDNS0
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			ede = append(ede, o.Option...)
			continue
		}
		extra = append(extra, rr)
	}
	m.Extra = extra
	m.Compress = true
	size := defaultClientUDP
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), defaultClientUDP)
		m.SetEdns0(upstreamSize, opt.Do())
		o := m.IsEdns0()
		o.Option = append(o.Option, ede...)
	}
	limit := dns.MaxMsgSize
	if w.LocalAddr().Network() == "udp" {
		// Never more than 1232 bytes over UDP, whatever the client
		// claims: larger answers go over TCP (TC set), which keeps the
		// resolver useless for amplification.
		limit = min(size, upstreamSize)
	}
	if m.Len() > limit {
		// Too large: TC and no records at all, as Unbound answers (a
		// part of an RRset is of no use, RFC 2181 §9); the client asks
		// again over TCP.
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
		m.Extra = withOPTOnly(m.Extra)
	}
	if err := w.WriteMsg(m); err != nil {
		r.log.Debug("write answer", "err", err)
	}
}
