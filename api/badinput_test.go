package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
)

// TestBadInputCatalogue refuses every class of bad input the contract and
// the test catalogue name, across endpoints, each with its status and
// problem+json, and nothing stored. With TestErrorStatuses it makes the
// catalogue of bad requests.
func TestBadInputCatalogue(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, RequestsPerMinute: 10000})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	site := func(domain any) map[string]any {
		return map[string]any{"id": "bad-site", "name": "Bad", "category": "other", "domains": []any{domain}, "owner": map[string]string{"name": "x"}}
	}
	var cases []badCase
	// Every invalid domain pattern class of docs/contract.md.
	for _, d := range []string{"", " ", "*", "*.", "com", "uk", "gov.uk", "co.uk", "*.com", "*.gov.uk", "*.co.uk",
		"foo.*.example.org", "*foo.example.org", "**.example.org", "example.org..", ".example.org", "a..b.example.org",
		strings.Repeat("a", 64) + ".example.org", strings.Repeat("abcdefghi.", 26) + "org",
		"exa_mple.example.org", "exa mple.example.org", "-example.org", "https://example.org/path", "example.org:443",
		"user@example.org", "192.0.2.10", "[2001:db8::1]", "10.0.0.0/8", "xn--zz.example", "\u0430pple.com",
		"exam\u200bple.org", "exam\u202eple.org", "example.org\n", "x.example.org'; DROP TABLE sites;--"} {
		cases = append(cases, badCase{name: "domain " + strings.ToValidUTF8(d, "?"), method: "POST", path: "/v1/sites", token: "a", body: site(d), status: 422})
	}
	cases = append(cases,
		badCase{name: "domain as a number", method: "POST", path: "/v1/sites", token: "a", body: []byte(`{"id":"bad-site","domains":[42]}`), status: 400},
		badCase{name: "domains as a string", method: "POST", path: "/v1/sites", token: "a", body: []byte(`{"id":"bad-site","domains":"x.example.org"}`), status: 400},
		badCase{name: "owner as a string", method: "POST", path: "/v1/sites", token: "a", body: []byte(`{"id":"bad-site","owner":"x"}`), status: 400},
		badCase{name: "null body", method: "POST", path: "/v1/sites", token: "a", body: []byte(`null`), status: 400},
		badCase{name: "string body", method: "POST", path: "/v1/sites", token: "a", body: []byte(`"x"`), status: 400},
		badCase{name: "empty body", method: "POST", path: "/v1/sites", token: "a", body: []byte(``), status: 400},
		badCase{name: "no content type", method: "POST", path: "/v1/requests", body: []byte(`{}`), status: 415, headers: []string{"Content-Type", ""}},
		badCase{name: "text/plain", method: "POST", path: "/v1/requests", body: []byte(`{}`), status: 415, headers: []string{"Content-Type", "text/plain"}},
		badCase{name: "10 MB body", method: "POST", path: "/v1/requests", body: bytes.Repeat([]byte("x"), 10<<20), status: 413},
		badCase{name: "decision as a number", method: "PUT", path: "/v1/sites/zoom/signoffs/dept-a", token: "a", body: []byte(`{"decision":1}`), status: 400},
		badCase{name: "DECISION beside decision", method: "PUT", path: "/v1/sites/zoom/signoffs/dept-a", token: "a", body: []byte(`{"decision":"object","DECISION":"approve"}`), status: 400},
		badCase{name: "mass assignment of status", method: "PATCH", path: "/v1/sites/zoom", token: "a", body: map[string]string{"status": "approved"}, status: 400},
		badCase{name: "mass assignment of signoffs", method: "PATCH", path: "/v1/sites/zoom", token: "a", body: map[string]any{"signoffs": []string{}}, status: 400},
		badCase{name: "patch to a public suffix", method: "PATCH", path: "/v1/sites/zoom", token: "a", body: map[string]any{"domains": []string{"*.com"}}, status: 422},
		badCase{name: "site id with a slash", method: "POST", path: "/v1/sites", token: "a", body: map[string]any{"id": "a/b", "name": "x", "category": "other", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}, status: 422},
		badCase{name: "site id upper-case", method: "POST", path: "/v1/sites", token: "a", body: map[string]any{"id": "ZOOM", "name": "x", "category": "other", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}, status: 422},
		badCase{name: "site id too long", method: "POST", path: "/v1/sites", token: "a", body: map[string]any{"id": strings.Repeat("a", 65), "name": "x", "category": "other", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}, status: 422},
		badCase{name: "department id with dots", method: "POST", path: "/v1/departments", token: "admin", body: map[string]string{"id": "../x", "name": "x", "kind": "other"}, status: 422},
		badCase{name: "department kind unknown", method: "POST", path: "/v1/departments", token: "admin", body: map[string]string{"id": "dept-z", "name": "x", "kind": "club"}, status: 422},
		badCase{name: "duplicate department", method: "POST", path: "/v1/departments", token: "admin", body: map[string]string{"id": "dept-a", "name": "x", "kind": "other"}, status: 409},
		badCase{name: "contact email invalid", method: "POST", path: "/v1/departments/dept-a/contacts", token: "a", body: map[string]string{"name": "x", "email": "not an email"}, status: 422},
		badCase{name: "token role unknown", method: "POST", path: "/v1/tokens", token: "admin", body: map[string]string{"role": "root", "name": "x"}, status: 422},
		badCase{name: "owner token for an unknown department", method: "POST", path: "/v1/tokens", token: "admin", body: map[string]string{"role": "owner", "department": "nope", "name": "x"}, status: 404},
		badCase{name: "request without a reason", method: "POST", path: "/v1/requests", body: map[string]string{"tool": "T", "department": "dept-a"}, status: 422},
		badCase{name: "request with a bad URL", method: "POST", path: "/v1/requests", body: map[string]string{"tool": "T", "reason": "R", "department": "dept-a", "url": "javascript:alert(1)"}, status: 422},
		badCase{name: "suspend without a reason", method: "POST", path: "/v1/sites/zoom/suspend", token: "admin", body: map[string]string{}, status: 422},
		badCase{name: "unknown site path", method: "GET", path: "/v1/sites/..%2F..%2Fetc", status: 404},
		badCase{name: "SQL in a site path", method: "GET", path: "/v1/sites/zoom'%20OR%201=1--", status: 404},
		badCase{name: "unknown category filter", method: "GET", path: "/v1/sites?category=games", status: 400},
		badCase{name: "very long q", method: "GET", path: "/v1/sites?q=" + strings.Repeat("a", 300), status: 400},
		badCase{name: "audit after negative", method: "GET", path: "/v1/audit?after=-1", token: "admin", status: 400},
		badCase{name: "audit limit zero", method: "GET", path: "/v1/audit?limit=0", token: "admin", status: 400},
		badCase{name: "audit limit huge", method: "GET", path: "/v1/audit?limit=1000000000", token: "admin", status: 400},
		badCase{name: "format with a path", method: "GET", path: "/v1/lists/common?format=../../etc/passwd", status: 400},
		badCase{name: "version overflow", method: "GET", path: "/v1/lists/common/versions/99999999999999999999", status: 400},
		badCase{name: "version fraction", method: "GET", path: "/v1/lists/common/versions/1.5", status: 400},
		badCase{name: "diff from letters", method: "GET", path: "/v1/lists/common/diff?from=abc", status: 400},
		badCase{name: "diff to negative", method: "GET", path: "/v1/lists/common/diff?from=0&to=-3", status: 400},
		badCase{name: "diff to the future", method: "GET", path: "/v1/lists/common/diff?from=0&to=42", status: 404},
		badCase{name: "watch after negative", method: "GET", path: "/v1/lists/common/watch?after=-1", status: 400},
		badCase{name: "watch timeout negative", method: "GET", path: "/v1/lists/common/watch?after=0&timeout=-1s", status: 400},
		badCase{name: "scope with SQL", method: "GET", path: "/v1/lists/common';--", status: 404},
		badCase{name: "basic auth", method: "GET", path: "/v1/audit", token: "", status: 401, headers: []string{"Authorization", "Basic YWRtaW46YWRtaW4="}},
		badCase{name: "revoke token id letters", method: "DELETE", path: "/v1/tokens/abc", token: "admin", status: 404},
	)
	// Control characters and bidirectional overrides in free text.
	named := func(name string) map[string]any {
		return map[string]any{"id": "bad-site", "name": name, "category": "other", "domains": []string{"ok.example.org"}, "owner": map[string]string{"name": "x"}}
	}
	for label, v := range map[string]string{"newline": "Zoom\nallowed: yes", "tab": "a\tb", "DEL": "a\x7f", "C1": "a\u009b31m",
		"RLO": "Zoom \u202eexe.", "isolate": "a\u2066b", "escape": "a\x1b[2J"} {
		cases = append(cases,
			badCase{name: "site name with " + label, method: "POST", path: "/v1/sites", token: "a", body: named(label + v), status: 422},
			badCase{name: "patched name with " + label, method: "PATCH", path: "/v1/sites/zoom", token: "a", body: map[string]string{"name": v}, status: 422},
			badCase{name: "department name with " + label, method: "POST", path: "/v1/departments", token: "admin", body: map[string]string{"id": "dept-z", "name": v, "kind": "other"}, status: 422},
			badCase{name: "contact name with " + label, method: "POST", path: "/v1/departments/dept-a/contacts", token: "a", body: map[string]string{"name": v, "email": "c@example.org"}, status: 422},
			badCase{name: "tool with " + label, method: "POST", path: "/v1/requests", body: map[string]string{"tool": v, "reason": "R", "department": "dept-a"}, status: 422},
			badCase{name: "token name with " + label, method: "POST", path: "/v1/tokens", token: "admin", body: map[string]string{"role": "reader", "name": v}, status: 422},
		)
	}
	for _, c := range cases {
		refused(t, e, c)
	}
	t.Logf("%d bad requests refused", len(cases))

	// A body larger than the limit sent chunked, with no Content-Length,
	// is 413 too, and stores nothing.
	before := snapshot(e)
	body := io.MultiReader(strings.NewReader(`{"tool":"`), bytes.NewReader(bytes.Repeat([]byte("x"), 2<<20)), strings.NewReader(`"}`))
	req, _ := http.NewRequest("POST", e.url+"/v1/requests", body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.ContentLength == 0 {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	if snapshot(e) != before {
		t.Error("the chunked body changed something")
	}

	// SQL metacharacters in free text are stored byte for byte.
	evil := "'; DROP TABLE sites;-- \"quoted\" <b>bold</b>"
	var s allowlist.Site
	e.do("PATCH", "/v1/sites/zoom", e.tok["a"], map[string]string{"description": evil}).want(200).decode(&s)
	e.do("GET", "/v1/sites/zoom", "", nil).want(200).decode(&s)
	if s.Description != evil {
		t.Errorf("free text changed: %q", s.Description)
	}
}
