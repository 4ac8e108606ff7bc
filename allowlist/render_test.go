package allowlist

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// sampleList has the awkward cases: a host beside a wildcard on the same
// name, a host below a wildcard, an IDN, and plain hosts.
func sampleList() (List, []byte) {
	l, body := sampleDomains()
	// Endpoints: two sites, IPv4 and IPv6, handling both relaxed and not,
	// and a narrower network inside a wider one of another site.
	l.Endpoints = []Endpoint{
		{Site: "meet", Category: "video-conferencing", Networks: []Network{{"74.125.250.0/24", "udp", "19302-19309,3478"}, {"2001:4860:4864:5::/64", "udp", "19302-19309"}},
			Handling: Handling{TLSBypass, ProxyDirect}, Notes: "Calls fall back to TCP relays and stutter"},
		{Site: "zoom", Category: "video-conferencing", Networks: []Network{{"170.114.0.0/16", "udp", "3478-3479,8801-8810"}, {"170.114.8.0/24", "udp", "8801"}, {"170.114.8.0/24", "udp", "8805-8820"}},
			Handling: Handling{TLSBypass, ProxyUse}},
		{Site: "docs", Category: "document-editing", Handling: Handling{TLSAllow, ProxyDirect}},
	}
	return l, body
}

func sampleDomains() (List, []byte) {
	return NewList("common", 42, time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC), []Entry{
		{Pattern: "*.zoom.us", Site: "zoom", Category: "video-conferencing"},
		{Pattern: "zoom.us", Site: "zoom-web", Category: "video-conferencing"},
		{Pattern: "app.zoom.us", Site: "zoom-app", Category: "video-conferencing"},
		{Pattern: "meet.example.org", Site: "meet", Category: "video-conferencing"},
		{Pattern: "docs.example.org", Site: "docs", Category: "document-editing"},
		{Pattern: "*.xn--bcher-kva.example", Site: "buecher", Category: "wiki"},
		{Pattern: "*.files.example.net", Site: "files", Category: "file-storage"},
		{Pattern: "*.example.net", Site: "net", Category: "other"},
	})
}

// mustRender renders the list in f, failing the test on an error.
func mustRender(t *testing.T, f Format, l List, body []byte) []byte {
	t.Helper()
	out, err := f.Render(l, body)
	if err != nil {
		t.Fatalf("render %s: %v", f.Key(), err)
	}
	return out
}

