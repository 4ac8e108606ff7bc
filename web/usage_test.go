package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/web"
)

var reportSeq struct {
	sync.Mutex
	n int
}

// report stores a usage report of dept's ending at end, as its resolver
// would send it.
func report(t *testing.T, e *env, dept string, end time.Time, entries []allowlist.UsageEntry, refused []allowlist.UsageRefused) {
	t.Helper()
	reportSeq.Lock()
	reportSeq.n++
	id := fmt.Sprintf("%032x", reportSeq.n)
	reportSeq.Unlock()
	r := allowlist.UsageReport{ReportID: id, Department: dept, Scope: dept, ListVersion: 1, Mode: allowlist.ModeMonitor,
		PeriodStart: end.Add(-15 * time.Minute), PeriodEnd: end, K: 5, Entries: entries, Refused: refused}
	a := allowlist.Actor{Role: allowlist.RoleReader, Department: dept, Name: "resolver"}
	if _, _, err := e.db.RecordUsage(context.Background(), a, r, end, 5); err != nil {
		t.Fatal(err)
	}
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.Path, string(b)
}

// TestOwnerUsage: the owner's page lists what its own department's
// resolvers refused this month, never another department's; a domain not
// in the registry has a propose button (a POST with the CSRF token) that
// opens the propose form filled in; a domain the registry has links to
// its site.
func TestOwnerUsage(t *testing.T) {
	e := newEnv(t) // the owner signed in is dept-b's
	now := time.Now().UTC()
	report(t, e, "dept-b", now, nil, []allowlist.UsageRefused{{Domain: "chat-example.net", Queries: 300, Clients: 15}, {Domain: "example.org", Queries: 20, Clients: 5}})
	report(t, e, "dept-a", now, nil, []allowlist.UsageRefused{{Domain: "secret-a-example.net", Queries: 900, Clients: 50}})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	_, body := get(t, c, e.url+"/owner")
	i := strings.Index(body, "What staff here tried to reach this month, not on our list")
	if i < 0 {
		t.Fatal("no usage section on the owner's page")
	}
	section := body[i:strings.Index(body, `id="all-sites"`)]
	if !strings.Contains(section, "<code>chat-example.net</code>") || !strings.Contains(section, ">300<") || !strings.Contains(section, ">15<") {
		t.Errorf("dept-b's refused domain is missing:\n%s", section)
	}
	if strings.Contains(body, "secret-a-example.net") {
		t.Error("dept-a's report is shown to dept-b's owner")
	}
	if strings.Index(section, "chat-example.net") > strings.Index(section, "example.org<") {
		t.Error("not the most asked first")
	}
	if !strings.Contains(section, `action="/owner/usage/propose"`) || !strings.Contains(section, `name="domain" value="chat-example.net"`) || !strings.Contains(section, `name="_csrf"`) {
		t.Errorf("no propose button for chat-example.net:\n%s", section)
	}
	if !strings.Contains(section, `href="/owner/sites/evil"`) {
		t.Errorf("example.org, which the registry holds names under, does not link to its site:\n%s", section)
	}

	csrf := formToken(t, c, e.url+"/owner")
	code, path, page := postForm(t, c, e.url+"/owner/usage/propose", url.Values{"_csrf": {csrf}, "domain": {"chat-example.net"}})
	if code != 200 || path != "/owner/usage/propose" || !strings.Contains(page, `value="chat-example-net"`) || !strings.Contains(page, "chat-example.net\n*.chat-example.net</textarea>") ||
		!strings.Contains(page, `action="/owner/propose"`) {
		t.Errorf("propose button: %d, the form is not filled in:\n%s", code, page)
	}
	if _, path, _ := postForm(t, c, e.url+"/owner/usage/propose", url.Values{"_csrf": {csrf}, "domain": {"example.org"}}); path != "/owner/sites/evil" {
		t.Errorf("a domain in the registry went to %s, want its site", path)
	}
	if code, _, _ := postForm(t, c, e.url+"/owner/usage/propose", url.Values{"_csrf": {csrf}, "domain": {"<script>"}}); code != 422 {
		t.Errorf("a bad domain: %d, want 422", code)
	}
	if code, _, _ := postForm(t, c, e.url+"/owner/usage/propose", url.Values{"domain": {"chat-example.net"}}); code != 403 {
		t.Errorf("no CSRF token: %d, want 403", code)
	}

	// Owner A sees A's report, not B's.
	_, tokA, _ := e.db.CreateToken(context.Background(), allowlist.System, allowlist.Token{Role: "owner", Department: "dept-a", Name: "owner-a"})
	jarA, _ := cookiejar.New(nil)
	ca := &http.Client{Jar: jarA}
	signInWith(t, e, ca, tokA, "/owner")
	_, bodyA := get(t, ca, e.url+"/owner")
	if !strings.Contains(bodyA, "secret-a-example.net") || strings.Contains(bodyA, "chat-example.net") {
		t.Error("owner A does not see exactly A's usage")
	}
	// Anonymous pages never show a department's report.
	for _, p := range []string{"/", "/catalogue", "/dashboard", "/lists"} {
		if _, b := get(t, http.DefaultClient, e.url+p); strings.Contains(b, "secret-a-example.net") || strings.Contains(b, "chat-example.net") {
			t.Errorf("%s shows a department's refused domains", p)
		}
	}
}

