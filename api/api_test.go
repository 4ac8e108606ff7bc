package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// env is a registry on a real SQLite file behind a real HTTP server.
type env struct {
	t      *testing.T
	url    string
	path   string // the SQLite file
	db     *sqlite.DB
	srv    *api.Server
	admin  string
	router routers.Router
	// tokens by name: "a" and "b" own dept-a and dept-b, "reader" reads.
	tok map[string]string
}

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

func loadSpec(t *testing.T, base string) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		resp, err := http.Get(base + "/v1/openapi.json")
		if err != nil {
			specErr = err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		loader := openapi3.NewLoader()
		spec, specErr = loader.LoadFromData(b)
		if specErr == nil {
			specErr = spec.Validate(context.Background())
		}
	})
	if specErr != nil {
		t.Fatalf("openapi: %v", specErr)
	}
	// The servers entry names the default address; match any test server.
	doc := *spec
	doc.Servers = nil
	r, err := legacy.NewRouter(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := sqlite.Open(path, sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ready = db.Ping
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = 2
	}
	srv := api.New(db, cfg)
	db.Subscribe(srv.Published)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); cancel(); db.Close() })
	e := &env{t: t, url: hs.URL, path: path, db: db, srv: srv, tok: map[string]string{}}
	e.router = loadSpec(t, hs.URL)
	_, e.admin, _ = db.CreateToken(context.Background(), allowlist.System, allowlist.Token{Role: "admin", Name: "root"})
	for _, d := range []string{"dept-a", "dept-b", "dept-c"} {
		e.do("POST", "/v1/departments", e.admin, map[string]string{"id": d, "name": "Department " + d, "kind": "other"}).want(201)
		e.do("POST", "/v1/departments/"+d+"/contacts", e.admin, map[string]string{"name": "Owner of " + d, "email": "owner." + d + "@example.org", "role": "filtering owner"}).want(201)
	}
	e.tok["admin"] = e.admin
	e.tok["a"] = e.token("owner", "dept-a")
	e.tok["b"] = e.token("owner", "dept-b")
	e.tok["c"] = e.token("owner", "dept-c")
	e.tok["reader"] = e.token("reader", "")
	return e
}

func (e *env) token(role, dept string) string {
	body := map[string]string{"role": role, "name": role + "-" + dept}
	if dept != "" {
		body["department"] = dept
	}
	var out struct{ Token string }
	e.do("POST", "/v1/tokens", e.admin, body).want(201).decode(&out)
	return out.Token
}

type response struct {
	t    *testing.T
	req  string
	code int
	h    http.Header
	body []byte
}

func (r *response) want(code int) *response {
	r.t.Helper()
	if r.code != code {
		r.t.Fatalf("%s: status %d, want %d: %s", r.req, r.code, code, r.body)
	}
	return r
}

func (r *response) decode(v any) *response {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("%s: decode %s: %v", r.req, r.body, err)
	}
	return r
}

// do sends a request (body: nil, a []byte sent as is, or a value sent as
// JSON), and checks the response against the OpenAPI document.
func (e *env) do(method, path, token string, body any, headers ...string) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := &response{t: e.t, req: method + " " + path, code: resp.StatusCode, h: resp.Header, body: b}
	e.validate(req, r)
	return r
}

