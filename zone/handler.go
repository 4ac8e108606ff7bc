package zone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/miekg/dns"
)

// maxMessage bounds the uncompressed size of the records put in one
// transfer message, inside TCP DNS's 64 KiB with room for the header and
// TSIG; a zone of any size is sent one such message at a time.
const maxMessage = 60000

// ServeDNS answers SOA and NS queries for a zone's apex, and AXFR and
// IXFR over TCP to a client that signs with a key allowed the scope.
// Everything else is REFUSED: the server serves transfers, not lookups.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer w.Close()
	if r.Opcode != dns.OpcodeQuery {
		s.reply(w, r, dns.RcodeNotImplemented)
		return
	}
	if len(r.Question) != 1 {
		s.reply(w, r, dns.RcodeFormatError)
		return
	}
	q := r.Question[0]
	scope, ok := s.scopeOf(q.Name)
	if !ok || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		s.reply(w, r, dns.RcodeRefused)
		return
	}
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	kind := ""
	switch q.Qtype {
	case dns.TypeAXFR:
		kind = "axfr"
	case dns.TypeIXFR:
		kind = "ixfr"
	}
	if kind == "axfr" && !tcp {
		// AXFR over UDP can never succeed, and UDP sources can be forged:
		// refuse it before any key check, audit or log, so that nobody can
		// spend the audit's budget for refusals (or fill the log) with it.
		s.metrics.transfers.WithLabelValues(kind, "refused").Inc()
		s.reply(w, r, dns.RcodeRefused)
		return
	}
	key, ok := s.authorise(w, r, scope, kind)
	if !ok {
		return
	}
	version, _ := s.version(scope)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch {
	case q.Qtype == dns.TypeSOA:
		m.Answer = []dns.RR{s.soa(scope, version)}
		s.write(w, r, m)
	case q.Qtype == dns.TypeNS:
		m.Answer = []dns.RR{s.ns(scope)}
		s.write(w, r, m)
	case kind == "" || (kind == "axfr" && !tcp):
		s.reply(w, r, dns.RcodeRefused)
	case kind == "ixfr" && !tcp:
		// RFC 1995 2: a reply too large for UDP is the current SOA alone,
		// which sends the client to TCP.
		m.Answer = []dns.RR{s.soa(scope, version)}
		s.write(w, r, m)
	default:
		s.transfer(w, r, kind, key, scope, version)
	}
}

// authorise checks a request's TSIG. Queries other than transfers need
// none, but a signature that is sent must verify. A transfer needs a valid
// key allowed the scope; refusals are counted and audited.
func (s *Server) authorise(w dns.ResponseWriter, r *dns.Msg, scope, kind string) (string, bool) {
	t := r.IsTsig()
	remote := w.RemoteAddr().String()
	if t == nil {
		if kind == "" {
			return "", true
		}
		if s.unsignedAllowed(w.RemoteAddr()) {
			s.metrics.tsig.WithLabelValues("unsigned", "ok").Inc()
			return "", true
		}
		s.refuse(w, r, kind, "", remote, scope, "no TSIG key")
		return "", false
	}
	name := dns.CanonicalName(t.Hdr.Name)
	if err := w.TsigStatus(); err != nil {
		known := s.keys.known(name)
		s.metrics.tsig.WithLabelValues(s.keys.label(name), "bad").Inc()
		code, reason := uint16(dns.RcodeBadSig), "bad signature: "+err.Error()
		switch {
		case !known:
			code, reason = dns.RcodeBadKey, "unknown key"
		case errors.Is(err, dns.ErrTime):
			// The signature is right but the clocks disagree by more than
			// the fudge: say so, so the operator fixes the clock rather
			// than the secret (RFC 8945 5.2.3).
			code, reason = dns.RcodeBadTime, "signed outside the allowed time window (check both clocks)"
		}
		s.refused.audit(s, name, remote, scope, reason)
		s.metrics.transfers.WithLabelValues(kindOr(kind), "notauth").Inc()
		s.log.Warn("zone request with a bad TSIG", "key", name, "remote", remote, "scope", scope, "reason", reason)
		s.tsigError(w, r, t, code)
		return "", false
	}
	if kind != "" && !s.keys.allows(name, scope) {
		s.metrics.tsig.WithLabelValues(s.keys.label(name), "wrong_scope").Inc()
		s.refuse(w, r, kind, name, remote, scope, "key not allowed this scope")
		return "", false
	}
	s.metrics.tsig.WithLabelValues(s.keys.label(name), "ok").Inc()
	return name, true
}