// configured returns the named format with URL query parameters.
func configured(t *testing.T, name string, params map[string]string) Format {
	t.Helper()
	f, err := FindFormat(name)
	if err == nil {
		f, err = f.Configure(func(k string) string { return params[k] })
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRenderGolden(t *testing.T) {
	l, body := sampleList()
	formats := append([]Format(nil), Formats...)
	formats = append(formats, configured(t, "dnsmasq", map[string]string{"upstream": "192.0.2.53, [2001:db8::53]:5353"}))
	formats = append(formats, configured(t, "pac", map[string]string{"proxy": "proxy.example.gov.uk:3128"}))
	for _, f := range formats {
		file := f.Name
		if f.Key() != f.Name {
			file += "-" + Formats[0].Params[0] // keeps the older names below
			if f.Name == "dnsmasq" {
				file = "dnsmasq-upstream"
			} else {
				file = f.Name + "-proxy"
			}
		}
		t.Run(file, func(t *testing.T) {
			got := mustRender(t, f, l, body)
			path := filepath.Join("testdata", "list."+file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n%s", f.Name, path, got)
			}
		})
	}
}

func TestFindFormat(t *testing.T) {
	if f, err := FindFormat(""); err != nil || f.Name != "json" {
		t.Errorf("default format = %v, %v", f.Name, err)
	}
	if _, err := FindFormat("xml"); ErrorCode(err) != EINVALID {
		t.Errorf("FindFormat(xml) error %v", err)
	}
}

func TestFormatConfigure(t *testing.T) {
	dnsmasq, _ := FindFormat("dnsmasq")
	for in, want := range map[string]string{
		"192.0.2.53":              "192.0.2.53",
		"192.0.2.53#5353":         "192.0.2.53#5353",
		"192.0.2.53:5353":         "192.0.2.53#5353",
		"192.0.2.53:53":           "192.0.2.53",
		"2001:db8::53":            "2001:db8::53",
		"[2001:db8::53]:5353":     "2001:db8::53#5353",
		"2001:db8::53#5353":       "2001:db8::53#5353",
		" 127.0.0.1 , 127.0.0.1 ": "127.0.0.1",
		"10.0.0.1,10.0.0.2#54":    "10.0.0.1,10.0.0.2#54",
		"::ffff:192.0.2.1":        "192.0.2.1",
	} {
		f, err := dnsmasq.Configure(func(k string) string { return map[string]string{"upstream": in}[k] })
		if err != nil || f.Key() != "dnsmasq;upstream="+strings.ReplaceAll(want, ",", "+") {
			t.Errorf("upstream=%q: key %q, %v; want %q", in, f.Key(), err, want)
		}
	}
	for _, in := range []string{"resolver.example", "192.0.2.53#", "192.0.2.53:0", "192.0.2.53#99999", "0.0.0.0", "224.0.0.1",
		"fe80::1%eth0", "192.0.2.1/24", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5", "192.0.2.53\nserver=/#/6.6.6.6", ",", "192.0.2.53 # x"} {
		if f, err := dnsmasq.Configure(func(k string) string { return map[string]string{"upstream": in}[k] }); ErrorCode(err) != EINVALID {
			t.Errorf("upstream=%q accepted as %q (%v)", in, f.Key(), err)
		}
	}
	squid, _ := FindFormat("squid")
	if _, err := squid.Configure(func(k string) string { return map[string]string{"upstream": "192.0.2.53"}[k] }); ErrorCode(err) != EINVALID {
		t.Errorf("squid took an upstream: %v", err)
	}
	if f, err := squid.Configure(func(string) string { return "" }); err != nil || f.Key() != "squid" {
		t.Errorf("squid without parameters: %q, %v", f.Key(), err)
	}
}

// TestRenderChromeCap: a list the browser would cut is refused, not cut.
func TestRenderChromeCap(t *testing.T) {
	var entries []Entry
	for i := 0; i < ChromeMaxEntries; i++ {
		entries = append(entries, Entry{Pattern: "h" + strconv.Itoa(i) + ".example.org", Site: "s", Category: "other"})
	}
	f, _ := FindFormat("chrome")
	l, body := NewList("common", 1, time.Unix(0, 0), entries)
	if _, err := f.Render(l, body); err != nil {
		t.Fatalf("%d entries: %v", len(entries), err)
	}
	// One more below a wildcard costs nothing; one more beside it does.
	l, body = NewList("common", 2, time.Unix(0, 0), append(entries, Entry{Pattern: "*.h1.example.org", Site: "s", Category: "other"}))
	if _, err := f.Render(l, body); err != nil {
		t.Fatalf("covered entry counted: %v", err)
	}
	l, body = NewList("common", 3, time.Unix(0, 0), append(entries, Entry{Pattern: "extra.example.net", Site: "s", Category: "other"}))
	out, err := f.Render(l, body)
	if ErrorCode(err) != EINVALID || out != nil || !strings.Contains(err.Error(), "1001") {
		t.Fatalf("1001 entries: %q, %v", out, err)
	}
}

func TestRPZOwnersLeaveOutCovered(t *testing.T) {
	got := RPZOwners([]Entry{
		{Pattern: "*.wiki.example.org"}, {Pattern: "files.wiki.example.org"}, {Pattern: "api.eu.wiki.example.org"},
		{Pattern: "*.a.wiki.example.org"}, {Pattern: "wiki.example.org"}, {Pattern: "meet.example.org"},
		{Pattern: "x.meet.example.org"}, {Pattern: "meet.example.org"},
	})
	want := []string{"meet.example.org", "wiki.example.org", "*.wiki.example.org", "x.meet.example.org"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("RPZOwners = %q, want %q", got, want)
	}
	if got := RPZOwners(nil); len(got) != 0 {
		t.Errorf("RPZOwners(nil) = %q", got)
	}
}

func TestRenderSquidHasNoOverlaps(t *testing.T) {
	l, body := sampleList()
	out, _ := FindFormat("squid")
	lines := map[string]bool{}
	for _, line := range strings.Split(string(mustRender(t, out, l, body)), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			lines[line] = true
		}
	}
	for line := range lines {
		for other := range lines {
			if other != line && strings.HasPrefix(other, ".") && (line == other[1:] || strings.HasSuffix(line, other)) {
				t.Errorf("%q overlaps %q", line, other)
			}
		}
	}
	for _, want := range []string{".zoom.us", "meet.example.org", ".example.net", ".xn--bcher-kva.example"} {
		if !lines[want] {
			t.Errorf("missing %q in %v", want, lines)
		}
	}
}

func TestRenderCSVParses(t *testing.T) {
	l, body := sampleList()
	f, _ := FindFormat("csv")
	recs, err := csv.NewReader(bytes.NewReader(mustRender(t, f, l, body))).ReadAll()
	if err != nil || len(recs) != len(l.Entries)+1 {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
}

// The real consumers (Squid, Unbound, BIND, PowerDNS Recursor, dnsmasq,
// pactester, Chromium, AdGuard's filter engine) load every format in
// e2e/consumers, the consumer matrix.
