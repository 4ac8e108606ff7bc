package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/web"
	"github.com/labstack/echo/v4"
)

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// formToken fetches a page and returns the CSRF token of its form.
func formToken(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, body := get(t, c, u)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no CSRF token on the page", u)
	}
	return m[1]
}

func noRedirects(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func tokenID(t *testing.T, e *env, name string) int64 {
	t.Helper()
	ts, err := e.db.FindTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Name == name {
			return tk.ID
		}
	}
	t.Fatalf("no token %q", name)
	return 0
}

// TestRevokedTokenEndsSession: an owner signed in on the pages whose token
// is then revoked is signed out on the very next request; a form rendered
// before the revocation stores nothing, and contacts are no longer shown.
func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	csrf := formToken(t, c, e.url+"/owner")
	if err := e.db.RevokeToken(ctx, allowlist.System, tokenID(t, e, "owner-b")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateSite(ctx, allowlist.Actor{Role: "owner", Department: "dept-a", Name: "a"}, allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := noRedirects(c).PostForm(e.url+"/owner/decide", url.Values{"_csrf": {csrf}, "site": {"wiki"}, "decision": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	site, _ := e.db.FindSite(ctx, "wiki")
	for _, so := range site.Signoffs {
		if so.Department == "dept-b" {
			t.Fatalf("a revoked owner's decision was stored: %+v", so)
		}
	}
	if resp.StatusCode < 300 || resp.StatusCode >= 500 {
		t.Errorf("decision with a revoked token: %d", resp.StatusCode)
	}
	resp, err = noRedirects(c).Get(e.url + "/owner")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
		t.Errorf("/owner after revocation: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if strings.Contains(string(body), "@example.org") {
		t.Error("contacts shown after revocation")
	}
	for _, ck := range jar.Cookies(mustURL(e.url)) {
		if ck.Name == "allowlist_session" && ck.Value != "" {
			t.Error("the session cookie was not cleared")
		}
	}
}

// TestExpiredTokenEndsSession: the same holds for a token that expires
// while its session is open.
func TestExpiredTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	soon := time.Now().Add(1500 * time.Millisecond)
	_, secret, err := e.db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "owner", Department: "dept-b", Name: "short", ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	e.owner = secret
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	if code, _ := get(t, noRedirects(c), e.url+"/owner"); code != http.StatusOK {
		t.Fatalf("/owner while signed in: %d", code)
	}
	time.Sleep(time.Until(soon) + 100*time.Millisecond)
	if code, _ := get(t, noRedirects(c), e.url+"/owner/propose"); code != http.StatusSeeOther {
		t.Errorf("/owner/propose after the token ended: %d", code)
	}
}

// countingBody is an endless form body that counts what the server read.
type countingBody struct{ n int64 }

func (b *countingBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	b.n += int64(len(p))
	return len(p), nil
}

// TestLargeBodiesRefusedEarly: 300 MB sent to every page route that takes
// a post (each POST route the pages register), declared or streamed, is
// refused after at most 1 MiB is read; multipart is refused before it is
// parsed. Nothing is stored.
func TestLargeBodiesRefusedEarly(t *testing.T) {
	e := newEnv(t)
	before, _ := e.db.FindRequests(context.Background(), "")
	var paths []string
	for _, r := range e.handler.(*echo.Echo).Routes() {
		if r.Method == http.MethodPost && !strings.HasPrefix(r.Path, "/v1/") {
			paths = append(paths, r.Path)
		}
	}
	if len(paths) < 10 {
		t.Fatalf("only %d page routes take a post: %v", len(paths), paths)
	}
	for _, path := range paths {
		for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
			for _, declared := range []bool{true, false} {
				body := &countingBody{}
				req := httptest.NewRequest("POST", path, io.LimitReader(body, 300<<20))
				req.Header.Set("Content-Type", ct)
				req.ContentLength = -1
				if declared {
					req.ContentLength = 300 << 20
				}
				rec := httptest.NewRecorder()
				e.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusRequestEntityTooLarge && rec.Code != http.StatusUnsupportedMediaType {
					t.Errorf("POST %s (%s, declared %v): %d", path, ct, declared, rec.Code)
				}
				if body.n > 1<<20+64<<10 {
					t.Errorf("POST %s (%s, declared %v): read %d bytes", path, ct, declared, body.n)
				}
			}
		}
	}
	after, _ := e.db.FindRequests(context.Background(), "")
	if len(after) != len(before) {
		t.Error("a refused body stored a request")
	}
}

// TestPageLimits: the request form shares the API's allowance per address
// (10 a minute by default), and failed sign-ins the API's failed-token
// allowance (20).
func TestPageLimits(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrf := formToken(t, c, e.url+"/request")
	codes := map[int]int{}
	for range 30 {
		resp, err := c.PostForm(e.url+"/request", url.Values{"_csrf": {csrf}, "tool": {"Tool"}, "reason": {"meetings"}, "department": {"dept-a"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[http.StatusCreated] != 10 || codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("30 requests from one address: %v", codes)
	}
	// The API's allowance is the same one.
	resp, err := http.Post(e.url+"/v1/requests", "application/json", strings.NewReader(`{"tool":"T","reason":"r","department":"dept-a"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("API request after the page used the allowance: %d", resp.StatusCode)
	}

	codes = map[int]int{}
	csrf = formToken(t, c, e.url+"/sign-in")
	for range 30 {
		resp, err := c.PostForm(e.url+"/sign-in", url.Values{"_csrf": {csrf}, "token": {"alt_bad_token"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != 20 || codes[http.StatusTooManyRequests] != 10 {
		t.Errorf("30 bad sign-ins from one address: %v", codes)
	}
	// A good token is refused too while the address is blocked.
	resp, err = c.PostForm(e.url+"/sign-in", url.Values{"_csrf": {csrf}, "token": {e.owner}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sign-in while blocked: %d", resp.StatusCode)
	}
}

// TestCSRFTiedToBodyAndSession: the token is taken from the form body
// only, belongs to one browser, and changes with the session.
func TestCSRFTiedToBodyAndSession(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrf := formToken(t, c, e.url+"/request")
	form := url.Values{"tool": {"Tool"}, "reason": {"meetings"}, "department": {"dept-a"}}
	post := func(c *http.Client, u string, f url.Values, h ...string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(c, e.url+"/request?_csrf="+url.QueryEscape(csrf), form); code != http.StatusForbidden {
		t.Errorf("token in the query string: %d", code)
	}
	other, _ := cookiejar.New(nil)
	oc := &http.Client{Jar: other}
	get(t, oc, e.url+"/") // another browser, with its own cookie
	withToken := url.Values{"_csrf": {csrf}}
	for k, v := range form {
		withToken[k] = v
	}
	if code := post(oc, e.url+"/request", withToken); code != http.StatusForbidden {
		t.Errorf("another browser's token: %d", code)
	}
	for _, site := range []string{"cross-site", "same-site"} {
		if code := post(c, e.url+"/request", withToken, "Sec-Fetch-Site", site); code != http.StatusForbidden {
			t.Errorf("%s post: %d", site, code)
		}
	}
	// A cookie the registry did not issue is not a browser id (login CSRF
	// by planting a cookie of one's own choosing).
	forged, _ := cookiejar.New(nil)
	forged.SetCookies(mustURL(e.url), []*http.Cookie{{Name: "allowlist_csrf", Value: strings.Repeat("a", 64), Path: "/"}})
	fc := &http.Client{Jar: forged}
	formToken(t, fc, e.url+"/sign-in")
	for _, ck := range forged.Cookies(mustURL(e.url)) {
		if ck.Name == "allowlist_csrf" && ck.Value == strings.Repeat("a", 64) {
			t.Error("a planted cookie was kept as the browser id")
		}
	}
	// The sign-in token is read from the form body only.
	nc := noRedirects(c)
	if code := post(nc, e.url+"/sign-in?token="+url.QueryEscape(e.owner), url.Values{"_csrf": {formToken(t, c, e.url+"/sign-in")}}); code != http.StatusUnauthorized {
		t.Errorf("token in the query string signed in: %d", code)
	}
	if code := post(c, e.url+"/request", withToken); code != http.StatusCreated {
		t.Errorf("the right token: %d", code)
	}
	// After signing in, forms rendered before are stale.
	signIn(t, e, c)
	if code := post(noRedirects(c), e.url+"/sign-out", url.Values{"_csrf": {csrf}}); code != http.StatusForbidden {
		t.Errorf("pre-sign-in token used in the session: %d", code)
	}
}

// TestHeadAndMethods: HEAD works on every page; a wrong method on an API
// path is a 405 problem, not a page; unknown pages are HTML 404s.
func TestHeadAndMethods(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/check?q=evil", "/catalogue", "/lists", "/lists/common", "/dashboard", "/sign-in", "/request"} {
		resp, err := http.Head(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", p, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("DELETE", e.url+"/v1/sites", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("DELETE /v1/sites: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(e.url + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "Page not found") {
		t.Errorf("unknown page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(e.url + "/v1/no-such-thing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown API path: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestSecureCookiesAndHSTS: with the https options every cookie the pages
// set is Secure, and pages send Strict-Transport-Security.
func TestSecureCookiesAndHSTS(t *testing.T) {
	e := newEnvWith(t, web.Options{SecureCookies: true, HSTS: true})
	req := httptest.NewRequest("GET", "/sign-in", nil)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS")
	}
	cookies := rec.Result().Cookies()
	if len(cookies) == 0 {
		t.Fatal("no cookie set")
	}
	for _, ck := range cookies {
		if ck.Name == "allowlist_csrf" {
			t.Error("the CSRF cookie lacks the __Host- prefix behind https")
		}
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s: secure %v httponly %v samesite %v", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
	}
}

// TestBrowserErrorsAreHTML: a browser gets an HTML page with the status
// of the error's code wherever it goes outside the API (an unknown page,
// a method a page does not take), never problem+json; the API's own paths
// answer problem+json whatever the client accepts.
func TestBrowserErrorsAreHTML(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		status       int
		html         bool
	}{
		{"GET", "/no-such-page", 404, true},
		{"GET", "/owner/no/such/page", 404, true},
		{"POST", "/no-such-page", 404, true},
		{"PUT", "/sign-in", 405, true},
		{"DELETE", "/catalogue", 405, true},
		{"GET", "/v1/no-such-thing", 404, false},
		{"DELETE", "/v1/sites", 405, false},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		if c.html && (!strings.HasPrefix(ct, "text/html") || !strings.Contains(string(b), "<html") || resp.Header.Get("Content-Security-Policy") == "") {
			t.Errorf("%s %s: %s, want an HTML page with the pages' headers", c.method, c.path, ct)
		}
		if !c.html && ct != "application/problem+json" {
			t.Errorf("%s %s: %s, want problem+json", c.method, c.path, ct)
		}
		if c.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}