// TestCatalogueStaleOnTestClock: the catalogue shows a site's hits this
// month and its last hit, and flags it for review once no reporting
// resolver has hit it for more than 90 days: 89 days after the last hit
// it is not flagged, 91 days after it is.
func TestCatalogueStaleOnTestClock(t *testing.T) {
	start := time.Now().UTC()
	var mu sync.Mutex
	clock := start
	e := newEnvConfig(t, web.Options{}, api.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	report(t, e, "dept-b", start, []allowlist.UsageEntry{{Pattern: "*.evil.example.org", Hits: 120}}, nil)

	_, body := get(t, http.DefaultClient, e.url+"/catalogue")
	if !strings.Contains(body, "Hits from resolvers") || !strings.Contains(body, "120 this month") || !strings.Contains(body, "Last "+start.Format("2 Jan 2006")) {
		t.Errorf("catalogue without the site's hits:\n%s", body)
	}
	if strings.Contains(body, "Review: no use in 90 days") {
		t.Error("flagged for review on the day it was hit")
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	site := func() string {
		_, b := get(t, c, e.url+"/owner/sites/evil")
		i := strings.Index(b, `id="entry-usage"`)
		if i < 0 {
			t.Fatal("no entry usage on the owner's site page")
		}
		return b[i : i+strings.Index(b[i:], "</table>")]
	}
	if s := site(); !strings.Contains(s, "<code>*.evil.example.org</code>") || !strings.Contains(s, ">120<") || !strings.Contains(s, start.Format("2 Jan 2006")) || strings.Contains(s, "Review") {
		t.Errorf("site page entry usage:\n%s", s)
	}
	set(start.Add(89 * 24 * time.Hour))
	if strings.Contains(site(), "Review") {
		t.Error("entry flagged for review 89 days after its last hit")
	}
	if _, body = get(t, http.DefaultClient, e.url+"/catalogue"); strings.Contains(body, "Review: no use in 90 days") || !strings.Contains(body, "Last "+start.Format("2 Jan 2006")) {
		t.Error("flagged for review 89 days after its last hit")
	}
	set(start.Add(91 * 24 * time.Hour))
	if _, body = get(t, http.DefaultClient, e.url+"/catalogue"); !strings.Contains(body, "Review: no use in 90 days") || !strings.Contains(body, "None this month") {
		t.Error("not flagged for review 91 days after its last hit")
	}
	if s := site(); !strings.Contains(s, "Review: no use in 90 days") || !strings.Contains(s, ">0<") {
		t.Errorf("entry not flagged for review 91 days after its last hit:\n%s", s)
	}
}

// TestDashboardUsageCharts: the dashboard plots the daily totals as SVG
// bar charts with a title, a description and labelled axes, and gives the
// figures as a table.
func TestDashboardUsageCharts(t *testing.T) {
	e := newEnv(t)
	_, body := get(t, http.DefaultClient, e.url+"/dashboard")
	if strings.Contains(body, "refused-chart") {
		t.Error("usage charts with no reports")
	}
	now := time.Now().UTC()
	report(t, e, "dept-a", now, []allowlist.UsageEntry{{Pattern: "*.evil.example.org", Hits: 70}}, []allowlist.UsageRefused{{Domain: "chat-example.net", Queries: 30, Clients: 5}})
	_, body = get(t, http.DefaultClient, e.url+"/dashboard")
	for _, want := range []string{
		`aria-labelledby="refused-chart-title refused-chart-desc"`, `<title id="refused-chart-title">Sites refused each day, all organisations</title>`,
		`aria-labelledby="hits-chart-title hits-chart-desc"`, `<title id="hits-chart-title">Hits on listed sites each day, all organisations</title>`,
		`fill="#0b0c0c">Day</text>`, `>Sites refused</text>`, `>Hits</text>`, now.Format("2 Jan") + ": 1 sites refused", now.Format("2 Jan") + ": 70 hits",
		`<td class="govuk-table__cell">` + now.Format("2006-01-02") + `</td><td class="govuk-table__cell govuk-table__cell--numeric">1</td><td class="govuk-table__cell govuk-table__cell--numeric">30</td><td class="govuk-table__cell govuk-table__cell--numeric">70</td>`,
		// The list-size chart still draws through the same helper.
		`<title id="chart-title">Entries in the common list at each version</title>`, `>List version</text>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	if strings.Count(body, "<svg") != 3 || strings.Contains(body, "chat-example.net") {
		t.Errorf("%d charts, or a refused domain named", strings.Count(body, "<svg"))
	}
}

// TestCatalogueWithholdsOneDepartmentsHits: a site on one department's
// list only (not the common list) has hits from that department alone,
// which would be its own use: the catalogue says so instead of the
// figure and the last hit. A site on the common list shows its hits even
// when one department reported them.
func TestCatalogueWithholdsOneDepartmentsHits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.CreateSite(ctx, allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}, allowlist.SiteInput{
		ID: "solo", Name: "Solo tool", Category: "wiki", Domains: []string{"*.solo.example.net"}, Owner: allowlist.Owner{Name: "Ops"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SetSignoff(ctx, allowlist.System, "solo", "dept-a", "approve", ""); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	report(t, e, "dept-a", now, []allowlist.UsageEntry{{Pattern: "*.solo.example.net", Hits: 4560}, {Pattern: "*.evil.example.org", Hits: 70}}, nil)
	_, body := get(t, http.DefaultClient, e.url+"/catalogue")
	i := strings.Index(body, "Solo tool")
	if i < 0 {
		t.Fatalf("no solo site in the catalogue:\n%s", body)
	}
	row := body[i:]
	row = row[:strings.Index(row, "</tr>")]
	if strings.Contains(row, "4560") || strings.Contains(row, "Last ") || !strings.Contains(row, "Not shown: one organisation") {
		t.Errorf("one department's hits shown:\n%s", row)
	}
	if !strings.Contains(body, "70 this month") {
		t.Errorf("the common-list site's hits not shown")
	}
	// Nor does the site's page show them entry by entry to an owner.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	_, page := get(t, c, e.url+"/owner/sites/solo")
	at := strings.Index(page, `id="entry-usage"`)
	if at < 0 {
		t.Fatal("no entry usage on the owner's site page")
	}
	table := page[at : at+strings.Index(page[at:], "</table>")]
	if strings.Contains(table, "4560") || !strings.Contains(table, "Not shown: one organisation") {
		t.Errorf("one department's hits shown on the site's page:\n%s", table)
	}
}

// TestPagesKeepTheirContentInMain: every page opens as many <div>s as it
// closes inside <main>, so that nothing falls out of the main landmark (a
// stray </div> after the dashboard's backlog table once put the chart
// outside it, which axe-core reported as content outside any region).
func TestPagesKeepTheirContentInMain(t *testing.T) {
	e := newEnv(t)
	// Something waiting, so that the dashboard shows its backlog table.
	if _, err := e.db.CreateSite(context.Background(), allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}, allowlist.SiteInput{ID: "waits",
		Name: "Waits", Category: "wiki", Domains: []string{"waits.example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	owner := &http.Client{Jar: jar}
	signIn(t, e, owner)
	for _, path := range []string{"/", "/check?q=evil", "/check?q=games.example.com", "/request", "/catalogue", "/lists", "/lists/common",
		"/dashboard", "/accessibility", "/common-ground", "/common-ground?departments=dept-a,dept-b", "/requests", "/no-such-page",
		"/owner", "/owner/waiting", "/owner/requests", "/owner/directory", "/owner/propose", "/owner/sites/waits"} {
		_, body := get(t, owner, e.url+path)
		start, end := strings.Index(body, "<main"), strings.Index(body, "</main>")
		if start < 0 || end < start {
			t.Errorf("%s: no main element", path)
			continue
		}
		main := body[start:end]
		if open, closed := strings.Count(main, "<div"), strings.Count(main, "</div>"); open != closed {
			t.Errorf("%s: %d <div> opened and %d closed inside <main>", path, open, closed)
		}
	}
	if _, body := get(t, http.DefaultClient, e.url+"/dashboard"); !strings.Contains(body, `id="backlog"`) {
		t.Error("the dashboard shows no backlog table: the test does not test it")
	}
}
