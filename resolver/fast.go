package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// The UDP fast path. Most queries a department's resolver sees are either
// blocked names or allowed names already in the cache. Those are answered
// here straight from the packet's bytes, by a fixed set of reader
// goroutines on SO_REUSEPORT sockets: no unpacking into a dns.Msg, no
// goroutine per packet, no allocation. Everything else (cache misses,
// unusual packets, EDNS options we would have to interpret) goes to the
// ordinary handler in a goroutine of its own, and its answers feed the
// packed cache used here.

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

// blockedTail is what follows the question in an enforce-mode answer for
// one policy: the SOA (for NXDOMAIN) and the OPT with EDE 15, without and
// with the DO bit. It is built once per list version.
type blockedTail struct {
	version    int64
	rcode      int
	soa        []byte
	opt, optDO []byte
}

func (r *Resolver) tailFor(p *policy) *blockedTail {
	if t := r.tail.Load(); t != nil && t.version == p.version {
		return t
	}
	m := r.blocked(&dns.Msg{Question: []dns.Question{{Name: "x.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}, p)
	t := &blockedTail{version: p.version, rcode: m.Rcode}
	if len(m.Ns) == 1 {
		buf := make([]byte, 512)
		n, err := dns.PackRR(m.Ns[0], buf, 0, nil, false)
		if err != nil {
			return nil
		}
		t.soa = buf[:n]
	}
	for _, do := range []bool{false, true} {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(upstreamSize)
		o.SetDo(do)
		for _, rr := range m.Extra {
			if x, ok := rr.(*dns.OPT); ok {
				o.Option = x.Option
			}
		}
		buf := make([]byte, 1024)
		n, err := dns.PackRR(o, buf, 0, nil, false)
		if err != nil {
			return nil
		}
		if do {
			t.optDO = buf[:n]
		} else {
			t.opt = buf[:n]
		}
	}
	r.tail.Store(t)
	return t
}

// fast answers a packet into out. When it cannot, it returns nil, and,
// for a name to forward that is not in the cache, the result to count and
// the upstream group to ask (nil: the ordinary path decides).
func (r *Resolver) fast(b []byte, q *wireQuery, out []byte) ([]byte, string, *group) {
	p := r.enforced()
	if p == nil {
		return nil, "", nil
	}
	v := r.decide(p, unsafe.String(unsafe.SliceData(q.name), len(q.name)), q.client)
	switch {
	case v.result == resultLocal:
		return nil, "", nil
	case v.g == nil:
		if r.opt.Block == BlockSinkhole {
			return nil, "", nil
		}
		t := r.tailFor(p)
		if t == nil {
			return nil, "", nil
		}
		out = append(out, b[:q.qend]...)
		out[2] = 0x80 | out[2]&0x01               // QR, opcode 0, RD as asked
		out[3] = 0x80 | b[3]&0x10 | byte(t.rcode) // RA, CD as asked
		ns := uint16(0)
		if t.rcode == dns.RcodeNameError {
			out = append(out, t.soa...)
			ns = 1
		}
		binary.BigEndian.PutUint16(out[6:], 0)
		binary.BigEndian.PutUint16(out[8:], ns)
		binary.BigEndian.PutUint16(out[10:], 0)
		if q.edns {
			opt := t.opt
			if q.do {
				opt = t.optDO
			}
			out = append(out, opt...)
			binary.BigEndian.PutUint16(out[10:], 1)
		}
		if len(out) > q.size {
			return nil, "", nil
		}
		return out, v.result, nil
	}
	e := r.cache.get(q.key(v.routed))
	now := time.Now()
	if e == nil || !now.Before(e.expires) || len(e.wire) > q.size || e.qend != q.qend {
		return nil, v.result, v.g
	}
	out = e.appendAged(out, now)
	copy(out[:2], b[:2])               // the client's ID
	copy(out[12:q.qend], b[12:q.qend]) // and its spelling of the name
	out[2] = out[2]&^0x01 | b[2]&0x01  // RD as asked
	out[3] = out[3]&^0x10 | b[3]&0x10  // CD as asked (RFC 4035 §3.2.2)
	r.m.cacheHits.Inc()
	return out, v.result, nil
}

// listenUDP binds n sockets to one address with SO_REUSEPORT, so that the
// kernel spreads packets across them.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		if err != nil {
			return err
		}
		return serr
	}}
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, pc.(*net.UDPConn))
		addr = pc.LocalAddr().String() // the others share the first one's port
	}
	return conns, nil
}

