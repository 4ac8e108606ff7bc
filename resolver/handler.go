package resolver

import (
	"context"
	"fmt"
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
// an allowed name's answer is passed through whole, CNAME chains included.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	resp, result := r.answer(req)
	if resp != nil {
		r.write(w, req, resp)
	}
	r.m.count(result, time.Since(start))
}

// answer decides the response to req and the result label to count.
func (r *Resolver) answer(req *dns.Msg) (*dns.Msg, string) {
	if req.Response {
		return nil, resultRefused // never answer an answer
	}
	if req.Opcode != dns.OpcodeQuery {
		// NOTIFY, UPDATE and the rest are not ours to serve.
		return reply(req, dns.RcodeNotImplemented, edeNotSupported, "only standard queries are served"), resultRefused
	}
	if len(req.Question) != 1 {
		return reply(req, dns.RcodeFormatError, 0, ""), resultRefused
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		return reply(req, dns.RcodeRefused, edeNotSupported, "only class IN is served"), resultRefused
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		return reply(req, dns.RcodeRefused, edeNotSupported, "zone transfers are not served"), resultRefused
	}
	p := r.enforced()
	if p == nil {
		// Without a verified list, never allow everything.
		switch r.opt.Mode {
		case ModeEnforce:
			return reply(req, dns.RcodeRefused, edeNotReady, r.notReadyText()), resultNotReady
		case ModeRoute:
			return r.forward(req, r.filtered, true), resultNotReady
		default: // monitor never blocks
			return r.forward(req, r.up, false), resultNotReady
		}
	}
	name := strings.TrimSuffix(q.Name, ".")
	allowed := p.matcher.Match(name) >= 0
	switch {
	case allowed:
		if q.Qtype == dns.TypeANY {
			return anyAnswer(req), resultAllowed
		}
		return r.forward(req, r.up, false), resultAllowed
	case r.opt.Mode == ModeRoute:
		return r.forward(req, r.filtered, true), resultRouted
	case r.opt.Mode == ModeMonitor:
		return r.forward(req, r.up, false), resultWouldBlock
	default:
		return r.blocked(req, p), resultBlocked
	}
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
// SERVFAIL with an EDE, quickly: the group's timeout bounds it.
func (r *Resolver) forward(req *dns.Msg, g *group, routed bool) *dns.Msg {
	q := req.Question[0]
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	key := keyOf(q, do, routed)
	now := time.Now()
	if m := r.cache.get(key, now); m != nil {
		r.m.cacheHits.Inc()
		return r.fromUpstream(req, m)
	}
	r.m.cacheMisses.Inc()
	// Identical questions in flight share one upstream exchange: fewer
	// upstream queries, and no window for a spoofer to race many of them
	// (the birthday attack on DNS forwarders).
	v, err, _ := r.flight.Do(flightKey(key), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout*time.Duration(max(1, len(g.addrs)))+time.Second)
		defer cancel()
		resp, err := g.exchange(ctx, q, do)
		if err == nil {
			r.cache.put(key, resp, now)
		}
		return resp, err
	})
	if err != nil {
		code := uint16(edeNetworkError)
		if len(g.addrs) > 1 {
			code = edeNoReachable
		}
		return reply(req, dns.RcodeServerFailure, code, "no upstream answered")
	}
	return r.fromUpstream(req, v.(*dns.Msg))
}

func flightKey(k cacheKey) string {
	return fmt.Sprintf("%s|%d|%d|%t|%t", k.name, k.qtype, k.class, k.do, k.routed)
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
		if opt.Version() != 0 {
			// RFC 6891 §6.1.3: BADVERS for an EDNS version we do not speak.
			m = new(dns.Msg)
			m.SetRcode(req, dns.RcodeBadVers)
		}
		size = max(int(opt.UDPSize()), defaultClientUDP)
		m.SetEdns0(upstreamSize, opt.Do())
		o := m.IsEdns0()
		o.Option = append(o.Option, ede...)
	}
	if w.LocalAddr().Network() == "udp" {
		// Never more than 1232 bytes over UDP, whatever the client
		// claims: larger answers go over TCP (TC set), which keeps the
		// resolver useless for amplification.
		m.Truncate(min(size, upstreamSize))
	} else {
		m.Truncate(dns.MaxMsgSize)
	}
	if err := w.WriteMsg(m); err != nil {
		r.log.Debug("write answer", "err", err)
	}
}
