package consumers

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// The upstream: NSD serving a root zone whose wildcard answers every name
// with an A of 127.0.0.1 (where the HTTP origin listens) and a record of
// every other type the suite asks for, so that "forwarded" is plain to
// see in any answer.
const rootZone = `$TTL 60
. IN SOA ns. hostmaster. 1 3600 600 86400 60
. IN NS ns.
ns. IN A 127.0.0.1
* IN A 127.0.0.1
* IN AAAA ::1
* IN TXT "upstream"
* IN MX 10 mail.upstream.test.
* IN HTTPS 1 . alpn=h2
`

// The blocking catch-all policy zone that the rpz format is listed before.
const catchallZone = `$TTL 60
@ SOA localhost. hostmaster.localhost. 1 3600 600 86400 60
@ NS localhost.
* CNAME .
`

func startNSD(t *testing.T, dir string) string {
	nsd := realproc.Need(t, "nsd")
	port := realproc.FreePort(t)
	writeFile(t, dir, "root.zone", rootZone)
	conf := writeFile(t, dir, "nsd.conf", fmt.Sprintf(`server:
  ip-address: 127.0.0.1@%d
  username: ""
  chroot: ""
  zonesdir: "%[2]s"
  pidfile: "%[2]s/nsd.pid"
  database: ""
  zonelistfile: "%[2]s/nsd.zonelist"
  xfrdfile: "%[2]s/nsd.xfrd"
  server-count: 1
  # Every answer here comes from one wildcard: response rate limiting
  # would drop or truncate some of them, which is not a policy decision.
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.zone"
`, port, dir))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, dir, nsd, "-d", "-c", conf)
	p.waitFor(t, "nsd", func() error { return answers(addr, "ready.test.") })
	return addr
}

// answers asks addr for name's A record and wants the upstream's answer.
func answers(addr, name string) error {
	r, err := query(addr, name, dns.TypeA)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return nil
}

func query(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: 3 * time.Second}
	var err error
	for try := 0; try < 3; try++ {
		var r *dns.Msg
		if r, _, err = c.Exchange(m, addr); err == nil {
			return r, nil
		}
	}
	return nil, err
}

// qtypes are the query types each DNS consumer is asked: a default-deny
// must hold for all of them, not only for addresses.
var qtypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeHTTPS}

// fromUpstream reports whether an answer carries the upstream's record
// of its type (a sinkhole's 0.0.0.0 does not).
func fromUpstream(r *dns.Msg, qtype uint16) bool {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA && rr.A.Equal(net.IPv4(127, 0, 0, 1)) {
				return true
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA && rr.AAAA.Equal(net.IPv6loopback) {
				return true
			}
		case *dns.TXT:
			if qtype == dns.TypeTXT && strings.Join(rr.Txt, "") == "upstream" {
				return true
			}
		case *dns.MX:
			if qtype == dns.TypeMX && rr.Mx == "mail.upstream.test." {
				return true
			}
		case *dns.HTTPS:
			if qtype == dns.TypeHTTPS {
				return true
			}
		}
	}
	return false
}

