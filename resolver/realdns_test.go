package resolver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// Real DNS servers for the tests: NSD (authoritative) serving a zone
// signed in the test with ldns-signzone, and Unbound forwarding to it.
// They run as processes of the test, in a temp dir, on free loopback
// ports, and are stopped by PID. A missing program fails the test when
// CI=true and skips it otherwise.

// run starts a server process and stops it (SIGTERM, by PID) at cleanup.
func run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	log, err := os.Create(filepath.Join(dir, filepath.Base(name)+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// waitServes waits until addr answers a query for name with NOERROR.
func waitServes(t testing.TB, addr, name, logfile string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSOA)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, _, err := c.Exchange(m, addr); err == nil && resp.Rcode == dns.RcodeSuccess {
			return
		}
	}
	out, _ := os.ReadFile(logfile)
	t.Fatalf("%s did not start serving %s:\n%s", addr, name, out)
}

// testZone is the zone the conformance tests ask about: ordinary
// records, a CNAME inside and one outside the zone, a wildcard, an answer
// too large for 1232 bytes over UDP, a label holding a dot, and records of
// the types whose rdata holds names.
const testZone = `$ORIGIN example.org.
$TTL 300
@        SOA   ns1 hostmaster 1 3600 600 86400 300
@        NS    ns1
@        MX    10 mail
@        TXT   "v=spf1 -all"
ns1      A     127.0.0.1
www      A     192.0.2.1
www      AAAA  2001:db8::1
mail     A     192.0.2.25
alias    CNAME www
chain    CNAME alias
outside  CNAME www.example.net.
*.wild   A     192.0.2.7
_sip._udp SRV  10 5 5060 www
ptr      PTR   www
x\.github A    192.0.2.66
caps     A     192.0.2.8
`

// bigTXT is added to the zone: 40 TXT records, about 2.4 kB.
func bigTXT() string {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "big TXT \"%02d %s\"\n", i, strings.Repeat("t", 50))
	}
	return b.String()
}

// netZone answers every name under example.net (the benchmark's names).
const netZone = `$ORIGIN example.net.
$TTL 300
@        SOA   ns1 hostmaster 1 3600 600 86400 300
@        NS    ns1
ns1      A     127.0.0.1
www      A     192.0.2.1
*        A     192.0.2.1
`

// startNSD runs NSD on a free loopback port serving example.org (signed
// with ldns-signzone: a KSK and a ZSK, ECDSA P-256) and example.net, and
// returns its address.
func startNSD(t testing.TB) string {
	t.Helper()
	nsd := realproc.Need(t, "nsd")
	keygen, signzone := realproc.Need(t, "ldns-keygen"), realproc.Need(t, "ldns-signzone")
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("example.org.zone", testZone+bigTXT())
	write("example.net.zone", netZone)
	var keys []string
	for _, args := range [][]string{{"-a", "ECDSAP256SHA256", "-k", "example.org"}, {"-a", "ECDSAP256SHA256", "example.org"}} {
		cmd := exec.Command(keygen, args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ldns-keygen: %v", err)
		}
		keys = append(keys, strings.TrimSpace(string(out)))
	}
	sign := exec.Command(signzone, append([]string{"-o", "example.org", "example.org.zone"}, keys...)...)
	sign.Dir = dir
	if out, err := sign.CombinedOutput(); err != nil {
		t.Fatalf("ldns-signzone: %v\n%s", err, out)
	}
	port := realproc.FreePort(t)
	write("nsd.conf", fmt.Sprintf(`server:
    ip-address: 127.0.0.1@%[1]d
    port: %[1]d
    username: ""
    chroot: ""
    zonesdir: "%[2]s"
    database: ""
    zonelistfile: "%[2]s/zone.list"
    xfrdfile: "%[2]s/xfrd.state"
    xfrdir: "%[2]s"
    pidfile: "%[2]s/nsd.pid"
    logfile: "%[2]s/nsd.log"
    server-count: 1
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.org
    zonefile: example.org.zone.signed
zone:
    name: example.net
    zonefile: example.net.zone
`, port, dir))
	run(t, dir, nsd, "-d", "-c", filepath.Join(dir, "nsd.conf"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitServes(t, addr, "example.org.", filepath.Join(dir, "nsd.log"))
	return addr
}

// startUnbound runs Unbound on a free loopback port forwarding every name
// to upstream, and returns its address.
func startUnbound(t testing.TB, upstream string) string {
	t.Helper()
	unbound := realproc.Need(t, "unbound")
	dir := t.TempDir()
	port := realproc.FreePort(t)
	host, uport, _ := net.SplitHostPort(upstream)
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1@%[1]d
    port: %[1]d
    num-threads: 1
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "%[2]s"
    pidfile: ""
    use-syslog: no
    logfile: "%[2]s/unbound.log"
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
forward-zone:
    name: "."
    forward-addr: %[3]s@%[4]s
`, port, dir, host, uport)
	if err := os.WriteFile(filepath.Join(dir, "unbound.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, unbound, "-d", "-c", filepath.Join(dir, "unbound.conf"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitServes(t, addr, "example.org.", filepath.Join(dir, "unbound.log"))
	return addr
}

// TestFastPathEDNSToRealServers: a cache miss on the fast path is sent
// as a query NSD and Unbound accept: answered by the fast path itself (no
// fallback to the ordinary path), with the DNSSEC records a DO query asks
// for, and an OPT record in the answer.
func TestFastPathEDNSToRealServers(t *testing.T) {
	nsd := startNSD(t)
	unbound := startUnbound(t, nsd)
	for _, up := range []struct{ name, addr string }{{"nsd", nsd}, {"unbound", unbound}} {
		t.Run(up.name, func(t *testing.T) {
			reg := newRegistry(t)
			reg.publish(1, []string{"example.org", "*.example.org"})
			r := start(t, Options{Registry: reg.srv.URL, PublicKey: reg.pub, Upstreams: []string{up.addr}})
			waitVersion(t, r, 1, 2*time.Second)
			for _, name := range []string{"www.example.org.", "mail.example.org.", "ns1.example.org."} {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				m.SetEdns0(1232, true)
				resp, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, r.Addr("udp"))
				if err != nil {
					t.Fatal(err)
				}
				var sigs int
				for _, rr := range resp.Answer {
					if rr.Header().Rrtype == dns.TypeRRSIG {
						sigs++
					}
				}
				if resp.Rcode != dns.RcodeSuccess || firstA(resp) == "" || sigs == 0 || resp.IsEdns0() == nil || !resp.IsEdns0().Do() {
					t.Errorf("%s via %s: want an A record with its RRSIG and an OPT with DO, got\n%s", name, up.name, resp)
				}
			}
			if s := scrape(t, r); strings.Contains(s, "allowlist_resolver_forward_fallbacks_total{") {
				t.Errorf("cache misses fell back to the ordinary path:\n%s", grepLines(s, "forward_fallbacks_total"))
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
