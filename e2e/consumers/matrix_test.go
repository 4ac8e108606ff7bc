package consumers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"golang.org/x/net/idna"
)

// The list every consumer is loaded with: the awkward shapes from the
// issue that found the RPZ and dnsmasq faults.
var entries = []allowlist.Entry{
	{Pattern: "*.zoom.us", Site: "zoom", Category: "video-conferencing"},
	{Pattern: "zoom.us", Site: "zoom-web", Category: "video-conferencing"},
	{Pattern: "app.zoom.us", Site: "zoom-app", Category: "video-conferencing"},
	{Pattern: "*.wiki.example.org", Site: "wiki", Category: "wiki"},
	{Pattern: "files.wiki.example.org", Site: "wiki-files", Category: "file-storage"},
	{Pattern: "api.eu.wiki.example.org", Site: "wiki-api", Category: "wiki"},
	{Pattern: "meet.example.org", Site: "meet", Category: "video-conferencing"},
	{Pattern: "deep.a.b.example.com", Site: "deep", Category: "other"},
	{Pattern: "*.example.net", Site: "net", Category: "other"},
	{Pattern: "*.files.example.net", Site: "net-files", Category: "file-storage"},
	{Pattern: "*.xn--bcher-kva.example", Site: "buecher", Category: "wiki"},
}

// probe is one row of the matrix: a name as a user types it.
type probe struct {
	name, what string
}

var probes = []probe{
	{"meet.example.org", "exact host"},
	{"x.meet.example.org", "name under an exact host"},
	{"xmeet.example.org", "near miss of an exact host"},
	{"example.org", "parent of an exact host"},
	{"zoom.us", "apex of *.zoom.us (also listed exact)"},
	{"www.zoom.us", "under a wildcard"},
	{"a.b.zoom.us", "deep under a wildcard"},
	{"app.zoom.us", "exact entry a wildcard covers"},
	{"x.app.zoom.us", "under an exact entry a wildcard covers"},
	{"evilzoom.us", "near miss of *.zoom.us"},
	{"zoom.us.evil.example", "suffix trick"},
	{"wiki.example.org", "apex of *.wiki.example.org"},
	{"files.wiki.example.org", "exact entry a wildcard covers"},
	{"a.files.wiki.example.org", "under it (the RPZ fault)"},
	{"api.eu.wiki.example.org", "deep exact entry a wildcard covers"},
	{"eu.wiki.example.org", "between it and the wildcard (BIND fault)"},
	{"x.eu.wiki.example.org", "beside it under the wildcard"},
	{"deep.a.b.example.com", "exact host, no wildcard"},
	{"a.b.example.com", "only an empty non-terminal of the list"},
	{"b.example.com", "only an empty non-terminal of the list"},
	{"example.net", "apex of *.example.net"},
	{"x.files.example.net", "under a wildcard another wildcard covers"},
	{"xn--bcher-kva.example", "IDN apex, A-label"},
	{"www.xn--bcher-kva.example", "IDN, A-label"},
	{"www.bücher.example", "IDN, U-label"},
	{"WWW.ZOOM.US", "upper case"},
	{"MEET.Example.ORG", "upper case exact host"},
	{"meet.example.org.", "trailing dot"},
	{"notlisted.example", "unlisted"},
}

// verdict is what a consumer did with a name.
type verdict string

const (
	allowed verdict = "allowed"
	denied  verdict = "denied"
)

// wire is the name a client sends: browsers, curl and stub resolvers turn
// a U-label into its A-label (IDNA) before asking anything.
func wire(name string) string {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
	if err != nil {
		panic(err)
	}
	if strings.EqualFold(a, strings.TrimSuffix(name, ".")) {
		return name // case and trailing dot as typed
	}
	return a
}

// semantics says how a format may differ from the list by design, as its
// header names: widened formats allow an exact host's subtree, narrowed
// ones only the names written out.
type semantics int

const (
	exact semantics = iota
	widened
	narrowed
)