// askDNS decides by asking a resolver every query type: allowed when all
// come from the upstream, denied when none does (NXDOMAIN, REFUSED, a
// sinkhole, no data), and a mixed answer is reported as neither.
func askDNS(addr string) func(string) (verdict, string) {
	return func(name string) (verdict, string) {
		var seen []string
		up := 0
		for _, qt := range qtypes {
			// SERVFAIL says the resolver got no answer in time (this
			// machine is shared), not what it decided: ask again.
			var r *dns.Msg
			var err error
			for try := 0; try < 5; try++ {
				if r, err = query(addr, wire(name), qt); err != nil || r.Rcode != dns.RcodeServerFailure {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				return "error", err.Error()
			}
			s := dns.TypeToString[qt] + ":" + dns.RcodeToString[r.Rcode]
			if fromUpstream(r, qt) {
				up++
				s += "/upstream"
			}
			seen = append(seen, s)
		}
		detail := strings.Join(seen, " ")
		switch up {
		case len(qtypes):
			return allowed, detail
		case 0:
			return denied, detail
		}
		return "mixed", detail
	}
}

func unboundConf(e *env, port int, body string) string {
	return fmt.Sprintf(`server:
  interface: 127.0.0.1@%d
  chroot: ""
  username: ""
  directory: "%[2]s"
  pidfile: "%[2]s/unbound.pid"
  use-syslog: no
  do-not-query-localhost: no
  module-config: "respip iterator"
  verbosity: 1
%[3]s
forward-zone:
  name: "."
  forward-addr: %[4]s
`, port, e.dir, body, strings.Replace(e.upstream, ":", "@", 1))
}

func startUnbound(t *testing.T, e *env, body string) func(string) (verdict, string) {
	unbound := realproc.Need(t, "unbound")
	port := realproc.FreePort(t)
	conf := writeFile(t, e.dir, "unbound.conf", unboundConf(e, port, body))
	run(t, realproc.Need(t, "unbound-checkconf"), conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, e.dir, unbound, "-d", "-c", conf)
	p.waitFor(t, "unbound", tcpReady(addr))
	return askDNS(addr)
}

// askUnboundZones: the unbound format, included beside the default its
// header gives.
func askUnboundZones(t *testing.T, e *env, file string) func(string) (verdict, string) {
	return startUnbound(t, e, fmt.Sprintf("  local-zone: \".\" always_nxdomain\ninclude: \"%s\"", file))
}

// askUnboundRPZ: our zone, then the catch-all, as rpz: clauses.
func askUnboundRPZ(t *testing.T, e *env, file string) func(string) (verdict, string) {
	block := writeFile(t, e.dir, "catchall.rpz", catchallZone)
	return startUnbound(t, e, fmt.Sprintf(`rpz:
  name: "common.allowlist.rpz."
  zonefile: "%s"
  rpz-log: yes
rpz:
  name: "catchall.rpz."
  zonefile: "%s"
  rpz-log: yes`, file, block))
}

// askBIND: response-policy with our zone first, then the catch-all.
func askBIND(t *testing.T, e *env, file string) func(string) (verdict, string) {
	named := realproc.Need(t, "named")
	block := writeFile(t, e.dir, "catchall.rpz", catchallZone)
	port := realproc.FreePort(t)
	host, uport, _ := net.SplitHostPort(e.upstream)
	conf := writeFile(t, e.dir, "named.conf", fmt.Sprintf(`options {
  directory "%[1]s";
  pid-file "%[1]s/named.pid";
  session-keyfile "%[1]s/session.key";
  managed-keys-directory "%[1]s";
  listen-on port %[2]d { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion yes;
  allow-query { any; };
  forwarders { %[3]s port %[4]s; };
  forward only;
  dnssec-validation no;
  response-policy { zone "common.allowlist.rpz"; zone "catchall.rpz"; };
};
controls { };
zone "common.allowlist.rpz" { type primary; file "%[5]s"; };
zone "catchall.rpz" { type primary; file "%[6]s"; };
`, e.dir, port, host, uport, file, block))
	run(t, realproc.Need(t, "named-checkconf"), "-z", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, e.dir, named, "-g", "-c", conf)
	p.waitFor(t, "named", func() error { return answers(addr, "zoom.us.") })
	return askDNS(addr)
}

// askPDNS: PowerDNS Recursor 4.8, rpzFile for our zone, then the
// catch-all, in its Lua configuration.
func askPDNS(t *testing.T, e *env, file string) func(string) (verdict, string) {
	recursor := realproc.Need(t, "pdns_recursor")
	block := writeFile(t, e.dir, "catchall.rpz", catchallZone)
	lua := writeFile(t, e.dir, "rpz.lua", fmt.Sprintf(`rpzFile(%q, {policyName="allowlist"})
rpzFile(%q, {policyName="catchall"})
`, file, block))
	writeFile(t, e.dir, "recursor.conf", "")
	port := realproc.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, e.dir, recursor, "--config-dir="+e.dir, "--socket-dir="+e.dir, "--daemon=no",
		"--local-address=127.0.0.1", fmt.Sprintf("--local-port=%d", port), "--forward-zones-recurse=.="+e.upstream,
		"--dont-query=", "--dnssec=off", "--lua-config-file="+lua, "--disable-syslog", "--write-pid=no", "--threads=1")
	p.waitFor(t, "pdns_recursor", func() error { return answers(addr, "zoom.us.") })
	return askDNS(addr)
}

// askDnsmasq: the file fetched with upstream= is dnsmasq's whole
// forwarding configuration, as its header says; only where to listen is
// added.
func askDnsmasq(t *testing.T, e *env, file string) func(string) (verdict, string) {
	return startDnsmasq(t, e, "--conf-file="+file)
}

// askHosts: dnsmasq reading the hosts file (addn-hosts) and nothing
// else; a name the file lists answers with the file's address. The cell
// says whether the name is in the resolver's hosts table.
func askHosts(t *testing.T, e *env, file string) func(string) (verdict, string) {
	addr := startDnsmasqAt(t, e, "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts="+file).addr
	return func(name string) (verdict, string) {
		r, err := query(addr, wire(name), dns.TypeA)
		if err != nil {
			return "error", err.Error()
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.Equal(net.IPv4zero) {
				return allowed, "in the hosts table"
			}
		}
		return denied, dns.RcodeToString[r.Rcode]
	}
}

type dnsmasqAsk struct {
	addr string
	ask  func(string) (verdict, string)
}

func startDnsmasq(t *testing.T, e *env, args ...string) func(string) (verdict, string) {
	return startDnsmasqAt(t, e, args...).ask
}

func startDnsmasqAt(t *testing.T, e *env, args ...string) dnsmasqAsk {
	dnsmasq := realproc.Need(t, "dnsmasq")
	port := realproc.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args = append([]string{"--keep-in-foreground", fmt.Sprintf("--port=%d", port),
		"--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=" + e.dir + "/dnsmasq.pid",
		"--log-facility=-"}, args...)
	run(t, dnsmasq, append([]string{"--test"}, args...)...)
	p := start(t, e.dir, dnsmasq, args...)
	p.waitFor(t, "dnsmasq", tcpReady(addr))
	return dnsmasqAsk{addr, askDNS(addr)}
}
