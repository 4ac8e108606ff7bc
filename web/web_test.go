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
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/web"
)

type env struct {
	path    string // the store's SQLite file
	url     string
	handler http.Handler
	db      *sqlite.DB
	owner   string
}

func newEnv(t *testing.T) *env { return newEnvWith(t, web.Options{}) }

func newEnvWith(t *testing.T, opt web.Options) *env { return newEnvConfig(t, opt, api.Config{}) }

// newEnvConfig is newEnvWith an API configured as cfg (its clock, usage_k).
func newEnvConfig(t *testing.T, opt web.Options, cfg api.Config) *env {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := sqlite.Open(path, sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.PublicLists, cfg.Logger = true, quiet
	srv := api.New(db, cfg)
	db.Subscribe(srv.Published)
	opt.Logger = quiet
	web.New(db, srv, opt).Register(srv.Echo())
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); cancel(); db.Close() })
	sys := allowlist.System
	for _, d := range []string{"dept-a", "dept-b"} {
		db.CreateDepartment(ctx, sys, allowlist.Department{ID: d, Name: "Department " + d, Kind: "other"})
		db.CreateContact(ctx, sys, allowlist.Contact{Department: d, Name: "Owner " + d, Email: "owner." + d + "@example.org"})
	}
	// A site whose every free-text field tries to inject markup.
	evil := `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`
	if _, err := db.CreateSite(ctx, allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}, allowlist.SiteInput{
		ID: "evil", Name: "Evil " + evil, Category: "wiki", Description: evil, Homepage: "https://evil.example.org/?q=" + url.QueryEscape(evil),
		Domains: []string{"*.evil.example.org"}, Owner: allowlist.Owner{Name: evil, Email: "secret.owner@example.org"}}); err != nil {
		t.Fatal(err)
	}
	db.SetSignoff(ctx, sys, "evil", "dept-a", "approve", evil)
	db.SetSignoff(ctx, sys, "evil", "dept-b", "approve", "")
	_, owner, _ := db.CreateToken(ctx, sys, allowlist.Token{Role: "owner", Department: "dept-b", Name: "owner-b"})
	db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: evil, Reason: evil, Department: "dept-b", Email: "staff@example.org"})
	return &env{path: path, url: hs.URL, handler: srv.Handler(), db: db, owner: owner}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rawMarkup = regexp.MustCompile(`<script>|<img src=x|"><img`)

// TestUserTextIsEscaped renders every page that shows user-supplied text
// and checks that none of it comes out as markup.
func TestUserTextIsEscaped(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	for _, p := range []string{"/", "/check?q=x.evil.example.org", "/check?q=Evil", "/check?q=" + url.QueryEscape("<script>x</script>"),
		"/catalogue", "/lists", "/lists/common?from=0&to=1", "/dashboard", "/owner", "/owner/sites/evil", "/owner/requests", "/owner/directory",
		"/request?tool=" + url.QueryEscape("<script>"), "/accessibility"} {
		code, body := get(t, c, e.url+p)
		if code >= 500 {
			t.Errorf("%s: %d", p, code)
		}
		if rawMarkup.MatchString(body) {
			t.Errorf("%s: user text rendered as markup:\n%s", p, rawMarkup.FindString(body))
		}
		// The CSP (style-src 'self') ignores inline styles: none may be relied on.
		if strings.Contains(body, ` style="`) {
			t.Errorf("%s: an inline style attribute, which the CSP blocks", p)
		}
	}
}

func signIn(t *testing.T, e *env, c *http.Client) {
	t.Helper()
	_, body := get(t, c, e.url+"/sign-in")
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token on the sign-in form")
	}
	resp, err := c.PostForm(e.url+"/sign-in", url.Values{"_csrf": {csrf[1]}, "token": {e.owner}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/owner" {
		t.Fatalf("sign-in ended at %s", resp.Request.URL)
	}
	for _, ck := range jar(c).Cookies(mustURL(e.url)) {
		if ck.Name == "allowlist_session" && ck.Value == e.owner {
			t.Error("the token itself is the session cookie")
		}
	}
}

func jar(c *http.Client) http.CookieJar { return c.Jar }

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func TestFormsNeedCSRF(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get(t, c, e.url+"/") // gets a CSRF cookie, but the form field is missing
	before, _ := e.db.FindRequests(context.Background(), "")
	for _, p := range []string{"/request", "/sign-in", "/owner/decide", "/owner/propose", "/sign-out"} {
		resp, err := c.PostForm(e.url+p, url.Values{"tool": {"x"}, "reason": {"y"}, "department": {"dept-a"}, "token": {e.owner}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a CSRF token: %d", p, resp.StatusCode)
		}
	}
	after, _ := e.db.FindRequests(context.Background(), "")
	if len(after) != len(before) {
		t.Error("a form without a CSRF token was accepted")
	}
}

func TestPublicPagesShowNoContacts(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/check?q=x.evil.example.org", "/check?q=Evil", "/catalogue", "/lists", "/dashboard", "/lists/common"} {
		_, body := get(t, http.DefaultClient, e.url+p)
		for _, secret := range []string{"@example.org", "Owner dept-a"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows %q", p, secret)
			}
		}
	}
	// Owner pages need a signed-in owner.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ := c.Get(e.url + "/owner")
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
		t.Errorf("/owner without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestOwnerSeesQueueRequestsAndContacts(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	for page, wants := range map[string][]string{
		"/owner":           {"Department dept-b", "1 request from staff"},
		"/owner/requests":  {"staff@example.org"},
		"/owner/directory": {"owner.dept-a@example.org", "Department dept-a"},
	} {
		_, body := get(t, c, e.url+page)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", page, want)
			}
		}
	}
	for _, ck := range jar.Cookies(mustURL(e.url)) {
		if ck.Name == "allowlist_session" && (ck.Value == "" || len(ck.Value) < 32) {
			t.Errorf("weak session cookie %q", ck.Value)
		}
	}
}

func TestCheckByNameAndErrors(t *testing.T) {
	e := newEnv(t)
	code, body := get(t, http.DefaultClient, e.url+"/check?q=evil")
	if code != 200 || !strings.Contains(body, "Yes, you can use") {
		t.Errorf("check by name: %d", code)
	}
	code, body = get(t, http.DefaultClient, e.url+"/check?q=no-such-tool")
	if code != 422 || !strings.Contains(body, "govuk-error-summary") || !strings.Contains(body, `href="#q"`) {
		t.Errorf("unknown tool: %d", code)
	}
	code, body = get(t, http.DefaultClient, e.url+"/check?q=games.example.com")
	if code != 200 || !strings.Contains(body, "Request this tool") {
		t.Errorf("unlisted: %d", code)
	}
	resp, _ := http.Get(e.url + "/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	resp.Body.Close()
}
