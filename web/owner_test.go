package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// ownerParts returns the awaiting part of the owner's page and the other sites'
// part.
func ownerParts(t *testing.T, body string) (awaiting, other string) {
	t.Helper()
	i, j := strings.Index(body, `id="awaiting"`), strings.Index(body, `id="all-sites"`)
	if i < 0 || j < i {
		t.Fatalf("the owner's page lacks its two parts:\n%s", body)
	}
	return body[i:j], body[j:]
}

// TestOwnerFiltersApplyToBothParts: the category, status and proposer
// filters narrow what awaits a decision as they narrow the other sites,
// and the page says how many awaiting sites they hide; without filters
// nothing is hidden.
func TestOwnerFiltersApplyToBothParts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}
	for _, s := range []struct{ id, name, category string }{
		{"team-wiki", "Team wiki", "wiki"}, {"docs-wiki", "Docs wiki", "wiki"}, {"kanban", "Kanban board", "project-management"},
	} {
		if _, err := e.db.CreateSite(ctx, a, allowlist.SiteInput{ID: s.id, Name: s.name, Category: s.category,
			Domains: []string{s.id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := &http.Client{Jar: must(cookiejar.New(nil))}
	signIn(t, e, c) // the owner of dept-b, whose decision all three await
	card := regexp.MustCompile(`<div class="govuk-summary-card" id="site-([a-z-]+)">`)
	cards := func(part string) []string {
		var ids []string
		for _, m := range card.FindAllStringSubmatch(part, -1) {
			ids = append(ids, m[1])
		}
		return ids
	}
	for _, tc := range []struct {
		query        string
		awaiting     []string
		heading      string
		hidden       string // the sentence about awaiting sites the filters hide, or "" for none
		otherCaption string
		other        []string // in the other sites' table
	}{
		{"", []string{"team-wiki", "docs-wiki", "kanban"}, "Awaiting your decision (3)", "", "1 other site<", []string{"Evil"}},
		{"?status=proposed&category=wiki", []string{"team-wiki", "docs-wiki"}, "Awaiting your decision (2)",
			"1 site awaits your decision but does not match the filters", "0 other sites matching the filters", nil},
		{"?category=wiki", []string{"team-wiki", "docs-wiki"}, "Awaiting your decision (2)",
			"1 site awaits your decision but does not match the filters", "1 other site matching the filters", []string{"Evil"}},
		{"?status=approved", nil, "Awaiting your decision (0)",
			"3 sites await your decision but do not match the filters", "1 other site matching the filters", []string{"Evil"}},
		{"?proposer=dept-b", nil, "Awaiting your decision (0)",
			"3 sites await your decision but do not match the filters", "0 other sites matching the filters", nil},
	} {
		_, body := get(t, c, e.url+"/owner"+tc.query)
		awaiting, other := ownerParts(t, body)
		if got := cards(awaiting); strings.Join(got, ",") != strings.Join(tc.awaiting, ",") {
			t.Errorf("%s: awaiting %v, want %v", tc.query, got, tc.awaiting)
		}
		if !strings.Contains(awaiting, tc.heading) {
			t.Errorf("%s: no heading %q", tc.query, tc.heading)
		}
		if tc.hidden == "" && strings.Contains(awaiting, "awaiting-hidden") || tc.hidden != "" && !strings.Contains(awaiting, tc.hidden) {
			t.Errorf("%s: want hidden sentence %q", tc.query, tc.hidden)
		}
		if !strings.Contains(other, tc.otherCaption) {
			t.Errorf("%s: the other sites' caption is not %q", tc.query, tc.otherCaption)
		}
		for _, name := range tc.other {
			if !strings.Contains(other, ">"+name) {
				t.Errorf("%s: %s missing from the other sites", tc.query, name)
			}
		}
		// The filters sit above both parts and say so.
		if f := strings.Index(body, `id="filters"`); f < 0 || f > strings.Index(body, `id="awaiting"`) ||
			!strings.Contains(body, "The filters apply to both parts below") {
			t.Errorf("%s: the filters are not above both parts, or do not say they apply to both", tc.query)
		}
	}
}

// TestRequestCardsNameTheirObject: each request card's buttons name the
// request they act on, so that no two buttons on the page share an
// accessible name; statuses read as words ("in review").
func TestRequestCardsNameTheirObject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tool := range []string{"Miro", "Miro", "Padlet"} { // two requests for one tool
		if _, err := e.db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: tool, Reason: "workshops", Department: "dept-b"}); err != nil {
			t.Fatal(err)
		}
	}
	c := &http.Client{Jar: must(cookiejar.New(nil))}
	signIn(t, e, c)
	_, page := get(t, c, e.url+"/owner/waiting")
	button := regexp.MustCompile(`(?s)<button class="govuk-button[^"]*" type="submit"[^>]*>(.*?)</button>`)
	tags := regexp.MustCompile(`<[^>]+>`)
	names := map[string]int{}
	for _, m := range button.FindAllStringSubmatch(page, -1) {
		names[html.UnescapeString(tags.ReplaceAllString(m[1], ""))]++
	}
	rs, _ := e.db.FindRequests(ctx, "dept-b")
	if len(rs) != 4 {
		t.Fatalf("%d requests, want 4", len(rs))
	}
	for _, r := range rs {
		for _, verb := range []string{"Answer", "Decline"} {
			want := fmt.Sprintf("%s request %d for %s", verb, r.ID, r.Tool)
			if names[want] != 1 {
				t.Errorf("%d buttons named %q", names[want], want)
			}
		}
	}
	for name, n := range names {
		if n > 1 {
			t.Errorf("%d buttons share the name %q", n, name)
		}
	}
}

