package consumers

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// allowlistBinary builds cmd/allowlist once for the suite.
func allowlistBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "allowlist-consumers")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "allowlist")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/allowlist").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// liveRegistry is a running `allowlist serve --seed` on a loopback port.
type liveRegistry struct {
	url, db, bin string
}

func startLiveRegistry(t *testing.T, dir string) *liveRegistry {
	t.Helper()
	bin := allowlistBinary(t)
	r := &liveRegistry{db: filepath.Join(dir, "registry.db"), bin: bin}
	cmd := exec.Command(bin, "serve", "--db", r.db, "--listen", "127.0.0.1:0", "--seed")
	out, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	rd := bufio.NewReader(out)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("registry did not start: %v\n%s", err, errb.String())
		}
		if after, ok := strings.CutPrefix(line, "registry listening on "); ok {
			r.url = strings.TrimSpace(after)
			go io.Copy(io.Discard, rd)
			return r
		}
	}
}

// token makes an owner token for a department with the CLI.
func (r *liveRegistry) token(t *testing.T, dept string) string {
	out := run(t, r.bin, "token", "create", "--db", r.db, "--role", "owner", "--department", dept, "--name", "owner-"+dept)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (r *liveRegistry) call(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (r *liveRegistry) must(t *testing.T, want int, method, path, token, body string) []byte {
	t.Helper()
	code, _, b := r.call(t, method, path, token, body)
	if code != want {
		t.Fatalf("%s %s: %d, want %d\n%s", method, path, code, want, b)
	}
	return b
}

// schema2 fetches common's schema-2 body, checks its signature, and
// returns it parsed.
func (r *liveRegistry) schema2(t *testing.T, pub ed25519.PublicKey) allowlist.List {
	t.Helper()
	code, h, body := r.call(t, "GET", "/v1/lists/common?format=json&schema=2", "", "")
	if code != 200 {
		t.Fatalf("schema 2: %d %s", code, body)
	}
	if err := list.Verify(pub, body, h.Get("X-Allowlist-Signature")); err != nil {
		t.Fatalf("schema-2 signature: %v", err)
	}
	l, err := allowlist.ParseList(body)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func endpointOf(l allowlist.List, site string) (allowlist.Endpoint, bool) {
	for _, e := range l.Endpoints {
		if e.Site == site {
			return e, true
		}
	}
	return allowlist.Endpoint{}, false
}

// TestEndpointsFromProposalToConsumers: a site with networks and relaxed
// handling is proposed to the real registry, waits for its quorum, and
// then reaches every endpoint format; nft (in a network namespace of its
// own), Squid (ssl_bump splice) and pactester load what the registry
// serves and answer as the list says. Widening waits for a new quorum,
// narrowing applies at once, suspension removes everything; the
// schema-1 body stays what a resolver reads.
func TestEndpointsFromProposalToConsumers(t *testing.T) {
	nft, squid, pactester := realproc.Need(t, "nft"), realproc.Need(t, "squid"), realproc.Need(t, "pactester")
	unshare, openssl := realproc.Need(t, "unshare"), realproc.Need(t, "openssl")
	e := newEnv(t)
	r := startLiveRegistry(t, e.dir)
	var keys struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		}
	}
	json.Unmarshal(r.must(t, 200, "GET", "/v1/keys", "", ""), &keys)
	pubBytes, _ := base64.StdEncoding.DecodeString(keys.Keys[0].PublicKey)
	pub := ed25519.PublicKey(pubBytes)
	a, b := r.token(t, "cabinet-office"), r.token(t, "hm-treasury")

	// The seed's vendors are there already, with their handling.
	seeded := r.schema2(t, pub)
	for _, site := range []string{"microsoft-teams", "zoom", "google-meet"} {
		if _, ok := endpointOf(seeded, site); !ok {
			t.Errorf("seeded common has no endpoints for %s", site)
		}
	}

	// A bad network is a 422 naming the field; nothing is created.
	code, _, body := r.call(t, "POST", "/v1/sites", a, `{"id":"jitsi","name":"Jitsi","category":"video-conferencing","domains":["meet.jit.si"],
		"networks":[{"prefix":"10.0.0.0/8","protocol":"udp","ports":"10000"}],"owner":{"name":"Jitsi team"}}`)
	if code != 422 || !strings.Contains(string(body), `"networks[0].prefix"`) {
		t.Fatalf("private prefix: %d %s", code, body)
	}
	r.must(t, 404, "GET", "/v1/sites/jitsi", "", "")

	// Proposal, then quorum.
	r.must(t, 201, "POST", "/v1/sites", a, `{"id":"jitsi","name":"Jitsi","category":"video-conferencing","domains":["meet.jit.si","*.jitsi.net"],
		"networks":[{"prefix":"185.66.0.0/16","protocol":"udp","ports":"10000"},{"prefix":"2a0b:4d00::/32","protocol":"tcp","ports":"443,4443"}],
		"handling":{"tls_inspection":"bypass","proxy":"direct"},"notes":"Calls have no audio or video without UDP 10000","owner":{"name":"Jitsi team"}}`)
	r.must(t, 200, "PUT", "/v1/sites/jitsi/signoffs/cabinet-office", a, `{"decision":"approve"}`)
	if _, ok := endpointOf(r.schema2(t, pub), "jitsi"); ok {
		t.Fatal("one approval published the endpoints")
	}
	r.must(t, 200, "PUT", "/v1/sites/jitsi/signoffs/hm-treasury", b, `{"decision":"approve"}`)
	l := r.schema2(t, pub)
	jitsi, ok := endpointOf(l, "jitsi")
	if !ok || len(jitsi.Networks) != 2 || jitsi.Handling.Proxy != "direct" || jitsi.Notes == "" {
		t.Fatalf("after quorum: %+v", jitsi)
	}

	// The schema-1 body of the same version: what every resolver reads
	// (the strict stream reader), verified by its own signature.
	code, h, body1 := r.call(t, "GET", "/v1/lists/common", "", "")
	if code != 200 || bytes.Contains(body1, []byte(`"endpoints"`)) {
		t.Fatalf("schema 1: %d has endpoints", code)
	}
	if err := list.Verify(pub, body1, h.Get("X-Allowlist-Signature")); err != nil {
		t.Fatal(err)
	}
	if hdr, _, err := allowlist.ReadList(bytes.NewReader(body1), func(string, bool) error { return nil }); err != nil || hdr.Version != l.Version {
		t.Fatalf("the resolver's reader: %v (version %d, schema 2 at %d)", err, hdr.Version, l.Version)
	}

	// Every endpoint format, as the registry serves it, in its consumer.
	get := func(q string) string {
		return string(r.must(t, 200, "GET", "/v1/lists/common?"+q, "", ""))
	}
	nftFile := writeFile(t, e.dir, "list.nft", get("format=nft"))
	run(t, unshare, "-n", nft, "-c", "-f", nftFile)
	// askNftAfter runs the shell commands load in a network namespace of
	// its own, then asks whether the sets hold addr . proto . port.
	askNftAfter := func(load, addr, proto string, port int) bool {
		set := "endpoints_v4"
		if netip.MustParseAddr(addr).Is6() {
			set = "endpoints_v6"
		}
		script := fmt.Sprintf("%s && %s get element inet allowlist %s '{ %s . %s . %d }'", load, nft, set, addr, proto, port)
		_, err := output(unshare, "-n", "sh", "-c", script)
		return err == nil
	}
	askNft := func(addr, proto string, port int) bool {
		return askNftAfter(nft+" -f "+nftFile, addr, proto, port)
	}
	for _, c := range []struct {
		addr, proto string
		port        int
		want        bool
	}{
		{"185.66.3.4", "udp", 10000, true}, {"185.66.3.4", "udp", 10001, false}, {"185.66.3.4", "tcp", 10000, false},
		{"185.67.0.1", "udp", 10000, false}, {"2a0b:4d00::1", "tcp", 4443, true}, {"2a0b:4d00::1", "tcp", 80, false},
		{"52.112.1.1", "udp", 3478, true}, {"52.112.1.1", "udp", 3482, false}, {"74.125.250.1", "udp", 19305, true},
		{"2603:1063::1", "udp", 3481, true}, {"8.8.8.8", "udp", 3478, false},
	} {
		if got := askNft(c.addr, c.proto, c.port); got != c.want {
			t.Errorf("nft: %s %s/%d allowed=%v, want %v", c.addr, c.proto, c.port, got, c.want)
		}
		// The registry's own check agrees with nft.
		var res struct{ Allowed bool }
		json.Unmarshal(r.must(t, 200, "GET", fmt.Sprintf("/v1/check?ip=%s&port=%s/%d", c.addr, c.proto, c.port), "", ""), &res)
		if res.Allowed != c.want {
			t.Errorf("check %s %s/%d: %v, want %v", c.addr, c.proto, c.port, res.Allowed, c.want)
		}
	}

	// Squid: the bypass list in an ssl_bump splice configuration.
	bypass := writeFile(t, e.dir, "tls-bypass.txt", get("format=squid-tls-bypass"))
	for _, want := range []string{"\nmeet.jit.si\n", "\n.jitsi.net\n", "\n.teams.microsoft.com\n", "\nmeet.google.com\n"} {
		if !strings.Contains("\n"+readFile(t, bypass), want) {
			t.Errorf("squid-tls-bypass lacks %q", want)
		}
	}
	if strings.Contains(readFile(t, bypass), "zoom") {
		t.Error("zoom, whose handling allows inspection, is in the bypass list")
	}
	ca := filepath.Join(e.dir, "bump-ca.pem")
	run(t, openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=allowlist test bump CA",
		"-keyout", ca, "-out", ca)
	spliced := askSplice(t, e, squid, bypass, ca, []string{"meet.jit.si", "x.jitsi.net", "www.example.com"})
	for host, want := range map[string]bool{"meet.jit.si": true, "x.jitsi.net": true, "www.example.com": false} {
		got, err := spliced(host)
		if err != nil || got != want {
			t.Errorf("squid ssl_bump, %s: spliced=%v %v, want spliced=%v", host, got, err, want)
		}
	}

	// PAC with the department's proxy: DIRECT for proxy: direct sites.
	pac := writeFile(t, e.dir, "proxy.pac", get("format=pac&proxy=proxy.example.gov.uk:3128"))
	for host, want := range map[string]string{
		"meet.jit.si": "DIRECT", "x.jitsi.net": "DIRECT", "x.teams.microsoft.com": "DIRECT", "meet.google.com": "DIRECT",
		"us02web.zoom.us": "PROXY proxy.example.gov.uk:3128", "www.example.com": "PROXY proxy.example.gov.uk:3128",
	} {
		got, err := output(pactester, "-p", pac, "-u", "https://"+host+"/", "-h", host)
		if err != nil || strings.TrimSpace(got) != want {
			t.Errorf("pactester %s: %q %v, want %q", host, got, err, want)
		}
	}

	// edl-ip: one canonical prefix a line; endpoints: one record per site.
	edl := get("format=edl-ip")
	for _, line := range strings.Split(strings.TrimSpace(edl), "\n") {
		prefix, _, _ := strings.Cut(line, " ")
		if p, err := netip.ParsePrefix(prefix); err != nil || p.Masked() != p {
			t.Errorf("edl-ip line %q", line)
		}
	}
	for _, want := range []string{"185.66.0.0/16 jitsi udp/10000\n", "2a0b:4d00::/32 jitsi tcp/443; jitsi tcp/4443\n", "52.112.0.0/14 microsoft-teams tcp/80; microsoft-teams tcp/443; microsoft-teams udp/443; microsoft-teams udp/3478-3481\n"} {
		if !strings.Contains(edl, want) {
			t.Errorf("edl-ip lacks %q:\n%s", want, edl)
		}
	}
	var doc allowlist.EndpointsDocument
	if err := json.Unmarshal([]byte(get("format=endpoints")), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range doc.Sites {
		if s.Site == "jitsi" {
			found = len(s.Domains) == 2 && len(s.Networks) == 2 && s.Handling.TLSInspection == "bypass" && s.Notes != ""
		}
	}
	if !found || doc.Version != l.Version {
		t.Errorf("endpoints document: %+v", doc)
	}

	// The CLI asks by address and port.
	if out, err := output(r.bin, "check", "52.112.1.1", "--port", "udp/3478", "--registry", r.url); err != nil || !strings.Contains(out, "ALLOWED") || !strings.Contains(out, "Microsoft Teams") {
		t.Errorf("check 52.112.1.1 udp/3478: %v\n%s", err, out)
	}
	if out, err := output(r.bin, "check", "52.112.1.1", "--port", "udp/9", "--registry", r.url); err == nil || !strings.Contains(out, "NOT") {
		t.Errorf("check 52.112.1.1 udp/9: %v\n%s", err, out)
	}

	// Widening waits for a new quorum: the new prefix is not published,
	// the old ones stay.
	version := l.Version
	r.must(t, 200, "PATCH", "/v1/sites/jitsi", a, `{"networks":[{"prefix":"185.66.0.0/16","protocol":"udp","ports":"10000"},{"prefix":"2a0b:4d00::/32","protocol":"tcp","ports":"443,4443"},{"prefix":"146.0.0.0/16","protocol":"udp","ports":"10000"}]}`)
	if l := r.schema2(t, pub); l.Version != version {
		t.Errorf("widening published version %d", l.Version)
	} else if j, _ := endpointOf(l, "jitsi"); len(j.Networks) != 2 {
		t.Errorf("widening changed the published networks: %+v", j)
	}
	r.must(t, 200, "PUT", "/v1/sites/jitsi/signoffs/cabinet-office", a, `{"decision":"approve"}`)
	r.must(t, 200, "PUT", "/v1/sites/jitsi/signoffs/hm-treasury", b, `{"decision":"approve"}`)
	l = r.schema2(t, pub)
	if j, _ := endpointOf(l, "jitsi"); len(j.Networks) != 3 || l.Version != version+1 {
		t.Errorf("after the new quorum: version %d, %+v", l.Version, j)
	}
	var diff struct {
		NetworksAdded []allowlist.SiteNetwork `json:"networks_added"`
	}
	json.Unmarshal(r.must(t, 200, "GET", fmt.Sprintf("/v1/lists/common/diff?from=%d&to=%d", version, version+1), "", ""), &diff)
	if len(diff.NetworksAdded) != 1 || diff.NetworksAdded[0].Prefix != "146.0.0.0/16" {
		t.Errorf("diff: %+v", diff)
	}

	// Narrowing (a prefix and the relaxed proxy handling gone) applies at once.
	r.must(t, 200, "PATCH", "/v1/sites/jitsi", a, `{"networks":[{"prefix":"185.66.0.0/16","protocol":"udp","ports":"10000"}],"handling":{"tls_inspection":"bypass","proxy":"proxy"}}`)
	l = r.schema2(t, pub)
	if j, _ := endpointOf(l, "jitsi"); len(j.Networks) != 1 || j.Handling.Proxy != "proxy" || l.Version != version+2 {
		t.Errorf("after narrowing: version %d, %+v", l.Version, j)
	}
	var diff2 struct {
		NetworksRemoved []allowlist.SiteNetwork    `json:"networks_removed"`
		HandlingChanged []allowlist.HandlingChange `json:"handling_changed"`
	}
	json.Unmarshal(r.must(t, 200, "GET", fmt.Sprintf("/v1/lists/common/diff?from=%d", version+1), "", ""), &diff2)
	if len(diff2.NetworksRemoved) != 2 || len(diff2.HandlingChanged) != 1 {
		t.Errorf("narrowing diff: %+v", diff2)
	}

	// A firewall takes each new version as the nft file's header says:
	// load it, add its own base chain (its policy) to the table, and load
	// every later version the same way. The later version must replace the
	// sets' elements and leave that base chain in place: without it
	// nothing filters at all.
	setup := headerCommands(t, nftFile, nft)
	nextFile := writeFile(t, e.dir, "list-next.nft", get("format=nft"))
	upgrade := fmt.Sprintf("%s -f %s && %s && %s -f %s", nft, nftFile, strings.Join(setup, " && "), nft, nextFile)
	if out, err := output(unshare, "-n", "sh", "-c", upgrade+" && "+nft+" list chain inet allowlist forward"); err != nil ||
		!strings.Contains(out, "policy drop") || !strings.Contains(out, "jump endpoints") {
		t.Errorf("loading the next version as the nft header says took away the base chain: %v\n%s", err, out)
	}
	for _, c := range []struct {
		addr, proto string
		port        int
		want        bool
	}{{"185.66.3.4", "udp", 10000, true}, {"2a0b:4d00::1", "tcp", 4443, false}, {"52.112.1.1", "udp", 3478, true}} {
		if got := askNftAfter(upgrade, c.addr, c.proto, c.port); got != c.want {
			t.Errorf("nft after the next version: %s %s/%d allowed=%v, want %v", c.addr, c.proto, c.port, got, c.want)
		}
	}
	// And packets: a router in a network namespace forwards between a
	// client and Teams' and Jitsi's addresses with both versions loaded
	// and the header's commands run, as above. A listed flow gets its
	// replies (a call works); an unlisted port gets nothing through.
	path := newForwardPath(t, "52.112.1.1", "185.66.3.4")
	for _, ep := range []struct {
		addr string
		port int
	}{{"52.112.1.1", 3478}, {"52.112.1.1", 9999}, {"185.66.3.4", 10000}, {"185.66.3.4", 10001}} {
		path.echoUDP(t, ep.addr, ep.port)
	}
	path.routerShell(t, upgrade)
	for _, c := range []struct {
		addr string
		port int
		want bool
	}{{"52.112.1.1", 3478, true}, {"52.112.1.1", 9999, false}, {"185.66.3.4", 10000, true}, {"185.66.3.4", 10001, false}} {
		if got := path.udpAnswered(t, c.addr, c.port); got != c.want {
			t.Errorf("through the nft firewall set up as the header says: udp %s:%d answered=%v, want %v", c.addr, c.port, got, c.want)
		}
	}

	// Suspension removes everything.
	admin := strings.TrimSpace(run(t, r.bin, "token", "create", "--db", r.db, "--role", "admin", "--name", "admin-test"))
	admin = admin[strings.LastIndex(admin, "\n")+1:]
	r.must(t, 200, "POST", "/v1/sites/jitsi/suspend", admin, `{"reason":"testing"}`)
	if _, ok := endpointOf(r.schema2(t, pub), "jitsi"); ok {
		t.Error("a suspended site's endpoints are still published")
	}
}