// validate checks a response against the OpenAPI document: the route must
// be documented, and status, content type and body must match it.
func (e *env) validate(req *http.Request, r *response) {
	e.t.Helper()
	if r.code >= 400 {
		if ct := r.h.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Errorf("%s: error with content type %q", r.req, ct)
		}
		var p api.Problem
		if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.code || p.Title != http.StatusText(r.code) || p.Type != "about:blank" || p.Detail == "" {
			e.t.Errorf("%s: not a problem body: %s", r.req, r.body)
		}
		if r.code == 405 || (r.code == 404 && strings.Contains(string(r.body), `"detail":"Not Found"`)) {
			return // the router's own answers for undocumented paths
		}
	}
	route, params, err := e.router.FindRoute(req)
	if err != nil && r.code == 404 {
		return // a path the document's router cannot parse (an encoded slash)
	}
	if err != nil {
		e.t.Errorf("%s: not in the OpenAPI document: %v", r.req, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.code, Header: r.h,
		Body: io.NopCloser(bytes.NewReader(r.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if strings.HasPrefix(r.h.Get("Content-Type"), "text/") || strings.HasPrefix(r.h.Get("Content-Type"), "application/x-ns") || r.code == 304 {
		out.Options.ExcludeResponseBody = true
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.t.Errorf("%s: response does not match the OpenAPI document: %v", r.req, err)
	}
}

func (e *env) version(scope string) int64 {
	e.t.Helper()
	var l allowlist.List
	e.do("GET", "/v1/lists/"+scope, "", nil).want(200).decode(&l)
	return l.Version
}

func zoom() map[string]any {
	return map[string]any{"id": "zoom", "name": "Zoom", "category": "video-conferencing", "description": "Meetings",
		"homepage": "https://zoom.us", "domains": []string{"*.zoom.us", "zoom.example.net"},
		"networks": []map[string]string{{"prefix": "170.114.0.0/16", "protocol": "udp", "ports": "8801-8810,3478-3479"}},
		"handling": map[string]string{"tls_inspection": "bypass", "proxy": "direct"},
		"notes":    "Meetings lose audio and video when UDP is blocked",
		"owner":    map[string]string{"name": "Zoom liaison", "email": "liaison@example.org"}}
}

// TestWalkthrough is README's walkthrough: propose, two sign-offs, a new
// common version, fetched as Squid and RPZ, and a check.
func TestWalkthrough(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	if v := e.version("common"); v != 0 {
		t.Fatalf("common starts at %d", v)
	}
	var site allowlist.Site
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201).decode(&site)
	if site.Status != "proposed" || site.ProposedBy != "dept-a" {
		t.Fatalf("site %+v", site)
	}
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve", "comment": "used daily"}).want(200)
	if v := e.version("common"); v != 0 {
		t.Fatalf("common moved after one approval: %d", v)
	}
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200).decode(&site)
	if site.Status != "approved" {
		t.Fatalf("status %s after quorum", site.Status)
	}
	if v := e.version("common"); v != 1 {
		t.Fatalf("common at %d after quorum, want 1", v)
	}
	squid := e.do("GET", "/v1/lists/common?format=squid", "", nil).want(200)
	if !strings.Contains(string(squid.body), "\n.zoom.us\n") || squid.h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("squid: %s %s", squid.h.Get("Content-Type"), squid.body)
	}
	rpz := e.do("GET", "/v1/lists/common?format=rpz", "", nil).want(200)
	if !strings.Contains(string(rpz.body), "*.zoom.us CNAME rpz-passthru.") {
		t.Errorf("rpz: %s", rpz.body)
	}
	var check api.CheckResult
	e.do("GET", "/v1/check?domain=us02web.ZOOM.us.", "", nil).want(200).decode(&check)
	if !check.Allowed || check.Match.Pattern != "*.zoom.us" || check.Match.Site.Name != "Zoom" || len(check.Signoffs) != 2 || check.Version != 1 {
		t.Errorf("check %+v", check)
	}
	e.do("GET", "/v1/check?domain=https://www.example.com/path", "", nil).want(200).decode(&check)
	if check.Allowed || check.Match != nil || check.HowToRequest == "" {
		t.Errorf("check of an unlisted name: %+v", check)
	}
}

func TestEveryFormat(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	var keys struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		}
	}
	e.do("GET", "/v1/keys", "", nil).want(200).decode(&keys)
	pub, _ := base64.StdEncoding.DecodeString(keys.Keys[0].PublicKey)
	jsonBody := e.do("GET", "/v1/lists/common?format=json", "", nil).want(200)
	types := map[string]string{"json": "application/json", "chrome": "application/json", "endpoints": "application/json", "pac": "application/x-ns-proxy-autoconfig", "csv": "text/csv; charset=utf-8"}
	for _, f := range allowlist.Formats {
		r := e.do("GET", "/v1/lists/common?format="+f.Name, "", nil).want(200)
		want := types[f.Name]
		if want == "" {
			want = "text/plain; charset=utf-8"
		}
		if got := r.h.Get("Content-Type"); got != want {
			t.Errorf("%s: content type %q, want %q", f.Name, got, want)
		}
		if r.h.Get("X-Allowlist-Version") != "1" {
			t.Errorf("%s: version header %q", f.Name, r.h.Get("X-Allowlist-Version"))
		}
		// Every format carries the signature of the JSON form.
		if err := list.Verify(pub, jsonBody.body, r.h.Get("X-Allowlist-Signature")); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
		if !strings.Contains(string(r.body), "zoom") {
			t.Errorf("%s: no zoom entry", f.Name)
		}
	}
	e.do("GET", "/v1/lists/common?format=xml", "", nil).want(400)
	// dnsmasq takes the resolver listed names go to; each upstream has its
	// own bytes and ETag. A bad one, or one given to another format, is 400.
	d1 := e.do("GET", "/v1/lists/common?format=dnsmasq&upstream=192.0.2.53%235353", "", nil).want(200)
	d2 := e.do("GET", "/v1/lists/common?format=dnsmasq&upstream=192.0.2.54", "", nil).want(200)
	if !strings.Contains(string(d1.body), "server=/zoom.us/192.0.2.53#5353\n") || !strings.Contains(string(d1.body), "address=/#/\n") ||
		!strings.Contains(string(d2.body), "server=/zoom.us/192.0.2.54\n") || d1.h.Get("ETag") == d2.h.Get("ETag") {
		t.Errorf("dnsmasq with upstreams:\n%s\n%s", d1.body, d2.body)
	}
	e.do("GET", "/v1/lists/common?format=dnsmasq&upstream=192.0.2.53", "", nil, "If-None-Match", d1.h.Get("ETag")).want(200)
	e.do("GET", "/v1/lists/common?format=dnsmasq&upstream=192.0.2.53%235353", "", nil, "If-None-Match", d1.h.Get("ETag")).want(304)
	e.do("GET", "/v1/lists/common?format=dnsmasq&upstream=resolver.example", "", nil).want(400)
	e.do("GET", "/v1/lists/common?format=squid&upstream=192.0.2.53", "", nil).want(400)
}