// answerForm posts an answer to request id from the owners' page and
// returns the status and the page it ends on.
func answerForm(t *testing.T, e *env, c *http.Client, id int64, form url.Values) (int, string) {
	t.Helper()
	form.Set("_csrf", formToken(t, c, e.url+"/owner/waiting"))
	form.Set("id", strconv.FormatInt(id, 10))
	code, _, body := postForm(t, c, e.url+"/owner/requests/answer", form)
	return code, body
}

// TestLinkRequestBySiteName: an owner links a request to a site by its
// name (any case) or its identifier; a name that matches nothing, or more
// than one site, brings the form back with what was typed and a message,
// and changes nothing; the requester's page then names the site, and the
// message after an answer says "in review", not "in-review".
func TestLinkRequestBySiteName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}
	for _, s := range []struct{ id, name string }{{"miro", "Miro board"}, {"pad-one", "Pad"}, {"pad-two", "Pad"}} {
		if _, err := e.db.CreateSite(ctx, a, allowlist.SiteInput{ID: s.id, Name: s.name, Category: "other",
			Domains: []string{s.id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	var refs []string // shown once, when the request is made
	for _, tool := range []string{"Miro", "Whiteboard"} {
		r, err := e.db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: tool, Reason: "workshops", Department: "dept-b"})
		if err != nil {
			t.Fatal(err)
		}
		ids, refs = append(ids, r.ID), append(refs, r.Reference)
	}
	c := &http.Client{Jar: must(cookiejar.New(nil))}
	signIn(t, e, c)
	if _, page := get(t, c, e.url+"/owner/waiting"); !strings.Contains(page, `<option value="Miro board">`) || !strings.Contains(page, `list="site-names"`) {
		t.Error("the link field does not suggest the catalogue's names")
	}
	for _, tc := range []struct{ typed, says string }{
		{"Nothing like it", "There is no site called \u201cNothing like it\u201d in the catalogue"},
		{"pad", "More than one site is called \u201cpad\u201d. Enter the identifier of the one you mean: pad-one, pad-two"},
	} {
		code, body := answerForm(t, e, c, ids[0], url.Values{"status": {""}, "site": {tc.typed}})
		field := fmt.Sprintf("site-%d", ids[0])
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, `<a href="#`+field+`">`+tc.says) ||
			!strings.Contains(body, `id="`+field+`-error"`) || !strings.Contains(body, `value="`+tc.typed+`"`) {
			t.Errorf("%q: %d, want the form back with %q", tc.typed, code, tc.says)
		}
		if r, _ := e.db.FindRequest(ctx, ids[0]); r.Status != allowlist.RequestReceived || r.Site != "" {
			t.Errorf("%q: a refused link changed the request: %+v", tc.typed, r)
		}
	}
	// By name, in another case, with spaces around.
	if code, body := answerForm(t, e, c, ids[0], url.Values{"status": {""}, "site": {"  miro BOARD "}}); code != http.StatusOK || strings.Contains(body, "govuk-error-summary") {
		t.Fatalf("link by name: %d", code)
	}
	r, _ := e.db.FindRequest(ctx, ids[0])
	if r.Site != "miro" {
		t.Fatalf("linked to %q, want miro", r.Site)
	}
	if _, status := get(t, http.DefaultClient, e.url+"/requests/"+refs[0]); !strings.Contains(status, ">Miro board</a>") {
		t.Error("the requester's page shows the site's identifier, not its name")
	}
	if _, page := get(t, c, e.url+"/owner/waiting"); !strings.Contains(page, `<dd class="govuk-summary-list__value">Miro board</dd>`) {
		t.Error("the owners' page shows the linked site's identifier, not its name")
	}
	// By identifier still; an answer alone puts a request in review.
	if _, body := answerForm(t, e, c, ids[1], url.Values{"status": {""}, "answer": {"Looking at it"}}); !strings.Contains(body, "for Whiteboard is now in review.") ||
		!strings.Contains(body, `govuk-tag--blue">in review</strong>`) {
		t.Error("the message or tag after an answer does not say \"in review\"")
	}
	if code, _ := answerForm(t, e, c, ids[1], url.Values{"status": {""}, "site": {"pad-two"}}); code != http.StatusOK {
		t.Errorf("link by identifier: %d", code)
	}
	if r, _ := e.db.FindRequest(ctx, ids[1]); r.Site != "pad-two" {
		t.Errorf("linked to %q, want pad-two", r.Site)
	}
}

// TestAdminNamesKindsAndTokens: the administration page shows kinds of
// organisation in words, and the message after revoking a token says
// whose it was.
func TestAdminNamesKindsAndTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, admin, _ := e.db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "admin", Name: "root"})
	tok, _, err := e.db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "reader", Department: "dept-a", Name: "A's resolver"})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: must(cookiejar.New(nil))}
	signInWith(t, e, c, admin, "/admin")
	_, page := get(t, c, e.url+"/admin")
	for _, want := range []string{`<td class="govuk-table__cell">Other</td>`, `<option value="ministerial-department">Ministerial department</option>`,
		`<option value="arms-length-body">Arm&#39;s-length body</option>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the admin page lacks %s", want)
		}
	}
	if strings.Contains(page, ">ministerial-department<") || strings.Contains(page, ">other<") {
		t.Error("the admin page shows a kind's identifier")
	}
	_, _, after := postForm(t, c, e.url+"/admin/tokens/revoke", url.Values{"_csrf": {formToken(t, c, e.url+"/admin")}, "id": {strconv.FormatInt(tok.ID, 10)}})
	if want := "Revoked the token for A&#39;s resolver (reader, Department dept-a)."; !strings.Contains(after, want) {
		t.Errorf("after revoking: no %q", want)
	}
}