func kindOr(kind string) string {
	if kind == "" {
		return "query"
	}
	return kind
}

func (s *Server) refuse(w dns.ResponseWriter, r *dns.Msg, kind, key, remote, scope, reason string) {
	s.metrics.transfers.WithLabelValues(kind, "refused").Inc()
	s.refused.audit(s, key, remote, scope, reason)
	s.log.Warn("zone transfer refused", "type", kind, "key", key, "remote", remote, "scope", scope, "reason", reason)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	if t := r.IsTsig(); t != nil {
		// Signed with a valid key (only scope is wrong): sign the refusal.
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m)
}

// tsigError answers NOTAUTH with an unsigned TSIG record carrying the
// error (RFC 8945 5.3.2), so the client logs why.
func (s *Server) tsigError(w dns.ResponseWriter, r *dns.Msg, t *dns.TSIG, code uint16) {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeNotAuth)
	// The algorithm comes from the request as it was sent: an empty one
	// packs as nothing at all (not the root name), which breaks the record.
	alg := dns.Fqdn(t.Algorithm)
	if t.Algorithm == "" {
		alg = "."
	}
	m.Extra = []dns.RR{&dns.TSIG{Hdr: dns.RR_Header{Name: dns.Fqdn(t.Hdr.Name), Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: alg, TimeSigned: uint64(time.Now().Unix()), Fudge: 300, OrigId: r.Id, Error: code}}
	if code == dns.RcodeBadTime {
		// BADTIME carries the server's own time as 48 bits in Other Data,
		// from which the client can tell how far its clock is off.
		ts := m.Extra[0].(*dns.TSIG)
		ts.OtherLen = 6
		ts.OtherData = fmt.Sprintf("%012x", time.Now().Unix())
	}
	b, err := m.Pack()
	if err == nil {
		w.Write(b)
	}
}

// reply answers with an rcode alone, signed when the request was.
func (s *Server) reply(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	s.write(w, r, m)
}

// write sends m, signed when the request carried a valid signature.
func (s *Server) write(w dns.ResponseWriter, r *dns.Msg, m *dns.Msg) error {
	if t := r.IsTsig(); t != nil && w.TsigStatus() == nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	return w.WriteMsg(m)
}

// transfer answers an AXFR or IXFR. An IXFR from a serial we hold a
// version for gets the names removed and added since then (condensed into
// one difference sequence, RFC 1995 4); from the current serial or one
// ahead of it, the current SOA alone; from a serial we do not know, or
// when the difference would be larger than the zone, the whole zone.
func (s *Server) transfer(w dns.ResponseWriter, r *dns.Msg, kind, key, scope string, version int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cur, err := s.zone(ctx, scope, version, nil)
	if err != nil {
		s.metrics.transfers.WithLabelValues(kind, "error").Inc()
		s.log.Error("zone transfer", "scope", scope, "version", version, "err", err)
		s.reply(w, r, dns.RcodeServerFailure)
		return
	}
	st := &stream{s: s, w: w, r: r}
	result := "full"
	if kind == "ixfr" {
		from, ok := clientSerial(r)
		switch {
		case !ok:
			s.metrics.transfers.WithLabelValues(kind, "formerr").Inc()
			s.reply(w, r, dns.RcodeFormatError)
			return
		case int64(from) >= version:
			result = "current"
			st.add(s.soa(scope, version))
		default:
			old, err := s.zone(ctx, scope, int64(from), nil)
			if err == nil {
				del, add := diff(old.names, cur.names)
				if len(del)+len(add) < len(cur.names) {
					result = "incremental"
					origin := s.Origin(scope)
					st.add(s.soa(scope, version))
					st.add(s.soa(scope, int64(from)))
					st.names(del, origin)
					st.add(s.soa(scope, version))
					st.names(add, origin)
					st.add(s.soa(scope, version))
				}
			} else if allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
				s.log.Warn("ixfr: old version", "scope", scope, "from", from, "err", err)
			}
		}
	}
	if result == "full" {
		st.add(s.soa(scope, version))
		st.add(s.ns(scope))
		st.names(cur.names, s.Origin(scope))
		st.add(s.soa(scope, version))
	}
	if err := st.flush(); err != nil {
		s.metrics.transfers.WithLabelValues(kind, "error").Inc()
		s.log.Warn("zone transfer broken off", "type", kind, "scope", scope, "remote", w.RemoteAddr().String(), "err", err)
		return
	}
	s.metrics.transfers.WithLabelValues(kind, result).Inc()
	s.metrics.bytes.WithLabelValues(kind).Add(float64(st.bytes))
	s.log.Info("zone transfer", "type", kind, "result", result, "scope", scope, "version", version, "key", key,
		"remote", w.RemoteAddr().String(), "records", st.records, "messages", st.messages, "bytes", st.bytes,
		"took_ms", time.Since(start).Milliseconds())
}