// TestChromeCap: a list past the browsers' 1000-entry URLAllowlist cap is
// refused with 422 naming the count, never served cut short; the other
// formats of the same version still serve.
func TestChromeCap(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	for s := 0; s < 6; s++ {
		var domains []string
		for i := 0; i < 200; i++ {
			domains = append(domains, fmt.Sprintf("h%d.s%d.example.org", i, s))
		}
		id := fmt.Sprintf("many-%d", s)
		e.do("POST", "/v1/sites", e.tok["a"], map[string]any{"id": id, "name": "Many " + id, "category": "other",
			"domains": domains, "owner": map[string]string{"name": "x"}}).want(201)
		e.do("PUT", "/v1/sites/"+id+"/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	}
	r := e.do("GET", "/v1/lists/dept-a?format=chrome", "", nil).want(422)
	if !strings.Contains(string(r.body), "1200") || !strings.Contains(string(r.body), "1000") {
		t.Errorf("chrome past the cap: %s", r.body)
	}
	e.do("GET", "/v1/lists/dept-a?format=squid", "", nil).want(200)
	e.do("GET", "/v1/lists/common?format=chrome", "", nil).want(200)
}

func TestListCachingAndHistory(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	r0 := e.do("GET", "/v1/lists/common", "", nil).want(200)
	etag := r0.h.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || r0.h.Get("Cache-Control") != "public, no-cache" {
		t.Fatalf("etag %q cache-control %q", etag, r0.h.Get("Cache-Control"))
	}
	e.do("GET", "/v1/lists/common", "", nil, "If-None-Match", etag).want(304)
	e.do("GET", "/v1/lists/common", "", nil, "If-None-Match", `"other", `+etag).want(304)
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	// A new version: the old ETag no longer matches.
	r1 := e.do("GET", "/v1/lists/common", "", nil, "If-None-Match", etag).want(200)
	if r1.h.Get("ETag") == etag {
		t.Error("ETag unchanged across versions")
	}
	// A numbered version is the same bytes forever, and cacheable forever.
	v0 := e.do("GET", "/v1/lists/common/versions/0", "", nil).want(200)
	if !bytes.Equal(v0.body, r0.body) || !strings.Contains(v0.h.Get("Cache-Control"), "immutable") {
		t.Errorf("version 0 changed or not immutable: %s", v0.h.Get("Cache-Control"))
	}
	var versions []allowlist.Version
	e.do("GET", "/v1/lists/common/versions", "", nil).want(200).decode(&versions)
	if len(versions) != 2 || versions[1].Added != 2 || versions[1].Version != 1 {
		t.Errorf("versions %+v", versions)
	}
	var diff struct {
		From, To       int64
		Added, Removed []allowlist.Entry
	}
	e.do("GET", "/v1/lists/common/diff?from=0", "", nil).want(200).decode(&diff)
	if diff.From != 0 || diff.To != 1 || len(diff.Added) != 2 || len(diff.Removed) != 0 {
		t.Errorf("diff %+v", diff)
	}
	e.do("GET", "/v1/lists/common/diff?from=1&to=0", "", nil).want(200).decode(&diff)
	if len(diff.Removed) != 2 {
		t.Errorf("reverse diff %+v", diff)
	}
	e.do("GET", "/v1/lists/common/versions/7", "", nil).want(404)
	e.do("GET", "/v1/lists/common/versions/-1", "", nil).want(400)
	e.do("GET", "/v1/lists/common/versions/abc", "", nil).want(400)
	e.do("GET", "/v1/lists/nope", "", nil).want(404)
	e.do("GET", "/v1/lists/common/diff", "", nil).want(400)
	var scopes []allowlist.ScopeInfo
	e.do("GET", "/v1/lists", "", nil).want(200).decode(&scopes)
	if len(scopes) != 4 || scopes[0].Scope != "common" {
		t.Errorf("scopes %+v", scopes)
	}
}

// TestHeadThenDiff is the way a resolver that holds a version takes the
// next: HEAD on a watch gives the new version's identity and signature
// without its body, the diff gives its changes, and the list rebuilt from
// the held body is byte for byte the one published, signature included.
// TestPublishedListsServedAsStored: a publication hands the API each new
// version as a head and an entries array shared by every scope that lists
// the same entries; what is served (GET, its Content-Length, HEAD) must be
// exactly the bytes stored and signed.
func TestPublishedListsServedAsStored(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		stored, err := e.db.FindVersion(context.Background(), scope, allowlist.Latest)
		if err != nil {
			t.Fatal(err)
		}
		got := e.do("GET", "/v1/lists/"+scope, "", nil).want(200)
		if !bytes.Equal(got.body, stored.Body) || got.h.Get("Content-Length") != strconv.Itoa(len(stored.Body)) {
			t.Errorf("%s: served %d bytes (Content-Length %s), stored %d", scope, len(got.body), got.h.Get("Content-Length"), len(stored.Body))
		}
		if err := list.Verify(e.db.PublicKey(), got.body, got.h.Get("X-Allowlist-Signature")); err != nil || stored.Version != 1 {
			t.Errorf("%s/%d: %v", scope, stored.Version, err)
		}
		if h := e.do("HEAD", "/v1/lists/"+scope, "", nil).want(200); h.h.Get("Content-Length") != strconv.Itoa(len(stored.Body)) {
			t.Errorf("%s: HEAD Content-Length %s, body %d", scope, h.h.Get("Content-Length"), len(stored.Body))
		}
	}
}

func TestHeadThenDiff(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	v0 := e.do("GET", "/v1/lists/common", "", nil).want(200)
	e.do("HEAD", "/v1/lists/common/watch?after=0&timeout=200ms", "", nil).want(304)
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	// A category change is a change of content, and must be in the diff.
	e.do("PATCH", "/v1/sites/zoom", e.tok["a"], map[string]any{"category": "file-storage"}).want(200)
	head := e.do("HEAD", "/v1/lists/common/watch?after=0&timeout=5s", "", nil).want(200)
	v2 := e.do("GET", "/v1/lists/common", "", nil).want(200)
	if len(head.body) != 0 || head.h.Get("X-Allowlist-Version") != "2" {
		t.Fatalf("HEAD watch: version %q, %d body bytes", head.h.Get("X-Allowlist-Version"), len(head.body))
	}
	for _, h := range []string{"ETag", "X-Allowlist-Signature", "X-Allowlist-SHA256", "X-Allowlist-Generated-At"} {
		if head.h.Get(h) == "" || head.h.Get(h) != v2.h.Get(h) {
			t.Errorf("%s: HEAD watch %q, GET %q", h, head.h.Get(h), v2.h.Get(h))
		}
	}
	if h := e.do("HEAD", "/v1/lists/common", "", nil).want(200); len(h.body) != 0 || h.h.Get("ETag") != v2.h.Get("ETag") {
		t.Errorf("HEAD list: ETag %q, %d body bytes", h.h.Get("ETag"), len(h.body))
	}
	var l allowlist.List
	if err := json.Unmarshal(v2.body, &l); err != nil {
		t.Fatal(err)
	}
	if got := head.h.Get("X-Allowlist-Generated-At"); got != l.GeneratedAt.Format(time.RFC3339Nano) {
		t.Errorf("X-Allowlist-Generated-At %q, body says %v", got, l.GeneratedAt)
	}
	var diff struct {
		From, To       int64
		Added, Removed []allowlist.Entry
	}
	e.do("GET", "/v1/lists/common/diff?from=1&to=2", "", nil).want(200).decode(&diff)
	if len(diff.Added) != 2 || len(diff.Removed) != 2 || diff.Added[0].Category != "file-storage" {
		t.Fatalf("a category change is not in the diff: %+v", diff)
	}
	e.do("GET", "/v1/lists/common/diff?from=0&to=2", "", nil).want(200).decode(&diff)
	at, _ := time.Parse(time.RFC3339Nano, head.h.Get("X-Allowlist-Generated-At"))
	next := list.Header{Scope: "common", Version: 2, GeneratedAt: at, SHA256: head.h.Get("X-Allowlist-SHA256")}
	var rebuilt bytes.Buffer
	if _, err := allowlist.PatchList(bytes.NewReader(v0.body), next, diff.Added, diff.Removed, &rebuilt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rebuilt.Bytes(), v2.body) {
		t.Fatalf("rebuilt list differs from the published one:\n%s\n%s", rebuilt.Bytes(), v2.body)
	}
	var keys struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		}
	}
	e.do("GET", "/v1/keys", "", nil).want(200).decode(&keys)
	pub, _ := base64.StdEncoding.DecodeString(keys.Keys[0].PublicKey)
	if err := list.Verify(pub, rebuilt.Bytes(), head.h.Get("X-Allowlist-Signature")); err != nil {
		t.Fatal(err)
	}
}

