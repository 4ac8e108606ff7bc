package resolver

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// DNS messages as bytes: every walk over a packet's bytes is in this file,
// so each rule is written once. Queries: parseQuery (what the fast path
// takes), formErr. Upstream answers: planAnswer (which records a client
// gets; the ordinary path uses it too, to scrub what miekg unpacked),
// wireTTL (the one TTL rule: how long an answer is cached, for both paths)
// and ttlOffsets. Answers we write: appendOPT (our OPT record, upstream
// and to clients) and clientAnswer. Their fuzz targets, FuzzParseQuery and
// FuzzUpstreamAnswer (wire_test.go), hold them to miekg/dns.

// record is where one record of a message lies, and whether the client
// gets it.
type record struct {
	start, end int // the record's bytes
	section    int // 0 answer, 1 authority, 2 additional
	keep       bool
}

// answerPlan is what a client gets of an upstream answer.
type answerPlan struct {
	recs   []record
	counts [3]int // records kept per section
	// prefix: the kept records are the first ones, so the client's
	// records are b[qend:prefixEnd] with no pointer into a dropped one.
	prefix    bool
	prefixEnd int
}

// planAnswer checks that b (whose question ends at qend) is an answer a
// client may be given, and decides which of its records it keeps. It
// fails for an answer that is truncated, not for a standard query, not
// NOERROR or NXDOMAIN, or not well formed (a record cut short, a
// compression pointer forward or into the header).
//
// The records kept are those about the question (RFC 2181 §5.4.1, and
// minimal responses as Unbound gives them): in the answer section, the
// records owned by the question name or by a name its CNAME chain leads
// to (a DNAME above one of them too); the authority section only for a
// negative answer (NXDOMAIN, or no record for the chain's last name), and
// then only the SOA of a zone above that name, and the NSEC, NSEC3 and
// RRSIG records in that zone that prove the denial; no additional
// records, and never the upstream's OPT. Anything else the upstream
// sent (an address for another name, a stray NS and its glue) is
// dropped: a forwarder must not hand on records its question did not ask
// for, least of all for names the list blocks.
func planAnswer(b []byte, qend int, recs []record) (answerPlan, bool) {
	p := answerPlan{recs: recs[:0]}
	if len(b) < 12 || b[2]&0x02 != 0 || (b[2]>>3)&0xF != dns.OpcodeQuery {
		return p, false // truncated, or not a query's answer
	}
	rcode := b[3] & 0x0F
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		return p, false
	}
	var ok bool
	if p.recs, ok = splitRecords(b, qend, p.recs); !ok {
		return p, false
	}
	// The chain: the question name, then each CNAME target in turn.
	var bufs [8][255]byte
	chain, links, ok := cnameChain(b, p.recs, &bufs)
	if !ok {
		return p, false
	}
	answered := keepChain(b, p.recs, chain[:links])
	if answered && rcode == dns.RcodeSuccess {
		keepProof(b, p.recs, chain[0], chain[links-1])
	}
	if rcode == dns.RcodeNameError || !answered {
		keepDenial(b, p.recs, chain[links-1])
	}
	p.prefix, p.prefixEnd = true, qend
	dropped := false
	for _, r := range p.recs {
		if !r.keep {
			dropped = true
			continue
		}
		p.counts[r.section]++
		if dropped {
			p.prefix = false
		}
		p.prefixEnd = r.end
	}
	return p, true
}

// splitRecords appends to recs where each record of b after the question
// (which ends at qend) lies, and fails unless they fill b exactly, every
// name in them well formed.
func splitRecords(b []byte, qend int, recs []record) ([]record, bool) {
	an, ns, ar := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))
	i := qend
	for n := 0; n < an+ns+ar; n++ {
		start := i
		var ok bool
		if i, ok = backwardName(b, i); !ok || i+10 > len(b) {
			return recs, false
		}
		typ := binary.BigEndian.Uint16(b[i:])
		end := i + 10 + int(binary.BigEndian.Uint16(b[i+8:]))
		if end > len(b) || !rdataNamesBackward(b[:end], typ, i+10) {
			return recs, false
		}
		section := 0
		if n >= an+ns {
			section = 2
		} else if n >= an {
			section = 1
		}
		recs = append(recs, record{start: start, end: end, section: section})
		i = end
	}
	return recs, i == len(b)
}

