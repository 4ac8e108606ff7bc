package consumers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/AdguardTeam/urlfilter"
	"github.com/AdguardTeam/urlfilter/filterlist"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// columns are the consumers of the matrix, in the order of the table.
func columns() []column {
	return []column{
		{name: "Squid", format: "squid", ask: askSquid, how: "a running proxy: GET through it, 403 TCP_DENIED or 200 from the origin"},
		{name: "pactester", format: "pac", ask: askPAC, how: "pactester -p FILE -u URL: DIRECT or the proxy"},
		{name: "Chromium", format: "chrome", ask: askChromium, how: "headless Chromium with the file as its managed policy, loading http://NAME:PORT/"},
		{name: "Unbound (unbound)", format: "unbound", sem: widened, ask: askUnboundZones, how: "include: beside local-zone: \".\" always_nxdomain"},
		{name: "Unbound (rpz)", format: "rpz", ask: askUnboundRPZ, how: "rpz: our zone, then rpz: a catch-all zone"},
		{name: "BIND (rpz)", format: "rpz", ask: askBIND, how: "response-policy { our zone; catch-all; }"},
		{name: "PowerDNS (rpz)", format: "rpz", ask: askPDNS, how: "rpzFile(our zone), then rpzFile(catch-all)"},
		{name: "dnsmasq", format: "dnsmasq", params: map[string]string{"upstream": "UPSTREAM"}, ask: askDnsmasq, how: "dnsmasq --conf-file=FILE, nothing else"},
		{name: "hosts (dnsmasq)", format: "hosts", sem: narrowed, ask: askHosts, how: "dnsmasq --addn-hosts=FILE: is the name in its hosts table"},
		{name: "adblock (AdGuard)", format: "adblock", ask: askAdblock, how: "AdGuard's DNS filter engine with the file and the blocking rule /.*/"},
		{name: "edl (rules)", format: "edl", ask: askEDL, how: "the vendors' documented matching (no firewall runs here)"},
	}
}

// startOrigin is the web server behind the proxy and the browser: every
// name resolves to it, and it names the host it was asked for.
func startOrigin(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html><body>origin-ok %s</body></html>", r.Host)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// askSquid runs Squid with the file as a dstdomain ACL, as its header
// says, and fetches http://NAME:PORT/ through it. Squid finds the origin
// through a hosts file (its DNS client cannot use a port other than 53).
func askSquid(t *testing.T, e *env, file string) func(string) (verdict, string) {
	squid := realproc.Need(t, "squid")
	port := realproc.FreePort(t)
	var hosts strings.Builder
	for _, p := range probes {
		fmt.Fprintf(&hosts, "127.0.0.1 %s\n", strings.ToLower(strings.TrimSuffix(wire(p.name), ".")))
	}
	hostsFile := writeFile(t, e.dir, "hosts", hosts.String())
	conf := writeFile(t, e.dir, "squid.conf", fmt.Sprintf(`http_port 127.0.0.1:%d
pid_filename %[2]s/squid.pid
cache_log %[2]s/cache.log
access_log stdio:%[2]s/access.log
coredump_dir %[2]s
cache deny all
hosts_file %[3]s
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
acl allowed dstdomain "%[4]s"
http_access allow allowed
http_access deny all
`, port, e.dir, hostsFile, file))
	out := run(t, squid, "-k", "parse", "-f", conf)
	for _, bad := range []string{"WARNING", "ERROR", "FATAL"} {
		if strings.Contains(out, bad) {
			t.Errorf("squid -k parse complained:\n%s", out)
		}
	}
	proxy := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, e.dir, squid, "-N", "-f", conf)
	p.waitFor(t, "squid", tcpReady(proxy))
	return func(name string) (verdict, string) {
		// The request line is written by hand: Go's client would tidy
		// the host (case, trailing dot) before Squid saw it.
		host := fmt.Sprintf("%s:%d", wire(name), e.origin)
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			return "error", err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host, host)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "error", err.Error()
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch {
		case res.StatusCode == 200 && strings.Contains(string(body), "origin-ok"):
			return allowed, res.Status
		case res.StatusCode == 403:
			return denied, res.Status + " " + res.Header.Get("X-Squid-Error")
		}
		return "error", res.Status + " " + res.Header.Get("X-Squid-Error")
	}
}

// askPAC asks pactester, libpacparser's command line, what the script
// says for http://NAME/.
func askPAC(t *testing.T, e *env, file string) func(string) (verdict, string) {
	pactester := realproc.Need(t, "pactester")
	return func(name string) (verdict, string) {
		host := wire(name)
		out, err := output(pactester, "-p", file, "-u", "http://"+host+"/", "-h", host)
		out = strings.TrimSpace(out)
		switch {
		case err != nil:
			return "error", out + " " + err.Error()
		case out == "DIRECT":
			return allowed, out
		case strings.HasPrefix(out, "PROXY "):
			return denied, out
		}
		return "error", out
	}
}

// askAdblock loads the file into AdGuard's own DNS filter engine (the Go
// module AdGuard Home is built on) with the one blocking rule the
// header asks the subscriber to add. AdGuard Home lower-cases a query
// and drops its trailing dot before asking the engine; so does this.
func askAdblock(t *testing.T, e *env, file string) func(string) (verdict, string) {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	storage, err := filterlist.NewRuleStorage([]filterlist.RuleList{
		&filterlist.StringRuleList{ID: 1, RulesText: string(text), IgnoreCosmetic: true},
		&filterlist.StringRuleList{ID: 2, RulesText: "/.*/\n", IgnoreCosmetic: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	engine := urlfilter.NewDNSEngine(storage)
	return func(name string) (verdict, string) {
		host := strings.ToLower(strings.TrimSuffix(wire(name), "."))
		res, ok := engine.Match(host)
		if !ok || res.NetworkRule == nil {
			return "error", "no rule matched, not even /.*/"
		}
		if res.NetworkRule.Whitelist {
			return allowed, res.NetworkRule.RuleText
		}
		return denied, res.NetworkRule.RuleText
	}
}

// askEDL reads the file the way Palo Alto Networks' and Fortinet's
// documentation describe a domain list: a line is one name, compared
// without case; "*.name" matches every name below name, not name itself.
// No firewall runs here, so this column checks the file against the
// vendors' documented rules, not against the product.
func askEDL(t *testing.T, e *env, file string) func(string) (verdict, string) {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(text), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if strings.ContainsAny(l, " #/") || strings.Count(l, "*") > 1 || (strings.Contains(l, "*") && !strings.HasPrefix(l, "*.")) {
				t.Fatalf("edl line %q is not a plain domain entry", l)
			}
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return func(name string) (verdict, string) {
		host := strings.ToLower(strings.TrimSuffix(wire(name), "."))
		for _, l := range lines {
			if base, ok := strings.CutPrefix(l, "*."); ok && strings.HasSuffix(host, "."+base) || l == host {
				return allowed, l
			}
		}
		return denied, "no line"
	}
}
