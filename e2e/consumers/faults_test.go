package consumers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOldShapesFail loads the shapes the formats had before the faults
// were fixed into the same consumers, and shows that the matrix's checks
// catch them: an RPZ zone that kept the exact entries a wildcard covers,
// and a dnsmasq file loaded as its old header advised.
func TestOldShapesFail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	e := newEnv(t)
	e.upstream = startNSD(t, e.dir)
	sub := func(name string) *env {
		d := filepath.Join(e.dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return &env{dir: d, upstream: e.upstream}
	}

	// The fixed zone plus the records it now leaves out.
	rpz := column{format: "rpz"}
	oldRPZ := func(dir string) string {
		p := render(t, rpz, dir)
		b, _ := os.ReadFile(p)
		b = append(b, "app.zoom.us CNAME rpz-passthru.\nfiles.wiki.example.org CNAME rpz-passthru.\napi.eu.wiki.example.org CNAME rpz-passthru.\n"...)
		os.WriteFile(p, b, 0o644)
		return p
	}
	for _, c := range []struct {
		name     string
		ask      func(*testing.T, *env, string) func(string) (verdict, string)
		blocked  []string // wrongly: the list allows them
		passthru []string
	}{
		{"Unbound", askUnboundRPZ, []string{"a.files.wiki.example.org", "x.app.zoom.us"}, []string{"www.zoom.us"}},
		{"BIND", askBIND, []string{"a.files.wiki.example.org", "eu.wiki.example.org", "x.eu.wiki.example.org"}, []string{"www.zoom.us"}},
		// PowerDNS Recursor 4.8 matches policy names its own way: the
		// old shape did not hurt there.
		{"PowerDNS", askPDNS, nil, []string{"a.files.wiki.example.org", "eu.wiki.example.org", "x.app.zoom.us"}},
	} {
		t.Run("rpz in "+c.name, func(t *testing.T) {
			env := sub("rpz-" + c.name)
			ask := c.ask(t, env, oldRPZ(env.dir))
			for _, n := range c.blocked {
				if got, detail := ask(n); got != denied || decide(exact, n) != allowed {
					t.Errorf("%s: %s (%s); the old zone was expected to block it", n, got, detail)
				}
			}
			for _, n := range c.passthru {
				if got, _ := ask(n); got != allowed {
					t.Errorf("%s: %s", n, got)
				}
			}
		})
	}

	t.Run("dnsmasq as the old header said", func(t *testing.T) {
		env := sub("dnsmasq")
		p := render(t, column{format: "dnsmasq"}, env.dir) // no upstream: server=/name/#
		mustContain(t, "the file without an upstream", readFile(t, p), "server=/zoom.us/#", "NOT a default-deny file")
		// The old advice: address=/#/ beside the usual default server.
		ask := startDnsmasq(t, env, "--conf-file="+p, "--no-resolv", "--server="+strings.Replace(env.upstream, ":", "#", 1), "--address=/#/")
		if got, detail := ask("evilzoom.us"); got != allowed {
			t.Errorf("evilzoom.us: %s (%s); address=/#/ was expected to block nothing", got, detail)
		}
	})
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