// cnameChain returns the question name and each CNAME target in turn (at
// most 8 names, read into bufs), and how many there are.
func cnameChain(b []byte, recs []record, bufs *[8][255]byte) (chain [8][]byte, links int, ok bool) {
	qname, _, ok := nameAt(b, 12, bufs[0][:0])
	if !ok {
		return chain, 0, false
	}
	chain[0] = qname
	links = 1
	for grown := true; grown && links < len(chain); {
		grown = false
		for _, r := range recs {
			if r.section != 0 || rrType(b, r) != dns.TypeCNAME || !ownerIn(b, r, chain[:links]) {
				continue
			}
			target, _, ok := nameAt(b, rdataAt(b, r), bufs[links][:0])
			if !ok {
				return chain, 0, false
			}
			if !contains(chain[:links], target) && links < len(chain) {
				chain[links] = target
				links++
				grown = true
			}
		}
	}
	return chain, links, true
}

// keepChain keeps the answer records owned by a name of the chain (or a
// DNAME above one), and reports whether the chain's last name has an
// answer of its own (a record other than a CNAME or a signature).
func keepChain(b []byte, recs []record, chain [][]byte) bool {
	last := chain[len(chain)-1]
	var owner [255]byte
	answered := false
	for k := range recs {
		r := &recs[k]
		if r.section != 0 {
			continue
		}
		typ := rrType(b, *r)
		o, _, _ := nameAt(b, r.start, owner[:0])
		switch {
		case typ == dns.TypeOPT:
		case contains(chain, o):
			r.keep = true
			if bytes.Equal(o, last) && typ != dns.TypeCNAME && typ != dns.TypeRRSIG {
				answered = true
			}
		case typ == dns.TypeDNAME:
			for _, c := range chain {
				if below(c, o) {
					r.keep = true
				}
			}
		}
	}
	return answered
}

// keepProof keeps, for a positive answer, what goes with it: for NS, the
// addresses of the name servers inside the zone asked about (glue); for
// an answer expanded from a wildcard, the NSEC or NSEC3 records (and
// their signatures) in the signer's zone proving no closer name.
func keepProof(b []byte, recs []record, qname, last []byte) {
	var owner, tbuf, sbuf [255]byte
	for k := range recs {
		r := &recs[k]
		typ := rrType(b, *r)
		switch {
		case r.section == 2 && (typ == dns.TypeA || typ == dns.TypeAAAA) && rrType(b, recs[0]) == dns.TypeNS:
			o, _, _ := nameAt(b, r.start, owner[:0])
			if !below(o, qname) {
				continue
			}
			for _, ns := range recs {
				if ns.section == 0 && ns.keep && rrType(b, ns) == dns.TypeNS {
					if t, _, ok := nameAt(b, rdataAt(b, ns), tbuf[:0]); ok && bytes.Equal(t, o) {
						r.keep = true
					}
				}
			}
		case r.section == 1 && (typ == dns.TypeNSEC || typ == dns.TypeNSEC3 || typ == dns.TypeRRSIG):
			if typ == dns.TypeRRSIG {
				if at := rdataAt(b, *r); at+2 > r.end {
					continue
				} else if c := binary.BigEndian.Uint16(b[at:]); c != dns.TypeNSEC && c != dns.TypeNSEC3 {
					continue
				}
			}
			// The zone: the signer of an answer signature.
			o, _, _ := nameAt(b, r.start, owner[:0])
			for _, sig := range recs {
				if sig.section != 0 || !sig.keep || rrType(b, sig) != dns.TypeRRSIG || rdataAt(b, sig)+18 > sig.end {
					continue
				}
				if signer, _, ok := nameAt(b, rdataAt(b, sig)+18, sbuf[:0]); ok && below(last, signer) && below(o, signer) {
					r.keep = true
				}
			}
		}
	}
}

// keepDenial keeps, for a negative answer, the SOA of the zone that holds
// the last name, and the proof of denial in that zone.
func keepDenial(b []byte, recs []record, last []byte) {
	var zone []byte
	var zbuf, owner [255]byte
	for _, r := range recs {
		if r.section == 1 && rrType(b, r) == dns.TypeSOA {
			o, _, _ := nameAt(b, r.start, zbuf[:0])
			if below(last, o) {
				zone = o
				break
			}
		}
	}
	if zone == nil {
		return
	}
	for k := range recs {
		r := &recs[k]
		if r.section != 1 {
			continue
		}
		switch rrType(b, *r) {
		case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
			o, _, _ := nameAt(b, r.start, owner[:0])
			r.keep = below(o, zone)
		}
	}
}

