package resolver

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/miekg/dns"
)

// Reading upstream answers as bytes. Both paths use what is here: the
// fast path to pass an answer on by slicing it, the ordinary path to
// decide which of the records miekg unpacked it keeps, and both to find
// how long an answer may be cached. So the rules (which records a client
// gets, how long an answer lives) are written once.

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
	an, ns, ar := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))
	i := qend
	for n := 0; n < an+ns+ar; n++ {
		start := i
		var ok bool
		if i, ok = backwardName(b, i); !ok || i+10 > len(b) {
			return p, false
		}
		typ := binary.BigEndian.Uint16(b[i:])
		end := i + 10 + int(binary.BigEndian.Uint16(b[i+8:]))
		if end > len(b) || !rdataNamesBackward(b[:end], typ, i+10) {
			return p, false
		}
		section := 0
		if n >= an+ns {
			section = 2
		} else if n >= an {
			section = 1
		}
		p.recs = append(p.recs, record{start: start, end: end, section: section})
		i = end
	}
	if i != len(b) {
		return p, false
	}

	// The chain: the question name, then each CNAME target in turn.
	var chain [8][]byte
	var bufs [8][255]byte
	qname, _, ok := nameAt(b, 12, bufs[0][:0])
	if !ok {
		return p, false
	}
	chain[0] = qname
	links := 1
	for grown := true; grown && links < len(chain); {
		grown = false
		for _, r := range p.recs {
			if r.section != 0 || rrType(b, r) != dns.TypeCNAME || !ownerIn(b, r, chain[:links]) {
				continue
			}
			target, _, ok := nameAt(b, rdataAt(b, r), bufs[links][:0])
			if !ok {
				return p, false
			}
			if !contains(chain[:links], target) && links < len(chain) {
				chain[links] = target
				links++
				grown = true
			}
		}
	}
	last := chain[links-1]
	var owner [255]byte
	answered := false
	for k := range p.recs {
		r := &p.recs[k]
		if r.section != 0 {
			continue
		}
		typ := rrType(b, *r)
		o, _, _ := nameAt(b, r.start, owner[:0])
		switch {
		case typ == dns.TypeOPT:
		case contains(chain[:links], o):
			r.keep = true
			if bytes.Equal(o, last) && typ != dns.TypeCNAME && typ != dns.TypeRRSIG {
				answered = true
			}
		case typ == dns.TypeDNAME:
			for _, c := range chain[:links] {
				if below(c, o) {
					r.keep = true
				}
			}
		}
	}
	if answered && rcode == dns.RcodeSuccess {
		// A positive answer: for NS, the addresses of the name servers
		// inside the zone asked about (glue); for an answer expanded
		// from a wildcard, the NSEC or NSEC3 records (and their
		// signatures) in the signer's zone proving no closer name.
		var tbuf, sbuf [255]byte
		for k := range p.recs {
			r := &p.recs[k]
			typ := rrType(b, *r)
			switch {
			case r.section == 2 && (typ == dns.TypeA || typ == dns.TypeAAAA) && rrType(b, p.recs[0]) == dns.TypeNS:
				o, _, _ := nameAt(b, r.start, owner[:0])
				if !below(o, qname) {
					continue
				}
				for _, ns := range p.recs {
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
				for _, sig := range p.recs {
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
	if rcode == dns.RcodeNameError || !answered {
		// A negative answer: the SOA of the zone that holds the last
		// name, and the proof of denial in that zone.
		var zone []byte
		var zbuf [255]byte
		for _, r := range p.recs {
			if r.section == 1 && rrType(b, r) == dns.TypeSOA {
				o, _, _ := nameAt(b, r.start, zbuf[:0])
				if below(last, o) {
					zone = o
					break
				}
			}
		}
		for k := range p.recs {
			r := &p.recs[k]
			if r.section != 1 || zone == nil {
				continue
			}
			switch rrType(b, *r) {
			case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
				o, _, _ := nameAt(b, r.start, owner[:0])
				r.keep = below(o, zone)
			}
		}
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