// clientSerial is the serial in an IXFR request's authority section.
func clientSerial(r *dns.Msg) (uint32, bool) {
	if len(r.Ns) != 1 {
		return 0, false
	}
	soa, ok := r.Ns[0].(*dns.SOA)
	if !ok {
		return 0, false
	}
	return soa.Serial, true
}

// diff returns the names only in a and only in b, both sorted.
func diff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		default:
			onlyB = append(onlyB, b[j])
			j++
		}
	}
	return append(onlyA, a[i:]...), append(onlyB, b[j:]...)
}

// stream writes a transfer's records in messages of bounded size: only
// one message's records exist as dns.RR values at a time.
type stream struct {
	s                        *Server
	w                        dns.ResponseWriter
	r                        *dns.Msg
	rrs                      []dns.RR
	size                     int
	err                      error
	records, messages, bytes int
	mac                      string // the MAC the next message's covers
}

func (st *stream) add(rr dns.RR) {
	if st.err != nil {
		return
	}
	n := len(rr.Header().Name) + 64
	if cn, ok := rr.(*dns.CNAME); ok {
		n = len(cn.Hdr.Name) + len(cn.Target) + 16
	}
	if st.size+n > maxMessage && len(st.rrs) > 0 {
		st.err = st.send()
	}
	st.rrs = append(st.rrs, rr)
	st.size += n
	st.records++
}

// names adds an rpz-passthru record for each owner name.
func (st *stream) names(names []string, origin string) {
	for _, n := range names {
		st.add(&dns.CNAME{Hdr: dns.RR_Header{Name: n + "." + origin, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: allowlist.RPZTTL}, Target: "rpz-passthru."})
	}
}

func (st *stream) send() error {
	m := new(dns.Msg)
	m.SetReply(st.r)
	m.Authoritative = true
	m.Compress = true
	m.Answer = st.rrs
	var b []byte
	var err error
	if t := st.r.IsTsig(); t != nil {
		// Each message's MAC covers the one before it; after the first,
		// only the timers are in the signed variables (RFC 8945 5.3.1).
		if st.messages == 0 {
			st.mac = t.MAC
		}
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
		b, st.mac, err = dns.TsigGenerateWithProvider(m, st.s.keys, st.mac, st.messages > 0)
	} else {
		b, err = m.Pack()
	}
	st.rrs, st.size = st.rrs[:0], 0
	if err != nil {
		return err
	}
	st.bytes += len(b)
	st.messages++
	_, err = st.w.Write(b)
	return err
}

func (st *stream) flush() error {
	if st.err == nil && len(st.rrs) > 0 {
		st.err = st.send()
	}
	return st.err
}

// unsignedAllowed reports whether addr is in a network allowed to
// transfer without a key.
func (s *Server) unsignedAllowed(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.cfg.UnsignedFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