// readers is how many goroutines read UDP: a couple per core, so that one
// busy with a slow write does not stall the socket.
func readers() int { return 2 * runtime.GOMAXPROCS(0) }

// batchConn reads and writes many datagrams per system call (recvmmsg and
// sendmmsg on Linux; one at a time elsewhere). ipv4 and ipv6 PacketConns
// both have it, over the same Message type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpBatch is how many datagrams one system call moves at most.
const udpBatch = 32

// maxQuery is the largest query read whole. Stubs send a few hundred
// bytes; a longer datagram is cut here and answered FORMERR by the
// ordinary path.
const maxQuery = 4096

// serveUDP reads packets from one socket until it is closed. Under load
// the kernel has many queries queued: they are read, answered and written
// in batches, so that system calls, not packets, are amortised.
func (r *Resolver) serveUDP(conn *net.UDPConn) {
	var bc batchConn = ipv4.NewPacketConn(conn)
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		bc = ipv6.NewPacketConn(conn)
	}
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	bufs := make([][]byte, udpBatch)
	results := make([]string, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxQuery)}
		bufs[i] = make([]byte, 0, 4096)
		out[i].Buffers = [][]byte{nil}
	}
	name := make([]byte, 0, 256)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		start := time.Now()
		w := 0
		for i := 0; i < n; i++ {
			pkt := in[i].Buffers[0][:in[i].N]
			ua, _ := in[i].Addr.(*net.UDPAddr)
			if ua == nil {
				continue
			}
			q, ok := parseQuery(pkt, name)
			if ok && r.usage != nil {
				q.client = ua.AddrPort().Addr() // for usage counts only
			}
			if ok {
				resp, result, g := r.fast(pkt, &q, bufs[w][:0])
				if resp != nil {
					out[w].Buffers[0], out[w].Addr = resp, in[i].Addr
					results[w] = result
					w++
					continue
				}
				if g != nil && r.fwd.forward(conn, ua.AddrPort(), pkt, &q, result, g, start) {
					continue
				}
			}
			// The ordinary path may wait on an upstream: never in the
			// reader. It gets its own copies of the packet and the name.
			cp := append([]byte(nil), pkt...)
			q.name = append([]byte(nil), q.name...)
			go r.slowUDP(conn, ua.AddrPort(), cp, q, ok, start, "")
		}
		for sent := 0; sent < w; {
			k, err := bc.WriteBatch(out[sent:w], 0)
			if err != nil || k == 0 {
				break // the clients will ask again
			}
			sent += k
		}
		d := time.Since(start)
		for i := 0; i < w; i++ {
			r.m.count(results[i], d)
			out[i].Addr = nil
		}
	}
}

// udpWriter is the dns.ResponseWriter of the ordinary path for a packet
// read by serveUDP. It keeps the bytes it sent.
type udpWriter struct {
	conn *net.UDPConn
	addr netip.AddrPort
	sent []byte
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.addr) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	w.sent = b
	_, err = w.conn.WriteToUDPAddrPort(b, w.addr)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDPAddrPort(b, w.addr) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}

// slowUDP answers a packet the fast path did not, as miekg's server
// would: drop what cannot be a query, FORMERR what cannot be parsed.
// skip is an upstream the fast path already waited on in vain.
func (r *Resolver) slowUDP(conn *net.UDPConn, addr netip.AddrPort, pkt []byte, q wireQuery, parsed bool, start time.Time, skip string) {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		if b := formErr(pkt); b != nil {
			conn.WriteToUDPAddrPort(b, addr)
		}
		return
	}
	w := &udpWriter{conn: conn, addr: addr}
	client := addr.Addr()
	if parsed {
		client = netip.Addr{} // the fast path decided, and counted, it
	}
	resp, result, v := r.answer(req, skip, client)
	if resp == nil {
		return
	}
	r.write(w, req, resp)
	r.m.count(result, time.Since(start))
	if parsed && w.sent != nil && v.g != nil && resp.Rcode != dns.RcodeServerFailure {
		// Kept for the fast path: the answer as sent to this client.
		r.cache.store(q.key(v.routed), w.sent, time.Now())
	}
}
