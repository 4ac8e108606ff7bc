package allowlist

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// sampleList has the awkward cases: a host beside a wildcard on the same
// name, a host below a wildcard, an IDN, and plain hosts.
func sampleList() (List, []byte) {
	return NewList("common", 42, time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC), []Entry{
		{"*.zoom.us", "zoom", "video-conferencing"},
		{"zoom.us", "zoom-web", "video-conferencing"},
		{"app.zoom.us", "zoom-app", "video-conferencing"},
		{"meet.example.org", "meet", "video-conferencing"},
		{"docs.example.org", "docs", "document-editing"},
		{"*.xn--bcher-kva.example", "buecher", "wiki"},
		{"*.files.example.net", "files", "file-storage"},
		{"*.example.net", "net", "other"},
	})
}

func TestRenderGolden(t *testing.T) {
	l, body := sampleList()
	for _, f := range Formats {
		t.Run(f.Name, func(t *testing.T) {
			got := f.Render(l, body)
			path := filepath.Join("testdata", "list."+f.Name)
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

func TestRenderSquidHasNoOverlaps(t *testing.T) {
	l, body := sampleList()
	out, _ := FindFormat("squid")
	lines := map[string]bool{}
	for _, line := range strings.Split(string(out.Render(l, body)), "\n") {
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
	recs, err := csv.NewReader(bytes.NewReader(f.Render(l, body))).ReadAll()
	if err != nil || len(recs) != len(l.Entries)+1 {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
}

// renderTo writes a format of the sample list to a temp file.
func renderTo(t *testing.T, format string) string {
	t.Helper()
	l, body := sampleList()
	f, err := FindFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "list."+format)
	if err := os.WriteFile(path, f.Render(l, body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tool returns the path of a real consumer, skipping the test when it is
// not installed (CI installs them all, see .ci/run).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run should install it", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestRenderAcceptedBySquid(t *testing.T) {
	squid := tool(t, "squid")
	list := renderTo(t, "squid")
	dir := filepath.Dir(list)
	conf := filepath.Join(dir, "squid.conf")
	os.WriteFile(conf, []byte("http_port 127.0.0.1:39128\npid_filename none\ncache_log /dev/null\naccess_log none\n"+
		"acl allowed dstdomain \""+list+"\"\nhttp_access allow allowed\nhttp_access deny all\n"), 0o644)
	out := run(t, squid, "-k", "parse", "-f", conf)
	for _, bad := range []string{"WARNING", "ERROR", "FATAL"} {
		if strings.Contains(out, bad) {
			t.Errorf("squid -k parse complained:\n%s", out)
		}
	}
}

func TestRenderAcceptedByNamedCheckzone(t *testing.T) {
	checkzone := tool(t, "named-checkzone")
	out := run(t, checkzone, "-k", "fail", "-n", "fail", "common.allowlist.rpz", renderTo(t, "rpz"))
	if !strings.Contains(out, "OK") {
		t.Errorf("named-checkzone: %s", out)
	}
}

func TestRenderAcceptedByUnbound(t *testing.T) {
	checkconf := tool(t, "unbound-checkconf")
	list := renderTo(t, "unbound")
	conf := filepath.Join(filepath.Dir(list), "unbound.conf")
	os.WriteFile(conf, []byte("server:\n    chroot: \"\"\n    username: \"\"\n    directory: \""+filepath.Dir(list)+"\"\n    pidfile: \"\"\n    local-zone: \".\" always_nxdomain\ninclude: \""+list+"\"\n"), 0o644)
	out := run(t, checkconf, conf)
	if !strings.Contains(out, "no errors") {
		t.Errorf("unbound-checkconf: %s", out)
	}
}

func TestRenderAcceptedByDnsmasq(t *testing.T) {
	dnsmasq := tool(t, "dnsmasq")
	out := run(t, dnsmasq, "--test", "--conf-file="+renderTo(t, "dnsmasq"))
	if !strings.Contains(out, "syntax check OK") {
		t.Errorf("dnsmasq --test: %s", out)
	}
}

// TestRenderPACRuns evaluates the PAC script in Node, as a browser would.
func TestRenderPACRuns(t *testing.T) {
	node := tool(t, "node")
	script := renderTo(t, "pac")
	probe := `const fs=require("fs"); eval(fs.readFileSync(process.argv[1],"utf8"));
const cases={"zoom.us":"DIRECT","a.b.zoom.us":"DIRECT","meet.example.org":"DIRECT","MEET.Example.org.":"DIRECT",
"x.meet.example.org":"PROXY proxy.invalid:3128","example.org":"PROXY proxy.invalid:3128","a.example.net":"DIRECT","badzoom.us":"PROXY proxy.invalid:3128"};
for (const [h,w] of Object.entries(cases)) { const g=FindProxyForURL("https://"+h+"/", h); if (g!==w) { console.log("FAIL",h,g,w); process.exit(1);} }
console.log("ok");`
	out := run(t, node, "-e", probe, script)
	if !strings.Contains(out, "ok") {
		t.Errorf("pac: %s", out)
	}
}