func rrType(b []byte, r record) uint16 {
	i, _ := backwardName(b, r.start)
	return binary.BigEndian.Uint16(b[i:])
}

func rdataAt(b []byte, r record) int {
	i, _ := backwardName(b, r.start)
	return i + 10
}

func ownerIn(b []byte, r record, names [][]byte) bool {
	var buf [255]byte
	o, _, ok := nameAt(b, r.start, buf[:0])
	return ok && contains(names, o)
}

func contains(names [][]byte, n []byte) bool {
	for _, x := range names {
		if bytes.Equal(x, n) {
			return true
		}
	}
	return false
}

// below reports whether the wire name child is parent or under it,
// comparing whole labels (a label holding a dot is one label).
func below(child, parent []byte) bool {
	for i := 0; i < len(child); i += 1 + int(child[i]) {
		if bytes.Equal(child[i:], parent) {
			return true
		}
		if child[i] == 0 {
			break
		}
	}
	return false
}

// nameAt appends to dst the name at b[i], uncompressed and in lower case,
// and returns it and the offset after the name as it lies at i.
func nameAt(b []byte, i int, dst []byte) ([]byte, int, bool) {
	end := -1
	for n := 0; n < 128; n++ {
		if i >= len(b) {
			return dst, 0, false
		}
		l := int(b[i])
		switch {
		case l == 0:
			if end < 0 {
				end = i + 1
			}
			return append(dst, 0), end, true
		case l&0xC0 == 0xC0:
			if i+2 > len(b) {
				return dst, 0, false
			}
			if end < 0 {
				end = i + 2
			}
			i = int(binary.BigEndian.Uint16(b[i:]) & 0x3FFF)
		case l > 63 || i+1+l > len(b) || len(dst)+1+l > 254:
			return dst, 0, false
		default:
			dst = append(dst, byte(l))
			for _, c := range b[i+1 : i+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				dst = append(dst, c)
			}
			i += 1 + l
		}
	}
	return dst, 0, false
}

// backwardName returns the offset after the name at i, checking that every
// compression pointer in it points back into the question or records
// (offset 12 and on, before the pointer itself). A pointer into the header
// would read the bytes this path rewrites (the ID and flags) as a name.
func backwardName(b []byte, i int) (int, bool) {
	end := -1
	for n := 0; n < 128; n++ {
		if i >= len(b) {
			return 0, false
		}
		l := int(b[i])
		switch {
		case l == 0:
			if end < 0 {
				end = i + 1
			}
			return end, true
		case l&0xC0 == 0xC0:
			if i+2 > len(b) {
				return 0, false
			}
			target := int(binary.BigEndian.Uint16(b[i:]) & 0x3FFF)
			if target < 12 || target >= i {
				return 0, false
			}
			if end < 0 {
				end = i + 2
			}
			i = target
		case l > 63:
			return 0, false
		default:
			i += 1 + l
		}
	}
	return 0, false
}

// rdataNamesBackward checks the names inside the rdata (at b[at:]) of the
// types whose rdata holds compressible names (RFC 1035, 2163, 2782, 3597
// §4: only these may be compressed).
func rdataNamesBackward(b []byte, typ uint16, at int) bool {
	names := func(i int, count int) bool {
		for ; count > 0; count-- {
			var ok bool
			if i, ok = backwardName(b, i); !ok {
				return false
			}
		}
		return i <= len(b)
	}
	switch typ {
	case dns.TypeCNAME, dns.TypeNS, dns.TypePTR, dns.TypeMB, dns.TypeMD, dns.TypeMF, dns.TypeMG, dns.TypeMR, dns.TypeDNAME:
		return names(at, 1)
	case dns.TypeSOA, dns.TypeMINFO, dns.TypeRP:
		return names(at, 2)
	case dns.TypeMX, dns.TypeAFSDB, dns.TypeRT, dns.TypeKX:
		return at+2 <= len(b) && names(at+2, 1)
	case dns.TypeSRV:
		return at+6 <= len(b) && names(at+6, 1)
	case dns.TypePX:
		return at+2 <= len(b) && names(at+2, 2)
	}
	return true
}

