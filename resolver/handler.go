package resolver

import (
	"fmt"
	"net"
	"net/url"
	"strings"

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

// blockedText is the EDE 15 text of a blocked answer up to the name: it
// names the scope and the version, and where to ask. With the registry's
// own pages (no request_url of the resolver's own) it ends in the check
// page's address, to which the blocked name is added (withName): that page
// says why the name is not on the list (not proposed, awaiting decisions,
// objected to, suspended, approval expired) and how to ask for it. The
// list itself does not carry those reasons.
func (r *Resolver) blockedText(p *policy) (text string, withName bool) {
	head := fmt.Sprintf("blocked by the cross-government allow-list (scope %s, version %d); ", p.scope, p.version)
	if r.checkURL != "" {
		return head + "why, and how to ask for it: " + r.checkURL, true
	}
	return head + "ask for this tool at " + r.opt.RequestURL, false
}

// blocked is enforce mode's local answer, with EDE 15 naming the scope,
// the version and where to ask for the tool.
func (r *Resolver) blocked(req *dns.Msg, p *policy) *dns.Msg {
	q := req.Question[0]
	text, withName := r.blockedText(p)
	if withName {
		text += url.QueryEscape(strings.ToLower(strings.TrimSuffix(q.Name, ".")))
	}
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
		if o := m.IsEdns0(); o != nil && m.Len() > limit {
			// Still too large: the EDE text (a blocked name's is as long
			// as the name) is left to the answer over TCP; its code stays.
			for i, opt := range o.Option {
				if e, ok := opt.(*dns.EDNS0_EDE); ok {
					o.Option[i] = &dns.EDNS0_EDE{InfoCode: e.InfoCode}
				}
			}
		}
	}
	if err := w.WriteMsg(m); err != nil {
		r.log.Debug("write answer", "err", err)
	}
}
