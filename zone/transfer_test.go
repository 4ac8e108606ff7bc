package zone_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/zone"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// xfr runs a zone transfer of scope against the server with a TSIG key
// (name and base64 secret; none when name is empty). For IXFR, serial is
// the client's. It returns the records, or the error the transfer ended
// with.
func (e *env) xfr(qtype uint16, scope string, serial uint32, name, secret string) ([]dns.RR, error) {
	m := new(dns.Msg)
	origin := scope + ".rpz.allowlist."
	if qtype == dns.TypeIXFR {
		m.SetIxfr(origin, serial, "localhost.", "hostmaster.localhost.")
	} else {
		m.SetAxfr(origin)
	}
	// A zone is built before its first message: allow for a slow machine.
	tr := &dns.Transfer{ReadTimeout: time.Minute}
	if name != "" {
		m.SetTsig(dns.Fqdn(name), dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{dns.Fqdn(name): secret}
	}
	ch, err := tr.In(m, e.zs.Addr())
	if err != nil {
		return nil, err
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			return out, env.Error
		}
		out = append(out, env.RR...)
	}
	return out, nil
}

// exchange sends one message over net ("udp" or "tcp") and returns the
// answer.
func (e *env) exchange(t *testing.T, net string, m *dns.Msg, secret map[string]string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second, TsigSecret: secret}
	r, _, err := c.Exchange(m, e.zs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTransferNeedsAValidKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	k, secret, err := e.db.CreateTSIGKey(ctx, allowlist.System, "dept-a-only", []string{"dept-a"})
	if err != nil {
		t.Fatal(err)
	}
	deptKey := base64.StdEncoding.EncodeToString(secret)
	wrong := base64.StdEncoding.EncodeToString(make([]byte, 32))

	for _, c := range []struct {
		what          string
		qtype         uint16
		scope         string
		name, secret  string
		wantRcode     int
		wantTSIGError uint16
		skew          time.Duration
	}{
		{"no key", dns.TypeAXFR, "common", "", "", dns.RcodeRefused, 0, 0},
		{"no key, IXFR", dns.TypeIXFR, "common", "", "", dns.RcodeRefused, 0, 0},
		{"wrong secret", dns.TypeAXFR, "common", e.keyName, wrong, dns.RcodeNotAuth, dns.RcodeBadSig, 0},
		{"unknown key", dns.TypeAXFR, "common", "nobody", wrong, dns.RcodeNotAuth, dns.RcodeBadKey, 0},
		{"right secret, clock an hour slow", dns.TypeAXFR, "common", e.keyName, e.keySecret, dns.RcodeNotAuth, dns.RcodeBadTime, -time.Hour},
		{"key for another scope", dns.TypeAXFR, "common", k.Name, deptKey, dns.RcodeRefused, 0, 0},
		{"key for another scope, IXFR", dns.TypeIXFR, "dept-b", k.Name, deptKey, dns.RcodeRefused, 0, 0},
	} {
		m := new(dns.Msg)
		if c.qtype == dns.TypeIXFR {
			m.SetIxfr(c.scope+".rpz.allowlist.", 1, "localhost.", "hostmaster.localhost.")
		} else {
			m.SetAxfr(c.scope + ".rpz.allowlist.")
		}
		if c.name != "" {
			m.SetTsig(dns.Fqdn(c.name), dns.HmacSHA256, 300, time.Now().Add(c.skew).Unix())
		}
		// Send unsigned bytes for the bad cases by packing ourselves: the
		// client library would refuse to verify the NOTAUTH answer.
		r := rawExchange(t, e.zs.Addr(), m, c.name, c.secret)
		if r.Rcode != c.wantRcode {
			t.Errorf("%s: rcode %s, want %s", c.what, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.wantRcode])
		}
		if len(r.Answer) != 0 {
			t.Errorf("%s: %d records in a refusal", c.what, len(r.Answer))
		}
		if c.wantTSIGError != 0 {
			if ts := r.IsTsig(); ts == nil || ts.Error != c.wantTSIGError {
				t.Errorf("%s: TSIG error %v, want %s", c.what, ts, dns.RcodeToString[int(c.wantTSIGError)])
			} else if c.wantTSIGError == dns.RcodeBadTime && len(ts.OtherData) != 12 {
				t.Errorf("%s: BADTIME without the server's time: %q", c.what, ts.OtherData)
			}
		}
	}
	// The scoped key transfers its own scope.
	if rrs, err := e.xfr(dns.TypeAXFR, "dept-a", 0, k.Name, deptKey); err != nil || len(rrs) < 3 {
		t.Errorf("dept-a with its key: %d records, %v", len(rrs), err)
	}
	// AXFR over UDP is refused even with a key.
	m := new(dns.Msg)
	m.SetAxfr("common.rpz.allowlist.")
	m.SetTsig(dns.Fqdn(e.keyName), dns.HmacSHA256, 300, time.Now().Unix())
	if r := e.exchange(t, "udp", m, map[string]string{dns.Fqdn(e.keyName): e.keySecret}); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %s", dns.RcodeToString[r.Rcode])
	}
	// A revoked key stops working within a second or so.
	if err := e.db.RevokeTSIGKey(ctx, allowlist.System, k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "revoked key refused", func() (bool, error) {
		_, err := e.xfr(dns.TypeAXFR, "dept-a", 0, k.Name, deptKey)
		return err != nil, nil
	})
	if got := testutil.ToFloat64(transfers(e, "axfr", "refused")) + testutil.ToFloat64(transfers(e, "axfr", "notauth")); got < 4 {
		t.Errorf("refused AXFRs counted %v, want at least 4", got)
	}
	// Refusals are in the audit log (one per key and client a minute).
	waitFor(t, 3*time.Second, "refusals audited", func() (bool, error) {
		audit, err := e.db.FindAudit(ctx, 0, 1000)
		n := 0
		for _, a := range audit {
			if a.Action == "zone.transfer_refused" {
				n++
			}
		}
		return n >= 3, err
	})
}

