package zone_test

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/zone"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// consumer is a real DNS server following the common scope's zone.
type consumer struct {
	name string
	// start launches it against the zone server and the test authority,
	// listening on addr; it returns the process.
	start func(t *testing.T, e *env, dir, addr, auth string) *proc
	// ixfrLogged reports whether its log shows an incremental transfer.
	ixfrLogged func(log string) bool
	// heldSerial, where set, asks the server for the zone's serial the way
	// docs/zone-transfer.md ("what to alert on") says.
	heldSerial func(addr string) (uint32, error)
}

// follow is the test every consumer passes: it loads the zone by AXFR and
// enforces it (allowed names resolve, others are NXDOMAIN by a catch-all
// policy zone after ours); a suspension and then a new approval each reach
// it within 2 seconds, by NOTIFY and IXFR.
func follow(t *testing.T, c consumer, unsigned bool) {
	addr := realproc.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	o := envOptions{notify: []zone.Target{{Addr: addr, Scopes: []string{"common"}}}}
	if unsigned {
		o.unsignedFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	e := newEnv(t, o)
	auth := authority(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "catchall.zone"), "$TTL 60\n@ SOA localhost. h.localhost. 1 60 60 600 60\n@ NS localhost.\n* CNAME .\n")
	p := c.start(t, e, dir, addr, auth)
	_ = host
	_ = port
	v := e.version("common")
	// Loaded when every allowed name resolves (a server may answer for
	// some names while it is still loading the policy zone).
	waitFor(t, 15*time.Second, c.name+" loads the zone", func() (bool, error) {
		for _, n := range []string{"video.example.com", "a.docs.example.org", "docs.example.org"} {
			if ok, err := allowed(t, addr, n); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	})
	for name, want := range map[string]bool{"video.example.com": true, "a.docs.example.org": true, "docs.example.org": true,
		"www.video.example.com": false, "other.example.com": false, "example.org": false} {
		if got, err := allowed(t, addr, name); err != nil || got != want {
			t.Errorf("%s: %s allowed %v (err %v), want %v", c.name, name, got, err, want)
		}
	}

	e.suspend("video")
	if e.version("common") != v+1 {
		t.Fatalf("common at %d after a suspension, want %d", e.version("common"), v+1)
	}
	took := waitFor(t, 2*time.Second, c.name+" enforces the suspension", func() (bool, error) {
		ok, err := allowed(t, addr, "video.example.com")
		return !ok && err == nil, err
	})
	t.Logf("%s enforced the suspension after %v", c.name, took)

	e.approve("chat", "chat.example.com")
	took = waitFor(t, 2*time.Second, c.name+" enforces the new approval", func() (bool, error) {
		return allowed(t, addr, "chat.example.com")
	})
	t.Logf("%s enforced the new approval after %v", c.name, took)
	if got, err := allowed(t, addr, "video.example.com"); got || err != nil {
		t.Errorf("video.example.com allowed again (err %v)", err)
	}
	// The server counts a transfer once it has sent it, so the server may
	// enforce before the count moves: wait for it.
	waitFor(t, 2*time.Second, c.name+" served an incremental transfer per change", func() (bool, error) {
		return testutil.ToFloat64(transfers(e, "ixfr", "incremental")) >= 2, nil
	})
	if c.ixfrLogged != nil {
		waitFor(t, 2*time.Second, c.name+" logs an IXFR", func() (bool, error) { return c.ixfrLogged(p.log.String()), nil })
	}
	waitFor(t, 2*time.Second, c.name+" answered two NOTIFYs", func() (bool, error) {
		return testutil.ToFloat64(notifies(e, "answered")) >= 2, nil
	})
	if c.heldSerial != nil {
		if got, err := c.heldSerial(addr); err != nil || int64(got) != e.version("common") {
			t.Errorf("%s: the documented serial check gave %d (%v), want %d", c.name, got, err, e.version("common"))
		}
	}
}

// bindSerial asks BIND for the policy zone's SOA without recursion
// (dig +norec): with recursion asked for, the catch-all policy zone
// rewrites the question to NXDOMAIN, as docs/zone-transfer.md warns.
func bindSerial(addr string) (uint32, error) {
	c := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("common.rpz.allowlist.", dns.TypeSOA)
	if r, _, err := c.Exchange(m, addr); err != nil || r.Rcode != dns.RcodeNameError {
		return 0, fmt.Errorf("with recursion desired: %v %v, want NXDOMAIN from the catch-all (the docs say so)", r, err)
	}
	m.RecursionDesired = false
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && r.Authoritative {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no authoritative SOA: %v", r)
}

func TestBINDFollowsZone(t *testing.T) {
	follow(t, consumer{name: "BIND", start: startBIND, ixfrLogged: func(log string) bool {
		// BIND asked for IXFR after each NOTIFY (the server's metrics show
		// it answered incrementally) and holds the last serial.
		return strings.Count(log, "common.rpz.allowlist/IN: requesting IXFR") >= 2 &&
			strings.Contains(log, "Transfer completed") && strings.Contains(log, "(serial 4)")
	}, heldSerial: bindSerial}, false)
}

// startBIND runs named as a secondary of the common zone with TSIG, using
// it as a response policy zone before a catch-all, as docs/zone-transfer.md
// says.
func startBIND(t *testing.T, e *env, dir, addr, auth string) *proc {
	named := realproc.Need(t, "named")
	host, port, _ := net.SplitHostPort(addr)
	ahost, aport, _ := net.SplitHostPort(auth)
	write(t, filepath.Join(dir, "named.conf"), fmt.Sprintf(`key "%s" { algorithm hmac-sha256; secret "%s"; };
options {
	directory "%s";
	pid-file "%s/named.pid";
	listen-on port %s { %s; };
	listen-on-v6 { none; };
	recursion yes;
	allow-recursion { 127.0.0.0/8; };
	dnssec-validation no;
	forward only;
	forwarders { %s port %s; };
	response-policy {
		zone "common.rpz.allowlist";
		zone "catchall";
	} min-update-interval 0;
};
controls { };
logging { category xfer-in { default_stderr; }; category notify { default_stderr; }; category default { default_stderr; }; };
zone "common.rpz.allowlist" {
	type secondary;
	primaries { 127.0.0.1 port %s key "%s"; };
	file "common.rpz.db";
};
zone "catchall" { type primary; file "catchall.zone"; };
`, e.keyName, e.keySecret, dir, dir, port, host, ahost, aport, e.port(), e.keyName))
	p := start(t, dir, named, "-g", "-d", "1", "-c", filepath.Join(dir, "named.conf"))
	waitReady(t, p, addr, "catchall")
	return p
}

func TestUnboundFollowsZone(t *testing.T) {
	follow(t, consumer{name: "Unbound", start: startUnbound}, true)
}

// startUnbound runs unbound with the common zone as an rpz: clause fed by
// zone transfer (primary:, allow-notify:) before a catch-all. Unbound 1.17
// cannot sign a transfer with TSIG, so the zone server lets its address
// transfer unsigned (zone_transfer unsigned_from in the registry's
// config).
func startUnbound(t *testing.T, e *env, dir, addr, auth string) *proc {
	unbound := realproc.Need(t, "unbound")
	host, port, _ := net.SplitHostPort(addr)
	ahost, aport, _ := net.SplitHostPort(auth)
	write(t, filepath.Join(dir, "unbound.conf"), fmt.Sprintf(`server:
	interface: %s
	port: %s
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "%s"
	pidfile: "%s/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	module-config: "respip iterator"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	qname-minimisation: no
forward-zone:
	name: "example.com"
	forward-addr: %s@%s
forward-zone:
	name: "example.org"
	forward-addr: %s@%s
rpz:
	name: "common.rpz.allowlist."
	primary: 127.0.0.1@%s
	allow-notify: 127.0.0.1
	zonefile: "common.rpz.db"
	rpz-log: yes
rpz:
	name: "catchall."
	zonefile: "catchall.zone"
`, host, port, dir, dir, ahost, aport, ahost, aport, e.port()))
	p := start(t, dir, unbound, "-d", "-c", filepath.Join(dir, "unbound.conf"))
	waitReady(t, p, addr, "example.com")
	return p
}

func TestPowerDNSRecursorFollowsZone(t *testing.T) {
	follow(t, consumer{name: "PowerDNS Recursor", start: startRecursor, ixfrLogged: func(log string) bool {
		return strings.Count(log, `msg="Processing IXFR delta"`) >= 2 || strings.Count(log, "IXFR") >= 2
	}}, false)
}

// startRecursor runs pdns_recursor (4.8, Lua configuration) with the common
// zone from rpzPrimary with TSIG, then a catch-all from rpzFile. Recursor
// 4.8 answers a NOTIFY by wiping its cache for the zone but does not
// refresh an RPZ for it, so rpzPrimary's refresh=1 has it ask for the SOA
// every second instead. Its packet cache would go on answering a name
// from before a suspension until the answer's TTL ran out, so it is off.
func startRecursor(t *testing.T, e *env, dir, addr, auth string) *proc {
	rec := realproc.Need(t, "pdns_recursor")
	host, port, _ := net.SplitHostPort(addr)
	write(t, filepath.Join(dir, "rpz.lua"), fmt.Sprintf(`rpzPrimary("127.0.0.1:%s", "common.rpz.allowlist.", {tsigname="%s", tsigalgo="hmac-sha256", tsigsecret="%s", refresh=1})
rpzFile("%s/catchall.zone", {policyName="catchall"})
`, e.port(), e.keyName, e.keySecret, dir))
	write(t, filepath.Join(dir, "recursor.conf"), fmt.Sprintf(`local-address=%s
local-port=%s
daemon=no
socket-dir=%s
lua-config-file=%s/rpz.lua
forward-zones=example.com=%s,example.org=%s
allow-notify-from=127.0.0.0/8
allow-notify-for=common.rpz.allowlist
dnssec=off
disable-packetcache=yes
loglevel=6
quiet=no
disable-syslog=yes
`, host, port, dir, dir, auth, auth))
	p := start(t, dir, rec, "--config-dir="+dir)
	waitReady(t, p, addr, "example.com")
	return p
}
