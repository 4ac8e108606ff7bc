package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestZoneTransferWithRealRegistry runs `allowlist serve --dns-listen` and
// `allowlist tsig create` as a department would: a key from the command
// line and one from the admin API each transfer the zone, a suspension
// sends a NOTIFY within a second, and bad input changes nothing.
func TestZoneTransferWithRealRegistry(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "reg.db")

	out, _, code := cli(t, "tsig", "create", "--db", db, "--name", "dept-xfr", "--scope", "common")
	name, secret, ok := strings.Cut(lastLine(out), ":")
	if code != 0 || !ok || name != "dept-xfr" {
		t.Fatalf("tsig create: %q exit %d", out, code)
	}
	if raw, err := base64.StdEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", secret, len(raw), err)
	}
	for _, bad := range [][]string{{"--name", "Not A Name"}, {"--name", "dept-xfr"}, {"--name", "other", "--scope", "no-such-dept"}, {}} {
		if _, stderr, code := cli(t, append([]string{"tsig", "create", "--db", db}, bad...)...); code == 0 || stderr == "" {
			t.Errorf("tsig create %v: exit %d, %q", bad, code, stderr)
		}
	}
	if out, _, _ := cli(t, "tsig", "list", "--db", db); strings.Count(out, "\n") != 1 || !strings.Contains(out, "dept-xfr\tcommon\tactive") || strings.Contains(out, secret) {
		t.Fatalf("tsig list after refused creates: %q", out)
	}

	// A NOTIFY target: answers each NOTIFY and records its serial.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	notified := make(chan uint32, 16)
	go dns.ActivateAndServe(nil, pc, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		w.WriteMsg(m)
		if r.Opcode == dns.OpcodeNotify && r.Question[0].Name == "common.rpz.allowlist." && len(r.Answer) == 1 {
			notified <- r.Answer[0].(*dns.SOA).Serial
		}
	}))
	t.Cleanup(func() { pc.Close() })

	dnsAddr := freeUDPTCP(t)
	reg := startRegistry(t, db, "--seed", "--dns-listen", dnsAddr, "--notify", pc.LocalAddr().String())
	axfr := func(key, secret string) ([]dns.RR, error) {
		m := new(dns.Msg)
		m.SetAxfr("common.rpz.allowlist.")
		m.SetTsig(key+".", dns.HmacSHA256, 300, time.Now().Unix())
		ch, err := (&dns.Transfer{ReadTimeout: time.Minute, TsigSecret: map[string]string{key + ".": secret}}).In(m, dnsAddr)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return nil, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		return rrs, nil
	}
	rrs, err := axfr(name, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, rpz := reg.call(t, "GET", "/v1/lists/common?format=rpz", "", "")
	if want := strings.Count(string(rpz), "CNAME rpz-passthru."); len(rrs) != want+3 {
		t.Errorf("AXFR: %d records, ?format=rpz has %d passthru records (+ SOA, NS, SOA)", len(rrs), want)
	}

	// The admin API: a key's secret is shown once and never listed.
	if code, _ := reg.call(t, "POST", "/v1/tsig-keys", "", `{"name":"api-key"}`); code != 401 {
		t.Errorf("anonymous key creation: %d", code)
	}
	code, body := reg.call(t, "POST", "/v1/tsig-keys", reg.admin, `{"name":"api-key","scopes":["common"]}`)
	var created struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Secret    string `json:"secret"`
	}
	if code != 201 || json.Unmarshal(body, &created) != nil || created.Secret == "" || created.Algorithm != "hmac-sha256" {
		t.Fatalf("create key: %d %s", code, body)
	}
	if code, body := reg.call(t, "POST", "/v1/tsig-keys", reg.admin, `{"name":"bad name!"}`); code != 422 {
		t.Errorf("bad key name: %d %s", code, body)
	}
	_, listed := reg.call(t, "GET", "/v1/tsig-keys", reg.admin, "")
	if strings.Contains(string(listed), created.Secret) || strings.Contains(string(listed), secret) || !strings.Contains(string(listed), `"api-key"`) {
		t.Errorf("key list: %s", listed)
	}
	var apiRRs []dns.RR
	waitUntil(t, 3*time.Second, "the API's key transfers", func() bool {
		apiRRs, err = axfr("api-key", created.Secret)
		return err == nil
	})
	if len(apiRRs) != len(rrs) {
		t.Errorf("API key AXFR: %d records, CLI key %d", len(apiRRs), len(rrs))
	}

	// A suspension reaches the NOTIFY target within a second.
	_, sites := reg.call(t, "GET", "/v1/sites?status=approved", "", "")
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(sites, &list); err != nil || len(list) == 0 {
		t.Fatalf("sites: %s", sites)
	}
	for len(notified) > 0 {
		<-notified // the NOTIFYs sent at start
	}
	start := time.Now()
	if code, body := reg.call(t, "POST", "/v1/sites/"+list[0].ID+"/suspend", reg.admin, `{"reason":"test"}`); code != 200 {
		t.Fatalf("suspend: %d %s", code, body)
	}
	select {
	case serial := <-notified:
		if serial != uint32(rrs[0].(*dns.SOA).Serial)+1 {
			t.Errorf("NOTIFY with serial %d after version %d", serial, rrs[0].(*dns.SOA).Serial)
		}
		t.Logf("NOTIFY after %v", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("no NOTIFY within 1 s of a suspension")
	}

	if code, _ := reg.call(t, "DELETE", "/v1/tsig-keys/"+strconv.FormatInt(created.ID, 10), reg.admin, ""); code != 204 {
		t.Errorf("revoke: %d", code)
	}
	waitUntil(t, 3*time.Second, "the revoked key refused", func() bool {
		_, err := axfr("api-key", created.Secret)
		return err != nil
	})
	_, metrics := reg.call(t, "GET", "/metrics", "", "")
	for _, want := range []string{`allowlist_zone_transfers_total{result="full",type="axfr"}`, `allowlist_zone_notifies_total{result="answered"}`, `allowlist_zone_tsig_requests_total{key="1",result="ok"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(metrics), "dept-xfr") || strings.Contains(string(metrics), "api-key") {
		t.Error("the public metrics name a TSIG key")
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < within; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %v", what, within)
}

// freeUDPTCP returns a loopback address free for both UDP and TCP.
func freeUDPTCP(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func TestZoneConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(path, []byte(`dns_listen: 127.0.0.1:5300
rpz_suffix: rpz.example.gov.uk.
notify:
  - 192.0.2.53:53
  - target: 192.0.2.54:53
    scopes: [dept-a]
xfr_unsigned_from: [192.0.2.55/32]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultServeConfig()
	if err := loadYAML(path, &cfg); err != nil {
		t.Fatal(err)
	}
	z := cfg.ZoneConfig
	if z.DNSListen != "127.0.0.1:5300" || z.RPZSuffix != "rpz.example.gov.uk." || len(z.Notify) != 2 ||
		z.Notify[0].Addr != "192.0.2.53:53" || len(z.Notify[0].Scopes) != 0 ||
		z.Notify[1].Addr != "192.0.2.54:53" || strings.Join(z.Notify[1].Scopes, ",") != "dept-a" || z.XFRUnsignedFrom[0] != "192.0.2.55/32" {
		t.Errorf("parsed %+v", z)
	}
	if err := os.WriteFile(path, []byte("notify:\n  - scopes: [dept-a]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadYAML(path, &cfg); err == nil || !strings.Contains(err.Error(), "target") {
		t.Errorf("notify entry without target: %v", err)
	}
}

// TestTSIGCreateLeavesNoFiles: a refused key on a new database path leaves
// nothing behind, as token create does.
func TestTSIGCreateLeavesNoFiles(t *testing.T) {
	db := filepath.Join(t.TempDir(), "new.db")
	if _, _, code := cli(t, "tsig", "create", "--db", db, "--name", "Bad Name"); code == 0 {
		t.Fatal("bad name accepted")
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("%s created by a refused tsig create", db)
	}
}