// wireTTL is how long the answer b (question ending at qend) may be
// cached, the one rule for both paths: for NOERROR with answers, the
// smallest answer TTL (at most a day); for NXDOMAIN or NODATA, the
// smaller of the SOA's TTL and its MINIMUM (RFC 2308 §5, at most an
// hour); 0 (not cached) for truncated answers, other rcodes, and negative
// answers without a SOA.
func wireTTL(b []byte, qend int) time.Duration {
	if len(b) < 12 || b[2]&0x02 != 0 {
		return 0
	}
	an, ns := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:]))
	rcode := b[3] & 0x0F
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		return 0
	}
	i := qend
	least := ^uint32(0)
	for n := 0; n < an+ns; n++ {
		var ok bool
		if i, ok = backwardName(b, i); !ok || i+10 > len(b) {
			return 0
		}
		typ, ttl, rdlen := binary.BigEndian.Uint16(b[i:]), binary.BigEndian.Uint32(b[i+4:]), int(binary.BigEndian.Uint16(b[i+8:]))
		end := i + 10 + rdlen
		if end > len(b) {
			return 0
		}
		switch {
		case n < an:
			least = min(least, ttl)
		case rcode == dns.RcodeSuccess && an > 0:
			// the answer decides
		case typ == dns.TypeSOA && rdlen >= 20:
			return min(time.Duration(min(ttl, binary.BigEndian.Uint32(b[end-4:])))*time.Second, maxNegTTL)
		}
		i = end
	}
	if rcode == dns.RcodeSuccess && an > 0 {
		return min(time.Duration(least)*time.Second, maxTTL)
	}
	return 0
}

// ttlOffsets finds the TTL field of every record in a packed message,
// skipping the OPT record's, whose TTL field holds flags.
func ttlOffsets(b []byte) ([]uint16, int, bool) {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, 0, false
	}
	i, ok := backwardName(b, 12)
	if !ok || i+4 > len(b) {
		return nil, 0, false
	}
	i += 4
	qend := i
	n := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	var offs []uint16
	for ; n > 0; n-- {
		if i, ok = backwardName(b, i); !ok || i+10 > len(b) {
			return nil, 0, false
		}
		if binary.BigEndian.Uint16(b[i:]) != dns.TypeOPT {
			offs = append(offs, uint16(i+4))
		}
		i += 10 + int(binary.BigEndian.Uint16(b[i+8:]))
	}
	return offs, qend, i == len(b)
}

// wireQuery is what the fast path reads from a packet.
type wireQuery struct {
	name  []byte // lower case, dotted, no final dot
	qend  int    // end of the question
	qtype uint16
	edns  bool
	do    bool
	size  int // the client's UDP buffer
	// client is the asker's address (for usage counts, never kept).
	client netip.Addr
}

// parseQuery reads a plain query: RD set and TC clear, one question of
// letters, digits, hyphens and underscores in class IN, and at most an
// EDNS version 0 OPT record.
// Anything else returns false and takes the ordinary path.
func parseQuery(b []byte, name []byte) (wireQuery, bool) {
	q := wireQuery{size: defaultClientUDP}
	// A query (QR clear), standard, not truncated, recursion desired.
	if len(b) < 17 || b[2]&0x80 != 0 || (b[2]>>3)&0xF != dns.OpcodeQuery || b[2]&0x03 != 0x01 ||
		binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return q, false
	}
	ar := binary.BigEndian.Uint16(b[10:])
	if ar > 1 {
		return q, false
	}
	i := 12
	name = name[:0]
	for {
		if i >= len(b) {
			return q, false
		}
		l := int(b[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(b) || len(name)+l+1 > 254 {
			return q, false
		}
		if len(name) > 0 {
			name = append(name, '.')
		}
		for _, c := range b[i : i+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return q, false
			}
			name = append(name, c)
		}
		i += l
	}
	if len(name) == 0 || i+4 > len(b) {
		return q, false
	}
	q.qtype = binary.BigEndian.Uint16(b[i:])
	if binary.BigEndian.Uint16(b[i+2:]) != dns.ClassINET {
		return q, false
	}
	switch q.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return q, false
	}
	i += 4
	q.qend = i
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = ext-rcode,
		// version, flags; options are allowed but not interpreted.
		if i+11 > len(b) || b[i] != 0 || binary.BigEndian.Uint16(b[i+1:]) != dns.TypeOPT || b[i+6] != 0 {
			return q, false
		}
		q.edns = true
		q.size = max(int(binary.BigEndian.Uint16(b[i+3:])), defaultClientUDP)
		q.do = b[i+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(b[i+9:]))
		i += 11
		if !optionsFramed(b[i:min(i+rdlen, len(b))], rdlen) {
			return q, false // FORMERR, from the ordinary path
		}
		i += rdlen
	}
	if i != len(b) {
		return q, false
	}
	q.size = min(q.size, upstreamSize)
	q.name = name
	return q, true
}