// rawExchange sends m over TCP, signed with name/secret when given, and
// reads the answer without verifying its TSIG.
func rawExchange(t *testing.T, addr string, m *dns.Msg, name, secret string) *dns.Msg {
	t.Helper()
	var b []byte
	var err error
	if name != "" {
		b, _, err = dns.TsigGenerate(m, secret, "", false)
	} else {
		b, err = m.Pack()
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	co := &dns.Conn{Conn: conn}
	if _, err := co.Write(b); err != nil {
		t.Fatal(err)
	}
	raw, err := co.ReadMsgHeader(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAXFRMatchesRPZFormat: the zone holds exactly the records of the list
// rendered ?format=rpz.
func TestAXFRMatchesRPZFormat(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.approve("wiki", "*.wiki.example.net", "wiki.example.net", "files.example.net")
	for _, scope := range []string{"common", "dept-a"} {
		v, err := e.db.FindVersion(ctx, scope, allowlist.Latest)
		if err != nil {
			t.Fatal(err)
		}
		l, err := allowlist.DecodeList(v.Whole())
		if err != nil {
			t.Fatal(err)
		}
		f, _ := allowlist.FindFormat("rpz")
		origin := scope + ".rpz.allowlist."
		var want []string
		rendered, err := f.Render(l, v.Whole())
		if err != nil {
			t.Fatal(err)
		}
		zp := dns.NewZoneParser(strings.NewReader(string(rendered)), origin, "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			want = append(want, rr.String())
		}
		if err := zp.Err(); err != nil {
			t.Fatal(err)
		}
		rrs, err := e.xfr(dns.TypeAXFR, scope, 0, e.keyName, e.keySecret)
		if err != nil {
			t.Fatal(err)
		}
		if len(rrs) < 2 || rrs[0].String() != rrs[len(rrs)-1].String() {
			t.Fatalf("%s: AXFR does not begin and end with the SOA", scope)
		}
		var got []string
		for _, rr := range rrs[:len(rrs)-1] {
			got = append(got, rr.String())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: AXFR\n%s\n?format=rpz\n%s", scope, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if soa := rrs[0].(*dns.SOA); int64(soa.Serial) != v.Version {
			t.Errorf("%s: serial %d, version %d", scope, soa.Serial, v.Version)
		}
	}
}

func TestIXFRSerials(t *testing.T) {
	e := newEnv(t, envOptions{})
	v := e.version("common")
	e.approve("chat", "chat.example.com")
	e.suspend("video")
	cur := uint32(v + 2)
	soaOnly := func(rrs []dns.RR) bool {
		s, ok := rrs[0].(*dns.SOA)
		return len(rrs) == 1 && ok && s.Serial == cur
	}
	for _, c := range []struct {
		what   string
		serial uint32
		check  func([]dns.RR) bool
	}{
		{"current", cur, soaOnly},
		// RFC 1995 2: a serial the same as or newer than ours gets our SOA.
		{"ahead", cur + 5, soaOnly},
		{"two behind", cur - 2, func(rrs []dns.RR) bool {
			// SOA new, SOA old, removed video, SOA new, added chat, SOA new.
			names := make([]string, len(rrs))
			for i, rr := range rrs {
				names[i] = rr.Header().Name + "/" + dns.TypeToString[rr.Header().Rrtype]
				if s, ok := rr.(*dns.SOA); ok {
					names[i] += fmt.Sprint(s.Serial)
				}
			}
			want := []string{"common.rpz.allowlist./SOA" + fmt.Sprint(cur), "common.rpz.allowlist./SOA" + fmt.Sprint(cur-2),
				"video.example.com.common.rpz.allowlist./CNAME", "common.rpz.allowlist./SOA" + fmt.Sprint(cur),
				"chat.example.com.common.rpz.allowlist./CNAME", "common.rpz.allowlist./SOA" + fmt.Sprint(cur)}
			if !slices.Equal(names, want) {
				t.Logf("got %v", names)
			}
			return slices.Equal(names, want)
		}},
	} {
		rrs, err := e.xfr(dns.TypeIXFR, "common", c.serial, e.keyName, e.keySecret)
		if err != nil || !c.check(rrs) {
			t.Errorf("IXFR from %s serial %d: %v (err %v)", c.what, c.serial, rrs, err)
		}
	}
	// Over UDP an IXFR gets the current SOA alone, which sends the client
	// to TCP.
	m := new(dns.Msg)
	m.SetIxfr("common.rpz.allowlist.", cur-1, "localhost.", "hostmaster.localhost.")
	m.SetTsig(dns.Fqdn(e.keyName), dns.HmacSHA256, 300, time.Now().Unix())
	r := e.exchange(t, "udp", m, map[string]string{dns.Fqdn(e.keyName): e.keySecret})
	if r.Rcode != dns.RcodeSuccess || !soaOnly(r.Answer) {
		t.Errorf("IXFR over UDP: %v", r)
	}
	// An IXFR without the client's SOA is malformed.
	m = new(dns.Msg)
	m.SetQuestion("common.rpz.allowlist.", dns.TypeIXFR)
	m.SetTsig(dns.Fqdn(e.keyName), dns.HmacSHA256, 300, time.Now().Unix())
	if r := e.exchange(t, "tcp", m, map[string]string{dns.Fqdn(e.keyName): e.keySecret}); r.Rcode != dns.RcodeFormatError {
		t.Errorf("IXFR without SOA: %s", dns.RcodeToString[r.Rcode])
	}
	// SOA over UDP needs no key; other names and lookups are refused.
	m = new(dns.Msg)
	m.SetQuestion("common.rpz.allowlist.", dns.TypeSOA)
	if r := e.exchange(t, "udp", m, nil); r.Rcode != dns.RcodeSuccess || !soaOnly(r.Answer) || !r.Authoritative {
		t.Errorf("SOA over UDP: %v", r)
	}
	for _, q := range []string{"nosuch.rpz.allowlist.", "example.com.", "chat.example.com.common.rpz.allowlist."} {
		m.SetQuestion(q, dns.TypeSOA)
		if r := e.exchange(t, "udp", m, nil); r.Rcode != dns.RcodeRefused {
			t.Errorf("SOA %s: %s", q, dns.RcodeToString[r.Rcode])
		}
	}
}

// TestLargeZone: a 100,000-entry zone goes by AXFR in messages each inside
// TCP DNS's limit, and one site added to it by IXFR as a handful of
// records.
func TestLargeZone(t *testing.T) {
	if testing.Short() {
		t.Skip("large zone")
	}
	e := newEnv(t, envOptions{})
	var c allowlist.Catalogue
	for i := range 500 {
		s := allowlist.CatalogueSite{ID: fmt.Sprintf("bulk-%d", i), Name: "Bulk", Category: "other", Owner: allowlist.Owner{Name: "Ops"},
			ProposedBy: "dept-a", Signoffs: []allowlist.CatalogueSignoff{{Department: "dept-a", Decision: "approve"}, {Department: "dept-b", Decision: "approve"}}}
		for j := range 200 {
			s.Domains = append(s.Domains, fmt.Sprintf("h%d.s%d.example.net", j, i))
		}
		c.Sites = append(c.Sites, s)
	}
	if err := e.db.Import(ctx, allowlist.System, c); err != nil {
		t.Fatal(err)
	}
	v := e.version("common")
	m := new(dns.Msg)
	m.SetAxfr("common.rpz.allowlist.")
	m.SetTsig(dns.Fqdn(e.keyName), dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{ReadTimeout: time.Minute, TsigSecret: map[string]string{dns.Fqdn(e.keyName): e.keySecret}}
	ch, err := tr.In(m, e.zs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	records, messages := 0, 0
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		records += len(env.RR)
		messages++
	}
	if want := 100_000 + 3 + 3; records != want { // bulk, video, docs (2); SOA, NS, SOA
		t.Errorf("AXFR of %d records, want %d", records, want)
	}
	if messages < 20 {
		t.Errorf("AXFR in %d messages: not streamed in bounded pieces", messages)
	}
	before := testutil.ToFloat64(e.zs.Metric("bytes", "ixfr"))
	e.approve("one-more", "one.example.org")
	rrs, err := e.xfr(dns.TypeIXFR, "common", uint32(v), e.keyName, e.keySecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 5 {
		t.Errorf("IXFR for one site added to 100k: %d records, want 5 (4 SOA + 1)", len(rrs))
	}
	if b := testutil.ToFloat64(e.zs.Metric("bytes", "ixfr")) - before; b > 1000 {
		t.Errorf("IXFR for one site: %v bytes", b)
	}
}

// forgetful is a registry that no longer has versions below keep, as a
// registry restored from an older backup, or pruned, would not.
type forgetful struct {
	*sqlite.DB
	keep int64
}

func (f forgetful) FindVersion(ctx context.Context, scope string, v int64) (allowlist.Version, error) {
	if v != allowlist.Latest && v < f.keep {
		return allowlist.Version{}, allowlist.Errorf(allowlist.ENOTFOUND, "scope %q has no version %d", scope, v)
	}
	return f.DB.FindVersion(ctx, scope, v)
}

// TestIXFRFromUnknownSerial: a serial the registry has no version for gets
// the whole zone (RFC 1995 4: AXFR form in answer to IXFR).
func TestIXFRFromUnknownSerial(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.approve("chat", "chat.example.com")
	cur := e.version("common")
	zs, err := zone.New(forgetful{e.db, cur}, zone.Config{Listen: realproc.FreeAddr(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := zs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zs.Close)
	e2 := *e
	e2.zs = zs
	full, err := e2.xfr(dns.TypeAXFR, "common", 0, e.keyName, e.keySecret)
	if err != nil {
		t.Fatal(err)
	}
	rrs, err := e2.xfr(dns.TypeIXFR, "common", uint32(cur-1), e.keyName, e.keySecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != len(full) || len(rrs) < 3 || rrs[1].Header().Rrtype != dns.TypeNS {
		t.Errorf("IXFR from a forgotten serial: %d records (AXFR has %d), second %v", len(rrs), len(full), rrs[1])
	}
	// The server counts a transfer once it has sent it: wait for the count.
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(zs.Metric("transfers", "ixfr", "full")) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(zs.Metric("transfers", "ixfr", "full")); got != 1 {
		t.Errorf("ixfr answered in full %v times (incremental %v)", got, testutil.ToFloat64(zs.Metric("transfers", "ixfr", "incremental")))
	}
}

// TestUDPAXFRIsRefusedQuietly: AXFR over UDP (whose source anyone can
// forge) is refused before any key check, so it neither reaches the audit
// log nor spends its budget for refused transfers.
func TestUDPAXFRIsRefusedQuietly(t *testing.T) {
	e := newEnv(t, envOptions{})
	before, err := e.db.FindAudit(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for range 20 {
		m := new(dns.Msg)
		m.SetAxfr("common.rpz.allowlist.")
		r, _, err := c.Exchange(m, e.zs.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused {
			t.Fatalf("UDP AXFR: %s", dns.RcodeToString[r.Rcode])
		}
	}
	after, _ := e.db.FindAudit(ctx, 0, 10000)
	if len(after) != len(before) {
		t.Errorf("UDP AXFRs wrote %d audit entries", len(after)-len(before))
	}
}
