package resolver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS over TCP. Each connection has a reader; each query read from it is
// answered in a goroutine of its own, and answers are written as they are
// ready, so a query waiting on an upstream does not hold up the queries
// pipelined after it (RFC 7766 §6.2.1.1: answers may go out of order,
// matched by ID). Writes to one connection are serialised.
const (
	tcpIdle       = 5 * time.Second // a client that sends nothing for this long is dropped
	tcpIO         = 2 * time.Second // to read the rest of a started query, or write an answer
	tcpMaxQueries = 1000            // queries per connection, then it is closed
	tcpInFlight   = 32              // queries of one connection answered at once
)

// serveTCP accepts connections until ln is closed.
func (r *Resolver) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of file descriptors: let some close
			continue
		}
		r.ln.mu.Lock()
		if r.ln.tcpConns == nil {
			r.ln.mu.Unlock()
			c.Close()
			return
		}
		r.ln.tcpConns[c] = struct{}{}
		r.ln.mu.Unlock()
		go r.serveConn(c)
	}
}

// tcpWriter is the dns.ResponseWriter of one query read from a TCP
// connection.
type tcpWriter struct {
	conn net.Conn
	mu   *sync.Mutex
}

func (w *tcpWriter) LocalAddr() net.Addr { return w.conn.LocalAddr() }

func (w *tcpWriter) RemoteAddr() net.Addr { return w.conn.RemoteAddr() }

func (w *tcpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *tcpWriter) Write(b []byte) (int, error) {
	if len(b) > dns.MaxMsgSize {
		return 0, errors.New("answer too large for TCP")
	}
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	framed = append(framed, b...)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(tcpIO))
	if _, err := w.conn.Write(framed); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *tcpWriter) Close() error { return w.conn.Close() }

func (w *tcpWriter) TsigStatus() error { return nil }

func (w *tcpWriter) TsigTimersOnly(bool) {}

func (w *tcpWriter) Hijack() {}

// serveConn answers the queries of one connection until the client closes
// it, stays idle past tcpIdle, or has sent tcpMaxQueries.
func (r *Resolver) serveConn(c net.Conn) {
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait() // answers still owed are written first
		c.Close()
		r.ln.mu.Lock()
		delete(r.ln.tcpConns, c)
		r.ln.mu.Unlock()
	}()
	w := &tcpWriter{conn: c, mu: new(sync.Mutex)}
	rd := bufio.NewReader(c)
	slots := make(chan struct{}, tcpInFlight)
	for n := 0; n < tcpMaxQueries; n++ {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		var l [2]byte
		if _, err := io.ReadFull(rd, l[:1]); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(tcpIO))
		if _, err := io.ReadFull(rd, l[1:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(rd, pkt); err != nil {
			return
		}
		slots <- struct{}{}
		inflight.Add(1)
		go func() {
			defer func() { <-slots; inflight.Done() }()
			req := new(dns.Msg)
			if err := req.Unpack(pkt); err != nil {
				if b := formErr(pkt); b != nil {
					w.Write(b)
				}
				return
			}
			r.ServeDNS(w, req)
		}()
	}
}
