package web_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/web"
)

// TestCheckYourRequest: a request sent from the page gets a reference,
// whose status page shows progress and the owners' answer, never an
// e-mail; the signed-in owner answers it on the owners' page.
func TestCheckYourRequest(t *testing.T) {
	e := newEnv(t)
	// A requester who kept the reference but not the link finds the page
	// from the start page.
	if _, start := get(t, http.DefaultClient, e.url+"/"); !strings.Contains(start, `href="/requests">Check your request</a>`) {
		t.Error("the start page does not link to \"Check your request\"")
	}
	jar, _ := cookiejar.New(nil)
	staff := &http.Client{Jar: jar}
	_, body := get(t, staff, e.url+"/request?tool=Miro")
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)
	resp, err := staff.PostForm(e.url+"/request", url.Values{"_csrf": {csrf[1]}, "tool": {"Miro"}, "url": {"miro.com"}, "reason": {"workshops"},
		"department": {"dept-b"}, "email": {"staff.member@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b := string(raw)
	ref := regexp.MustCompile(`id="reference">(req_[a-z0-9]+)<`).FindStringSubmatch(b)
	if resp.StatusCode != http.StatusCreated || ref == nil {
		t.Fatalf("request page: %d\n%s", resp.StatusCode, b)
	}
	code, page := get(t, http.DefaultClient, e.url+"/requests/"+ref[1])
	if code != 200 || !strings.Contains(page, `id="status">received<`) || !strings.Contains(page, "have not answered yet") || strings.Contains(page, "staff.member@example.org") {
		t.Fatalf("status page: %d\n%s", code, page)
	}
	if code, _ := get(t, http.DefaultClient, e.url+"/requests/req_nosuchreference"); code != 404 {
		t.Errorf("unknown reference: %d", code)
	}
	nofollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ = nofollow.Get(e.url + "/requests?reference=" + ref[1])
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/requests/"+ref[1] {
		t.Errorf("lookup: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The owner of dept-b declines it with a reason on the owners' page.
	ojar, _ := cookiejar.New(nil)
	owner := &http.Client{Jar: ojar}
	signIn(t, e, owner)
	_, op := get(t, owner, e.url+"/owner/waiting")
	if !strings.Contains(op, "miro.com") || !strings.Contains(op, "staff.member@example.org") {
		t.Fatalf("owners' page lacks the request:\n%s", op)
	}
	rs, _ := e.db.FindRequests(context.Background(), "dept-b")
	var id string
	for _, r := range rs {
		if r.Tool == "Miro" {
			id = strconv.FormatInt(r.ID, 10)
		}
	}
	csrf = regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(op)
	// Mistakes bring the page back with what was typed, each mistake
	// summarised and shown at its field, and change nothing.
	for _, tt := range []struct {
		form  url.Values
		field string
		says  string
		kept  string
	}{
		{url.Values{"status": {"declined"}, "answer": {""}}, "answer-" + id, "A decline needs a reason the requester can read", ""},
		{url.Values{"status": {""}, "answer": {"Linked, <see> below"}, "site": {"no-such-site"}}, "site-" + id, "There is no site called \u201cno-such-site\u201d in the catalogue", `value="no-such-site"`},
	} {
		tt.form.Set("_csrf", csrf[1])
		tt.form.Set("id", id)
		resp, err := owner.PostForm(e.url+"/owner/requests/answer", tt.form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `govuk-error-summary`) ||
			!strings.Contains(body, `<a href="#`+tt.field+`">`+tt.says) || !strings.Contains(body, `id="`+tt.field+`-error"`) ||
			!strings.Contains(body, tt.kept) || !strings.Contains(body, "Waiting for you") {
			t.Errorf("%v: %d\n%s", tt.form, resp.StatusCode, body)
		}
		if tt.form.Get("answer") != "" && !strings.Contains(body, ">Linked, &lt;see&gt; below</textarea>") {
			t.Errorf("%v: the answer typed is not kept (escaped)", tt.form)
		}
		if r, _ := e.db.FindRequest(context.Background(), mustInt(t, id)); r.Status != allowlist.RequestReceived {
			t.Fatalf("a refused answer changed the request: %+v", r)
		}
	}
	resp, err = owner.PostForm(e.url+"/owner/requests/answer", url.Values{"_csrf": {csrf[1]}, "id": {id}, "status": {"declined"}, "answer": {"We already offer Mural for workshops."}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, page = get(t, http.DefaultClient, e.url+"/requests/"+ref[1])
	if !strings.Contains(page, `id="status">declined<`) || !strings.Contains(page, "We already offer Mural") {
		t.Fatalf("after the answer:\n%s", page)
	}
	r, _ := e.db.FindRequestByReference(context.Background(), ref[1])
	if r.Status != allowlist.RequestDeclined {
		t.Fatalf("stored %+v", r)
	}
}

// TestOwnerSeesOverdueAndRenews: with an SLA and approval expiry on, the
// owner's queue puts the overdue site first and tags it, the dashboard
// counts it, and an approval can be renewed from the page.
func TestOwnerSeesOverdueAndRenews(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Quorum: 2, Key: key, Now: clock,
		Policy: allowlist.Policy{DecisionSLA: 5 * 24 * time.Hour, ApprovalMaxAge: 365 * 24 * time.Hour, ApprovalWarning: 30 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := api.New(db, api.Config{PublicLists: true, Logger: quiet, Now: clock})
	db.Subscribe(srv.Published)
	web.New(db, srv, web.Options{Logger: quiet}).Register(srv.Echo())
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	sys := allowlist.System
	for _, d := range []string{"dept-a", "dept-b"} {
		db.CreateDepartment(ctx, sys, allowlist.Department{ID: d, Name: "Department " + d, Kind: "other"})
	}
	mk := func(id string) {
		if _, err := db.CreateSite(ctx, allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}, allowlist.SiteInput{ID: id, Name: "Site " + id,
			Category: "wiki", Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("old-one")
	now = now.Add(10 * 24 * time.Hour)
	mk("new-one")
	if _, err := db.SetSignoff(ctx, sys, "new-one", "dept-b", "approve", ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(340 * 24 * time.Hour) // dept-b's approval is 340 days old
	mk("fresh")                         // waiting, not overdue; first by id
	_, owner, _ := db.CreateToken(ctx, sys, allowlist.Token{Role: "owner", Department: "dept-b", Name: "owner-b"})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, &env{url: hs.URL, owner: owner}, c)
	_, body := get(t, c, hs.URL+"/owner")
	i, j := strings.Index(body, "Site old-one"), strings.Index(body, "Site fresh")
	if i < 0 || j < 0 || !strings.Contains(body[i:i+80], "Overdue") || strings.Contains(body[j:j+60], "Overdue") {
		t.Fatalf("overdue site not tagged:\n%s", body)
	}
	if j < i {
		t.Fatal("the overdue site is not first")
	}
	_, dash := get(t, c, hs.URL+"/dashboard")
	if !strings.Contains(dash, `id="backlog"`) || !strings.Contains(dash, "Department dept-b") {
		t.Fatalf("dashboard lacks the backlog:\n%s", dash)
	}
	_, page := get(t, c, hs.URL+"/owner/waiting")
	if !strings.Contains(page, `id="renewals"`) || !strings.Contains(page, "Soon") {
		t.Fatalf("no renewal offered:\n%s", page)
	}
	// The renewal names the site, and its button says which site it renews.
	if !strings.Contains(page, `<td class="govuk-table__cell">Site new-one</td>`) ||
		!strings.Contains(page, `Renew<span class="govuk-visually-hidden"> your approval of Site new-one</span></button>`) {
		t.Errorf("the renewal shows the site's identifier, or its button does not name the site:\n%s", page)
	}
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(page)
	resp, err := c.PostForm(hs.URL+"/owner/renew", url.Values{"_csrf": {csrf[1]}, "site": {"new-one"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	clocks, _ := db.FindApprovalClocks(ctx, "new-one")
	if !clocks["dept-b"].Since.Equal(now) {
		t.Fatalf("not renewed: %+v", clocks)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