// TestWatch shows a waiting client woken within a second of a change, a
// timeout answered with 304, and an immediate answer when already behind.
func TestWatch(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("GET", "/v1/lists/common/watch?after=0&timeout=200ms", "", nil).want(304)
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)

	const waiters = 50
	type result struct {
		code    int
		version string
		at      time.Time
	}
	results := make(chan result, waiters)
	for i := 0; i < waiters; i++ {
		go func() {
			resp, err := http.Get(e.url + "/v1/lists/common/watch?after=0&timeout=20s")
			if err != nil {
				results <- result{}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("X-Allowlist-Version"), time.Now()}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let them all wait
	changed := time.Now()
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	for i := 0; i < waiters; i++ {
		r := <-results
		if r.code != 200 || r.version != "1" {
			t.Fatalf("watcher got %d version %q", r.code, r.version)
		}
		if d := r.at.Sub(changed); d > time.Second {
			t.Errorf("watcher woke %v after the change", d)
		}
	}
	// Already behind: answered at once.
	e.do("GET", "/v1/lists/common/watch?after=0&timeout=10s", "", nil).want(200)
	e.do("GET", "/v1/lists/common/watch?after=1&timeout=bogus", "", nil).want(400)
	e.do("GET", "/v1/lists/common/watch?after=1&timeout=1h", "", nil).want(400)
	e.do("GET", "/v1/lists/common/watch", "", nil).want(400)
	e.do("GET", "/v1/lists/nope/watch?after=0", "", nil).want(404)
}

// TestWatchClientGoesAway checks that a waiter whose client disconnects
// is released.
func TestWatchClientGoesAway(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/lists/common/watch?after=0&timeout=60s", nil)
	done := make(chan struct{})
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	time.Sleep(200 * time.Millisecond)
	if !strings.Contains(metricsText(t, e), "allowlist_watchers 1") {
		t.Fatal("watcher not counted")
	}
	cancel()
	<-done
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(metricsText(t, e), "allowlist_watchers 0") {
		if time.Now().After(deadline) {
			t.Fatal("watcher not released after the client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricsText(t *testing.T, e *env) string {
	r := e.do("GET", "/metrics", "", nil).want(200)
	return string(r.body)
}

// snapshot is what "nothing stored" compares: sites, versions and the
// audit tail.
func snapshot(e *env) string {
	ctx := context.Background()
	sites, _ := e.db.FindSites(ctx, allowlist.SiteFilter{})
	scopes, _ := e.db.FindScopes(ctx)
	audit, _ := e.db.FindAudit(ctx, 0, 1000)
	reqs, _ := e.db.FindRequests(ctx, "")
	tokens, _ := e.db.FindTokens(ctx)
	depts, _ := e.db.FindDepartments(ctx)
	usage, _ := e.db.FindUsage(ctx, allowlist.UsageFilter{From: time.Unix(0, 0), To: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
	b, _ := json.Marshal([]any{sites, scopes, len(audit), len(reqs), len(tokens), depts, usage})
	return string(b)
}

// TestErrorStatuses sends each refused request of docs/contract.md and checks
// the status, the problem+json body, and that nothing changed.
func TestErrorStatuses(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, RequestsPerMinute: 3})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	big := []byte(`{"id":"big","name":"` + strings.Repeat("x", api.MaxBody) + `"}`)
	cases := []badCase{
		{"malformed JSON", "POST", "/v1/sites", "a", []byte(`{"id":`), 400, nil},
		{"trailing data", "POST", "/v1/sites", "a", []byte(`{"id":"x"} {}`), 400, nil},
		{"unknown field", "POST", "/v1/sites", "a", map[string]any{"id": "teams", "colour": "red"}, 400, nil},
		{"read-only field", "POST", "/v1/sites", "a", map[string]any{"id": "teams", "status": "approved"}, 400, nil},
		{"case-variant key", "POST", "/v1/sites", "a", []byte(`{"id":"teams","ID":"evil"}`), 400, nil},
		{"upper-case key", "POST", "/v1/sites", "a", []byte(`{"DOMAINS":["evil.example.com"]}`), 400, nil},
		{"duplicate key", "POST", "/v1/sites", "a", []byte(`{"id":"teams","id":"other"}`), 400, nil},
		{"wrong type", "POST", "/v1/sites", "a", []byte(`{"id":42}`), 400, nil},
		{"array body", "POST", "/v1/sites", "a", []byte(`[]`), 400, nil},
		{"invalid UTF-8", "POST", "/v1/sites", "a", []byte("{\"id\":\"\xff\"}"), 400, nil},
		{"deep nesting", "POST", "/v1/sites", "a", []byte(strings.Repeat("[", 10000)), 400, nil},
		{"too large", "POST", "/v1/sites", "a", big, 413, nil},
		{"not JSON", "POST", "/v1/sites", "a", []byte(`id=x`), 415, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"latin1", "POST", "/v1/sites", "a", []byte(`{}`), 415, []string{"Content-Type", "application/json; charset=latin1"}},
		{"no token", "POST", "/v1/sites", "", zoom(), 401, nil},
		{"bad token", "POST", "/v1/sites", "alt_nope", zoom(), 401, nil},
		{"bad token on a public route", "GET", "/v1/sites", "alt_nope", nil, 401, nil},
		{"reader proposes", "POST", "/v1/sites", "reader", zoom(), 403, nil},
		{"owner signs for another department", "PUT", "/v1/sites/zoom/signoffs/dept-b", "a", map[string]string{"decision": "approve"}, 403, nil},
		{"owner suspends", "POST", "/v1/sites/zoom/suspend", "a", map[string]string{"reason": "x"}, 403, nil},
		{"other department patches", "PATCH", "/v1/sites/zoom", "b", map[string]any{"name": "Z"}, 403, nil},
		{"owner creates a department", "POST", "/v1/departments", "a", map[string]string{"id": "dept-x", "name": "X", "kind": "other"}, 403, nil},
		{"owner adds a contact elsewhere", "POST", "/v1/departments/dept-b/contacts", "a", map[string]string{"name": "X", "email": "x@example.org"}, 403, nil},
		{"anonymous reads contacts", "GET", "/v1/departments/dept-a/contacts", "", nil, 401, nil},
		{"reader reads contacts", "GET", "/v1/departments/dept-a/contacts", "reader", nil, 403, nil},
		{"anonymous reads audit", "GET", "/v1/audit", "", nil, 401, nil},
		{"unknown site", "GET", "/v1/sites/nope", "", nil, 404, nil},
		{"unknown route", "GET", "/v1/nope", "", nil, 404, nil},
		{"wrong method", "DELETE", "/v1/sites", "admin", nil, 405, nil},
		{"sign off an unknown site", "PUT", "/v1/sites/nope/signoffs/dept-a", "a", map[string]string{"decision": "approve"}, 404, nil},
		{"duplicate id", "POST", "/v1/sites", "a", zoom(), 409, nil},
		{"domain held by another site", "POST", "/v1/sites", "b", map[string]any{"id": "zoom2", "name": "Z", "category": "other", "domains": []string{"*.ZOOM.us."}, "owner": map[string]string{"name": "x"}}, 409, nil},
		{"public suffix", "POST", "/v1/sites", "a", map[string]any{"id": "bad", "name": "Bad", "category": "other", "domains": []string{"*.gov.uk"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"IP literal", "POST", "/v1/sites", "a", map[string]any{"id": "bad", "name": "Bad", "category": "other", "domains": []string{"192.0.2.1"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"homograph", "POST", "/v1/sites", "a", map[string]any{"id": "bad", "name": "Bad", "category": "other", "domains": []string{"\u0430pple.com"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"SQL in a domain", "POST", "/v1/sites", "a", map[string]any{"id": "bad", "name": "Bad", "category": "other", "domains": []string{"x.example.org'; DROP TABLE sites;--"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"slug with a slash", "POST", "/v1/sites", "a", map[string]any{"id": "../etc", "name": "Bad", "category": "other", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"bad category", "POST", "/v1/sites", "a", map[string]any{"id": "bad", "name": "Bad", "category": "games", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}, 422, nil},
		{"bad decision", "PUT", "/v1/sites/zoom/signoffs/dept-a", "a", map[string]string{"decision": "maybe"}, 422, nil},
		{"bad department id", "POST", "/v1/departments", "admin", map[string]string{"id": "common", "name": "X", "kind": "other"}, 422, nil},
		{"check without a domain", "GET", "/v1/check", "", nil, 422, nil},
		{"check a wildcard", "GET", "/v1/check?domain=*.zoom.us", "", nil, 422, nil},
		{"check an unknown department", "GET", "/v1/check?domain=zoom.us&department=nope", "", nil, 404, nil},
		{"request for an unknown department", "POST", "/v1/requests", "", map[string]string{"tool": "T", "reason": "R", "department": "nope"}, 422, nil},
		{"bad status filter", "GET", "/v1/sites?status=sideways", "", nil, 400, nil},
		{"bad audit limit", "GET", "/v1/audit?limit=abc", "admin", nil, 400, nil},
		{"revoke an unknown token", "DELETE", "/v1/tokens/999", "admin", nil, 404, nil},
	}
	for _, c := range cases {
		refused(t, e, c)
	}
	// Rate limit: anonymous staff requests beyond the burst get 429.
	req := map[string]string{"tool": "Miro", "reason": "workshops", "department": "dept-a"}
	got429 := false
	for i := 0; i < 5; i++ {
		r := e.do("POST", "/v1/requests", "", req)
		if r.code == 429 {
			got429 = true
			if r.h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		r.want(201)
	}
	if !got429 {
		t.Error("no 429 after the burst")
	}
}

// badCase is a request the API must refuse with status, changing nothing.
type badCase struct {
	name, method, path, token string
	body                      any
	status                    int
	headers                   []string
}

// refused sends c and checks its status, problem+json body (in e.do) and
// that nothing was stored, no version moved and no audit entry appeared.
func refused(t *testing.T, e *env, c badCase) {
	t.Run(c.name, func(t *testing.T) {
		before := snapshot(e)
		token := e.tok[c.token]
		if strings.HasPrefix(c.token, "alt_") {
			token = c.token
		}
		r := e.do(c.method, c.path, token, c.body, c.headers...)
		r.want(c.status)
		if c.status == 401 && r.h.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		if after := snapshot(e); after != before {
			t.Errorf("a refused request changed something:\n%s\n%s", before, after)
		}
	})
}

// TestContactsStayPrivate: owners see contacts, anonymous callers and
// readers never do, in site bodies, checks or lists.
func TestContactsStayPrivate(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	paths := []string{"/v1/sites", "/v1/sites/zoom", "/v1/check?domain=zoom.us", "/v1/lists/common", "/v1/lists/common?format=csv", "/v1/departments", "/v1/openapi.json"}
	for _, who := range []string{"", "reader"} {
		for _, p := range paths {
			r := e.do("GET", p, e.tok[who], nil).want(200)
			if strings.Contains(string(r.body), "@example.org") || strings.Contains(string(r.body), "owner:dept") {
				t.Errorf("%q sees a contact at %s: %s", who, p, r.body)
			}
		}
	}
	r := e.do("GET", "/v1/check?domain=zoom.us", e.tok["c"], nil).want(200)
	if !strings.Contains(string(r.body), "liaison@example.org") || !strings.Contains(string(r.body), "owner.dept-a@example.org") {
		t.Errorf("an owner does not see contacts: %s", r.body)
	}
	var contacts []allowlist.Contact
	e.do("GET", "/v1/departments/dept-b/contacts", e.tok["a"], nil).want(200).decode(&contacts)
	if len(contacts) != 1 {
		t.Errorf("contacts %+v", contacts)
	}
}

func TestPrivateLists(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: false})
	e.do("GET", "/v1/lists/common", "", nil).want(401)
	e.do("GET", "/v1/lists/common", e.tok["reader"], nil).want(200)
}

func TestTokenRevocationAndExpiry(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	var tok struct {
		ID    int64
		Token string
	}
	e.do("POST", "/v1/tokens", e.admin, map[string]string{"role": "reader", "name": "proxy"}).want(201).decode(&tok)
	e.do("GET", "/v1/lists", tok.Token, nil).want(200)
	e.do("DELETE", fmt.Sprintf("/v1/tokens/%d", tok.ID), e.admin, nil).want(204)
	e.do("GET", "/v1/lists", tok.Token, nil).want(401)
	e.do("POST", "/v1/tokens", e.admin, map[string]any{"role": "reader", "name": "old", "expires_at": time.Now().Add(-time.Hour)}).want(422)
	e.do("POST", "/v1/tokens", e.admin, map[string]any{"role": "reader", "name": "soon", "expires_at": time.Now().Add(1500 * time.Millisecond)}).want(201).decode(&tok)
	e.do("GET", "/v1/lists", tok.Token, nil).want(200)
	time.Sleep(1600 * time.Millisecond)
	e.do("GET", "/v1/lists", tok.Token, nil).want(401)
}

func TestSuspendAndAudit(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	e.do("POST", "/v1/sites/zoom/suspend", e.admin, map[string]string{"reason": "supplier breach"}).want(200)
	var l allowlist.List
	e.do("GET", "/v1/lists/common", "", nil).want(200).decode(&l)
	if l.Version != 2 || len(l.Entries) != 0 {
		t.Errorf("after suspension: version %d, %d entries", l.Version, len(l.Entries))
	}
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, map[string]string{"reason": "bad\u202ereason"}).want(422)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, map[string]string{"reason": "supplier fixed it"}).want(200)
	e.do("GET", "/v1/lists/common", "", nil).want(200).decode(&l)
	if l.Version != 3 || len(l.Entries) != 2 {
		t.Errorf("after reinstatement: version %d, %d entries", l.Version, len(l.Entries))
	}
	trail := e.do("GET", "/v1/audit", e.admin, nil).want(200)
	if !bytes.Contains(trail.body, []byte(`"action":"site.reinstate"`)) || !bytes.Contains(trail.body, []byte("supplier fixed it")) {
		t.Errorf("the reinstatement's reason is not audited: %s", trail.body)
	}
	// A bare POST, with no body, reinstates too.
	e.do("POST", "/v1/sites/zoom/suspend", e.admin, map[string]string{"reason": "again"}).want(200)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, nil).want(200)
	e.do("GET", "/v1/lists/common", "", nil).want(200).decode(&l)
	if l.Version != 5 || len(l.Entries) != 2 {
		t.Errorf("after a bare reinstatement: version %d, %d entries", l.Version, len(l.Entries))
	}
	// A body that is there is checked: not JSON, an unknown field, not an
	// object, or another media type is refused and reinstates nothing.
	e.do("POST", "/v1/sites/zoom/suspend", e.admin, map[string]string{"reason": "once more"}).want(200)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, []byte(`{"reason":`)).want(400)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, []byte(`{"why":"x"}`)).want(400)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, []byte(`"x"`)).want(400)
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, []byte(`reason=x`), "Content-Type", "application/x-www-form-urlencoded").want(415)
	e.do("GET", "/v1/lists/common", "", nil).want(200).decode(&l)
	if l.Version != 6 || len(l.Entries) != 0 {
		t.Errorf("a refused reinstatement changed the list: version %d, %d entries", l.Version, len(l.Entries))
	}
	// A client that labels every request as JSON but sends no body (as
	// reinstating did before it took a reason) still reinstates.
	e.do("POST", "/v1/sites/zoom/reinstate", e.admin, nil, "Content-Type", "application/json").want(200)
	e.do("GET", "/v1/lists/common", "", nil).want(200).decode(&l)
	if l.Version != 7 || len(l.Entries) != 2 {
		t.Errorf("after an empty JSON reinstatement: version %d, %d entries", l.Version, len(l.Entries))
	}
	e.do("DELETE", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], nil).want(200)
	var audit []allowlist.AuditEntry
	e.do("GET", "/v1/audit", e.admin, nil).want(200).decode(&audit)
	actions := map[string]int{}
	for _, a := range audit {
		actions[a.Action]++
	}
	for _, want := range []string{"site.create", "signoff.set", "signoff.delete", "site.suspend", "site.reinstate", "list.publish", "token.create", "department.create"} {
		if actions[want] == 0 {
			t.Errorf("no %s in the audit log: %v", want, actions)
		}
	}
	if _, ok := allowlist.VerifyAudit(audit, ""); !ok {
		t.Error("audit chain broken")
	}
}

// TestEveryRouteDocumented compares the routes the server registers with
// the OpenAPI document.
func TestEveryRouteDocumented(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	for _, r := range e.srv.Routes() {
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		item := spec.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is not in the OpenAPI document", r.Method, path)
		}
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("GET", "/healthz", "", nil).want(200)
	e.do("GET", "/readyz", "", nil).want(200)
	m := metricsText(t, e)
	for _, want := range []string{"allowlist_http_requests_total", "allowlist_list_version{scope=\"common\"}", "allowlist_http_request_duration_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCheckByAddress: an address and port are checked against the list's
// networks, with the site and its handling; bad input is a 422 naming the
// parameter.
func TestCheckByAddress(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	var check api.CheckResult
	e.do("GET", "/v1/check?ip=170.114.2.3&port=udp/8805", "", nil).want(200).decode(&check)
	if check.Allowed {
		t.Fatalf("allowed before any approval: %+v", check)
	}
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	e.do("GET", "/v1/check?ip=170.114.2.3&port=udp/8805", "", nil).want(200).decode(&check)
	if !check.Allowed || check.IP != "170.114.2.3" || check.Port != "udp/8805" || check.Match.Network.Prefix != "170.114.0.0/16" ||
		check.Match.Handling.TLSInspection != "bypass" || check.Match.Site.Name != "Zoom" || len(check.Signoffs) != 2 {
		t.Errorf("check %+v %+v", check, check.Match)
	}
	for q, allowed := range map[string]bool{"ip=170.114.2.3&port=tcp/8805": false, "ip=170.114.2.3&port=8805": false, "ip=170.114.2.3": true,
		"ip=170.115.0.1&port=udp/8805": false, "ip=::ffff:170.114.2.3&port=udp/3478": true} {
		e.do("GET", "/v1/check?"+q, "", nil).want(200).decode(&check)
		if check.Allowed != allowed {
			t.Errorf("%s: allowed %v", q, check.Allowed)
		}
	}
	for q, field := range map[string]string{"ip=nope": "ip", "ip=170.114.2.3&port=sctp/1": "port", "ip=170.114.2.3&port=udp/0": "port",
		"port=udp/3478": "ip", "ip=170.114.2.3&domain=zoom.us": "ip", "ip=fe80::1%25eth0": "ip"} {
		r := e.do("GET", "/v1/check?"+q, "", nil).want(422)
		if !strings.Contains(string(r.body), `"field":"`+field+`"`) {
			t.Errorf("%s: %s", q, r.body)
		}
	}
}

// TestSchemaAndProxyParameters: schema goes with json only, proxy with pac
// only; schema=2 is signed on its own and is schema 1 plus endpoints.
func TestSchemaAndProxyParameters(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	for _, q := range []string{"format=txt&schema=2", "format=json&schema=3", "format=json&proxy=p:3128", "format=pac&proxy=p", "format=pac&proxy=p:0", "format=pac&proxy=a%20b:80"} {
		e.do("GET", "/v1/lists/common?"+q, "", nil).want(400)
	}
	one := e.do("GET", "/v1/lists/common?format=json", "", nil).want(200)
	two := e.do("GET", "/v1/lists/common?format=json&schema=2", "", nil).want(200)
	if one.h.Get("X-Allowlist-Signature") == two.h.Get("X-Allowlist-Signature") || one.h.Get("ETag") == two.h.Get("ETag") {
		t.Error("schema 2 shares schema 1's signature or ETag")
	}
	head := strings.TrimSuffix(string(one.body), "}\n")
	if !strings.HasPrefix(string(two.body), head+`,"endpoints":[{"site":"zoom",`) {
		t.Errorf("schema 2 is not schema 1 plus endpoints:\n%s\n%s", one.body, two.body)
	}
	if pac := e.do("GET", "/v1/lists/common?format=pac&proxy=proxy.example.gov.uk:3128", "", nil).want(200); !strings.Contains(string(pac.body), `"PROXY proxy.example.gov.uk:3128"`) {
		t.Errorf("pac: %s", pac.body)
	}
}