// optionsFramed reports whether rdata, which should be rdlen bytes long,
// is a sequence of EDNS options (code, length, data) that fills it
// exactly, each one whose content any length of is valid: NSID, COOKIE
// (what stub resolvers and dig send) and PADDING. Any other option
// (client subnet, keepalive, ...) has rules of its own, which the ordinary
// path applies.
func optionsFramed(rdata []byte, rdlen int) bool {
	if len(rdata) != rdlen {
		return false
	}
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return false
		}
		switch binary.BigEndian.Uint16(rdata) {
		case dns.EDNS0NSID, dns.EDNS0COOKIE, dns.EDNS0PADDING:
		default:
			return false
		}
		n := 4 + int(binary.BigEndian.Uint16(rdata[2:]))
		if n > len(rdata) {
			return false
		}
		rdata = rdata[n:]
	}
	return true
}

func (q *wireQuery) key(routed bool) packedKey {
	var f uint8
	if q.edns {
		f |= packedEDNS
	}
	if q.do {
		f |= packedDO
	}
	if routed {
		f |= packedRouted
	}
	return packedKey{name: unsafe.String(unsafe.SliceData(q.name), len(q.name)), qtype: q.qtype, flags: f}
}

// formErr is the FORMERR answer to a packet that does not parse, when its
// header at least says it is a query: the ID, opcode and RD echoed.
func formErr(pkt []byte) []byte {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 {
		return nil
	}
	var h dns.Msg
	h.Id = binary.BigEndian.Uint16(pkt)
	h.Response, h.Rcode = true, dns.RcodeFormatError
	h.Opcode, h.RecursionDesired = int(pkt[2]>>3)&0xF, pkt[2]&0x01 != 0
	b, err := h.Pack()
	if err != nil {
		return nil
	}
	return b
}

// appendOPT appends our OPT record: the root name (one zero byte), type
// 41, class = our buffer size, TTL = extended rcode 0, version 0 and the
// DO bit, no options. Upstream queries and fast-path answers carry it.
func appendOPT(b []byte, do bool) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	b = append(b, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT&0xff))
	b = binary.BigEndian.AppendUint16(b, upstreamSize)
	return append(b, 0, 0, flags, 0, 0, 0)
}

// clientAnswer appends to out the answer for the client query pkt (parsed
// as q) made from the upstream answer b, whose question ends at qend and
// whose records plan kept (a prefix of them): the client's ID and
// spelling of the name, QR, RD and CD as asked, RA, the upstream's AD and
// rcode, the kept records, and our OPT when the client spoke EDNS.
func clientAnswer(out, pkt []byte, q *wireQuery, b []byte, plan *answerPlan, qend int) []byte {
	out = append(out, pkt[:q.qend]...)
	out[2] = 0x80 | pkt[2]&0x01 // QR, opcode 0, RD as asked
	out[3] = 0x80 | b[3]&0x2f   // RA, AD and the rcode from upstream
	if pkt[3]&0x10 != 0 {
		out[3] |= 0x10 // CD as asked
	}
	binary.BigEndian.PutUint16(out[6:], uint16(plan.counts[0]))
	binary.BigEndian.PutUint16(out[8:], uint16(plan.counts[1]))
	ar := uint16(plan.counts[2])
	out = append(out, b[qend:plan.prefixEnd]...)
	if q.edns {
		out = appendOPT(out, q.do)
		ar++
	}
	binary.BigEndian.PutUint16(out[10:], ar)
	return out
}
