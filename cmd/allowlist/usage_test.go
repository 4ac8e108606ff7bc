package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUsageReportsReachRealRegistry: the real registry and the real
// resolver, in monitor mode, as processes. Six clients (127.0.0.2 to .7,
// each its own UDP socket) ask names under one domain the list does not
// allow, three ask under another; staff use Zoom. On SIGUSR1 the resolver
// ends its period and sends the report with its department's reader
// token; the department's usage on the registry then shows the domain the
// six asked, not the one the three asked, and the hits on *.zoom.us. No
// client address is in the registry's database, either process's log, or
// the resolver's cache directory.
func TestUsageReportsReachRealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two processes")
	}
	dir, db, reg, pub := seededRegistry(t)
	token := func(role string) string {
		out, errOut, code := cli(t, "token", "create", "--db", db, "--role", role, "--department", "hmrc", "--name", "usage-"+role)
		if code != 0 {
			t.Fatalf("token create --role %s: %s", role, errOut)
		}
		return lastLine(out)
	}
	reader, owner := token("reader"), token("owner")
	up := startUpstream(t)
	conf := writeResolverConfig(t, filepath.Join(dir, "resolver.yaml"), reg.url, pub, filepath.Join(dir, "cache"), up,
		"token: "+reader+"\nmode: monitor\nlog_level: debug\nreport:\n  every: 1h\n  k: 5\n  department: hmrc\n")
	res, resLog, udp, metrics := startResolverProc(t, conf)
	ask := func(from, name string) *dns.Msg {
		t.Helper()
		c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		resp, _, err := c.Exchange(m, udp)
		if err != nil {
			t.Fatalf("%s from %s: %v", name, from, err)
		}
		return resp
	}
	for deadline := time.Now().Add(5 * time.Second); metric(t, metrics, "allowlist_resolver_list_version") < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the resolver never loaded the seeded common list")
		}
	}
	var clients []string
	for i := 2; i <= 7; i++ {
		c := fmt.Sprintf("127.0.0.%d", i)
		clients = append(clients, c)
		// Monitor mode: answered, and counted as would-be blocked.
		if resp := ask(c, fmt.Sprintf("tool%d.unlisted-tool.co.uk", i)); resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("monitor mode answers every name: %s", resp)
		}
		if i < 5 {
			ask(c, "app.three-people.com")
		}
		ask(c, "us02web.zoom.us")
	}

	res.Process.Signal(syscall.SIGUSR1)
	var view struct {
		Reports *int `json:"reports"`
		Refused []struct {
			Domain  string `json:"domain"`
			Queries int64  `json:"queries"`
			Clients int    `json:"clients"`
		} `json:"refused"`
		Entries []struct {
			Pattern string `json:"pattern"`
			Hits    int64  `json:"hits"`
		} `json:"entries"`
	}
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var c int
		c, body = reg.call(t, "GET", "/v1/departments/hmrc/usage", owner, "")
		if c != http.StatusOK {
			t.Fatalf("GET usage: %d %s", c, body)
		}
		if err := json.Unmarshal(body, &view); err != nil {
			t.Fatal(err)
		}
		if view.Reports != nil && *view.Reports > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report reached the registry:\n%s\nresolver log:\n%s", body, resLog.String())
		}
	}
	if len(view.Refused) != 1 || view.Refused[0].Domain != "unlisted-tool.co.uk" || view.Refused[0].Clients != 5 || view.Refused[0].Queries != 10 {
		t.Errorf("refused: want unlisted-tool.co.uk, 10 queries (6 rounded up), 5 clients (6 rounded down), alone:\n%s", body)
	}
	zoom := false
	for _, e := range view.Entries {
		zoom = zoom || e.Pattern == "*.zoom.us" && e.Hits == 10
	}
	if !zoom {
		t.Errorf("entries: want *.zoom.us with 10 hits:\n%s", body)
	}
	// The owner's page shows the refused domain with a propose button.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	get := func(u string) string {
		r, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(get(reg.url + "/sign-in"))
	if r, err := hc.PostForm(reg.url+"/sign-in", url.Values{"_csrf": {csrf[1]}, "token": {owner}}); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	page := get(reg.url + "/owner")
	if !strings.Contains(page, "What staff here tried to reach this month") || !strings.Contains(page, "<code>unlisted-tool.co.uk</code>") ||
		!strings.Contains(page, `name="domain" value="unlisted-tool.co.uk"`) {
		t.Errorf("the owner's page does not show the refused domain with a propose button")
	}
	if metric(t, metrics, "allowlist_resolver_usage_reports_sent_total") != 1 {
		t.Errorf("usage_reports_sent_total is not 1")
	}

	// No client address anywhere either process wrote.
	reg.cmd.Process.Kill()
	reg.cmd.Wait()
	res.Process.Signal(syscall.SIGTERM)
	res.Wait()
	places := map[string][]byte{"registry log": reg.stderr.Bytes(), "resolver log": []byte(resLog.String()), "report view": body}
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && path != conf {
			b, _ := os.ReadFile(path)
			places[path] = b
		}
		return nil
	})
	if !strings.Contains(resLog.String(), "list installed") || places[db] == nil {
		t.Fatalf("expected the logs and the database to search; have %d places", len(places))
	}
	for what, b := range places {
		for _, c := range clients {
			ip := netip.MustParseAddr(c)
			raw4, raw16 := ip.As4(), ip.As16()
			if strings.Contains(string(b), c) || strings.Contains(string(b), string(raw4[:])) || strings.Contains(string(b), string(raw16[:])) {
				t.Errorf("%s holds the client address %s", what, c)
			}
		}
	}
}

// metric reads one unlabelled metric from a /metrics endpoint (-1: absent).
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	if v, ok := metricsOf(t, addr)[name]; ok {
		return v
	}
	return -1
}

// TestReportConfigMistakes: a report: section that cannot work stops the
// resolver at start, naming the key.
func TestReportConfigMistakes(t *testing.T) {
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32)) // any 32 bytes pass the config check
	for _, c := range []struct{ extra, want string }{
		{"token: t\nreport:\n  every: 30s\n  department: hmrc\n", "report.every"},
		{"token: t\nreport:\n  k: 1\n  department: hmrc\n", "report.k"},
		{"token: t\nreport:\n  every: 15m\n", "report.department"},
		{"report:\n  department: hmrc\n", "token"},
		{"token: t\nreport:\n  department: hmrc\n  clients: 3\n", "clients"},
	} {
		p := filepath.Join(dir, "bad.yaml")
		os.WriteFile(p, []byte("listen: 127.0.0.1:0\nregistry: http://127.0.0.1:1\npublic_key: "+key+"\ncache_dir: "+dir+
			"\nmetrics_listen: 127.0.0.1:0\n"+c.extra), 0o644)
		if _, errOut, code := cli(t, "resolve", "--config", p); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, %q", c.extra, code, errOut)
		}
	}
}