// decide is what the list decides for a name, read through a format's
// documented semantics.
func decide(sem semantics, name string) verdict {
	pats := (allowlist.List{Entries: entries}).Patterns()
	for i := range pats {
		switch sem {
		case widened:
			pats[i].Wildcard = true
		case narrowed:
			pats[i].Wildcard = false
		}
	}
	if allowlist.Compile(pats).Match(wire(name)) >= 0 {
		return allowed
	}
	return denied
}

// column is one consumer of one format.
type column struct {
	name   string // consumer and format, for the table
	format string
	params map[string]string
	sem    semantics
	how    string // how the suite asks it
	// ask starts the consumer with the rendered file and returns what it
	// does with each name.
	ask func(t *testing.T, env *env, file string) func(name string) (verdict, string)
}

// env is what every consumer shares: a temp dir, the authoritative
// upstream and an HTTP origin for the proxies and the browser.
type env struct {
	dir      string
	upstream string // NSD, host:port
	origin   int    // HTTP origin's port on 127.0.0.1
}

func render(t *testing.T, c column, dir string) string {
	t.Helper()
	l, body := allowlist.NewList("common", 7, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), entries)
	f, err := allowlist.FindFormat(c.format)
	if err == nil {
		f, err = f.Configure(func(k string) string { return c.params[k] })
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Render(l, body)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "list."+c.format, string(out))
}

// TestConsumerMatrix asks every consumer about every name and compares
// each answer with the list's. Set CONSUMER_MATRIX=FILE to have the
// table written there in Markdown (docs/formats.md carries a copy).
func TestConsumerMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen servers")
	}
	e := newEnv(t)
	e.upstream = startNSD(t, e.dir)
	e.origin = startOrigin(t)
	cols := columns()
	results := make([]map[string]string, len(cols))
	for i, c := range cols {
		results[i] = map[string]string{}
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(e.dir, fmt.Sprintf("c%02d", i))
			if err := os.MkdirAll(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil { // for the logs of squid's own user
				t.Fatal(err)
			}
			if c.params["upstream"] == "UPSTREAM" {
				c.params = map[string]string{"upstream": e.upstream}
			}
			ask := c.ask(t, &env{dir: dir, upstream: e.upstream, origin: e.origin}, render(t, c, dir))
			for _, p := range probes {
				got, detail := ask(p.name)
				want := decide(c.sem, p.name)
				cell := "✓"
				if got != want {
					cell = "✗ " + string(got)
					t.Errorf("%-26s %-40s %s: %s (%s), the list: %s", p.name, p.what, c.name, got, detail, want)
				} else if want != decide(exact, p.name) {
					cell = "✓ (" + map[semantics]string{widened: "widened", narrowed: "narrowed"}[c.sem] + ")"
				}
				results[i][p.name] = cell
			}
		})
		if results[i][probes[0].name] == "" {
			for _, p := range probes {
				results[i][p.name] = "skipped"
			}
		}
	}
	partial := false
	for i := range cols {
		partial = partial || results[i][probes[0].name] == "skipped"
	}
	table := matrixTable(cols, results)
	t.Logf("consumer matrix (✓: the consumer did what the list decides):\n%s", table)
	if path := os.Getenv("CONSUMER_MATRIX"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	// docs/formats.md shows this table: it must be the one the suite makes.
	// (Only a full run can say: with -run choosing columns, the rest are skipped.)
	if !t.Failed() && !partial && !strings.Contains(readFile(t, "../../docs/formats.md"), table) {
		t.Errorf("docs/formats.md does not hold the matrix as the suite makes it; run\n" +
			"  CONSUMER_MATRIX=/tmp/matrix.md go test ./e2e/consumers -run TestConsumerMatrix\nand paste /tmp/matrix.md there")
	}
}

func matrixTable(cols []column, results []map[string]string) string {
	var b strings.Builder
	b.WriteString("| name | list |")
	for _, c := range cols {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteByte('\n')
	for _, p := range probes {
		fmt.Fprintf(&b, "| `%s` (%s) | %s |", p.name, p.what, decide(exact, p.name))
		for i := range cols {
			b.WriteString(" " + results[i][p.name] + " |")
		}
		b.WriteByte('\n')
	}
	return b.String()
}
