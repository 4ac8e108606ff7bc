package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
)

// runDemoDNS answers every question itself, so that a newcomer without a
// reachable DNS server can still try the resolver (make demo): A and AAAA
// get documentation addresses, TXT says where the answer came from, other
// types get an empty answer. It is not for production.
func runDemoDNS(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo-dns", "demo-dns [--listen ADDR]", stderr)
	listen := fs.String("listen", "127.0.0.1:5300", "UDP and TCP address")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype, Ttl: 300}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IP(v4.AsSlice())}}
		case dns.TypeAAAA:
			m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IP(v6.AsSlice())}}
		case dns.TypeTXT:
			m.Answer = []dns.RR{&dns.TXT{Hdr: hdr, Txt: []string{"answered by allowlist demo-dns"}}}
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(1232, false)
		}
		w.WriteMsg(m)
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Bind both sockets before saying anything: a port in use is an error
	// now, not a line claiming to answer followed by silence.
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return fmt.Errorf("%w (choose another address with --listen, or DEMO_DNS= for make demo)", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		pc.Close()
		return fmt.Errorf("%w (choose another address with --listen, or DEMO_DNS= for make demo)", err)
	}
	errc := make(chan error, 2)
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	fmt.Fprintf(stdout, "demo DNS answering every name on %s (A 192.0.2.10, AAAA 2001:db8::10)\n", *listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	for _, s := range servers {
		s.Shutdown()
	}
	return nil
}
