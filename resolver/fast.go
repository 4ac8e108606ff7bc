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

// blockedTail is what follows the question in an enforce-mode answer for
// one policy: the SOA (for NXDOMAIN) and the OPT with EDE 15, without and
// with the DO bit. It is built once per list version.
type blockedTail struct {
	version    int64
	rcode      int
	soa        []byte
	opt, optDO []byte
	// withName: the EDE text ends in the check page's address, to which
	// the blocked name is added as the query asks it.
	withName bool
}

// In a packed OPT record holding one EDE option, the offsets of RDLENGTH
// and of the option's length: root name (1), type (2), class (2), TTL (4).
const optRdlenAt, edeLenAt = 9, 13

func (r *Resolver) tailFor(p *policy) *blockedTail {
	if t := r.tail.Load(); t != nil && t.version == p.version {
		return t
	}
	m := r.blocked(&dns.Msg{Question: []dns.Question{{Name: ".", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}, p)
	t := &blockedTail{version: p.version, rcode: m.Rcode}
	t.withName = r.checkURL != "" // as blockedText has it
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

func (w *udpWriter) LocalAddr() net.Addr { return w.conn.LocalAddr() }

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

func (w *udpWriter) Close() error { return nil }

func (w *udpWriter) TsigStatus() error { return nil }

func (w *udpWriter) TsigTimersOnly(bool) {}

func (w *udpWriter) Hijack() {}

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

// blockedWire appends to out enforce mode's answer to the blocked query b
// (parsed as q) under the list p, or returns nil when the ordinary path
// must give it (a sinkhole, or more than the client can take).
func (r *Resolver) blockedWire(b []byte, q *wireQuery, p *policy, out []byte) []byte {
	if r.opt.Block == BlockSinkhole {
		return nil
	}
	t := r.tailFor(p)
	if t == nil {
		return nil
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
		at := len(out)
		out = append(out, opt...)
		if t.withName {
			out = append(out, q.name...) // letters, digits, '-', '_' and '.': nothing to escape
			n := uint16(len(q.name))
			binary.BigEndian.PutUint16(out[at+optRdlenAt:], binary.BigEndian.Uint16(out[at+optRdlenAt:])+n)
			binary.BigEndian.PutUint16(out[at+edeLenAt:], binary.BigEndian.Uint16(out[at+edeLenAt:])+n)
		}
		binary.BigEndian.PutUint16(out[10:], 1)
	}
	if len(out) > q.size {
		return nil
	}
	return out
}
