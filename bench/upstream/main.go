// Command upstream is a minimal DNS server for benchmarks on loopback: it
// answers every A query with 192.0.2.1 (TTL 3600) and every other query
// with NODATA, over UDP with several sockets (SO_REUSEPORT), so that it is
// never the bottleneck when a resolver is measured.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/miekg/dns"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:5300", "UDP and TCP address")
	ttl := flag.Uint("ttl", 3600, "TTL of answers")
	flag.Parse()
	a := net.ParseIP("192.0.2.1").To4()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: uint32(*ttl)}, A: a}}
		}
		w.WriteMsg(m)
	})
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		go func() {
			log.Fatal((&dns.Server{Addr: *addr, Net: "udp", Handler: h, ReusePort: true}).ListenAndServe())
		}()
	}
	go func() { log.Fatal((&dns.Server{Addr: *addr, Net: "tcp", Handler: h}).ListenAndServe()) }()
	fmt.Printf("upstream on %s\n", *addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
