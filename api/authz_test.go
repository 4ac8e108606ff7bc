package api_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cross-gov/allowlist/api"
)

// TestAuthorizationMatrix calls every endpoint as each kind of caller:
// anonymous, a reader, an owner of department A, an owner of department B
// and an admin, on department A's and department B's objects. A denied
// call gets 401 (no identity) or 403 (wrong role or department) and
// changes nothing; an allowed one is neither. Contacts never reach an
// anonymous caller or a reader.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, RequestsPerMinute: 10000})
	e.do("POST", "/v1/sites", e.tok["a"], map[string]any{"id": "site-a", "name": "A", "category": "wiki", "domains": []string{"*.a.example.org"}, "owner": map[string]string{"name": "A", "email": "owner-a@example.org"}}).want(201)
	e.do("POST", "/v1/sites", e.tok["b"], map[string]any{"id": "site-b", "name": "B", "category": "wiki", "domains": []string{"*.b.example.org"}, "owner": map[string]string{"name": "B", "email": "owner-b@example.org"}}).want(201)
	e.do("PUT", "/v1/sites/site-a/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/site-a/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	var reqA struct {
		ID        int64
		Reference string
	}
	e.do("POST", "/v1/requests", "", map[string]string{"tool": "T", "reason": "R", "department": "dept-a", "email": "staff@example.org"}).want(201).decode(&reqA)
	e.do("PUT", "/v1/departments/dept-a/webhook", e.tok["a"], map[string]string{"url": "https://hooks.example.org/a"}).want(200)

	var seq atomic.Int64
	uniq := func() string { return fmt.Sprint(seq.Add(1)) }
	actors := []string{"", "reader", "a", "b", "admin"}
	all := []string{"", "reader", "a", "b", "admin"}
	owners := []string{"a", "b", "admin"}
	type cell struct {
		method string
		path   func() string
		body   func() any
		allow  []string
	}
	static := func(s string) func() string { return func() string { return s } }
	none := func() any { return nil }
	cells := []cell{
		{"GET", static("/healthz"), none, all},
		{"GET", static("/readyz"), none, all},
		{"GET", static("/metrics"), none, all},
		{"GET", static("/v1/openapi.json"), none, all},
		{"POST", static("/v1/departments"), func() any {
			return map[string]string{"id": "dept-x" + uniq(), "name": "X", "kind": "other"}
		}, []string{"admin"}},
		{"GET", static("/v1/departments"), none, all},
		{"GET", static("/v1/departments/dept-a"), none, all},
		{"POST", static("/v1/departments/dept-a/contacts"), func() any {
			return map[string]string{"name": "N", "email": "n" + uniq() + "@example.org"}
		}, []string{"a", "admin"}},
		{"POST", static("/v1/departments/dept-b/contacts"), func() any {
			return map[string]string{"name": "N", "email": "n" + uniq() + "@example.org"}
		}, []string{"b", "admin"}},
		{"GET", static("/v1/departments/dept-a/contacts"), none, owners},
		{"GET", static("/v1/departments/dept-b/contacts"), none, owners},
		{"POST", static("/v1/tokens"), func() any { return map[string]string{"role": "reader", "name": "r" + uniq()} }, []string{"admin"}},
		{"GET", static("/v1/tokens"), none, []string{"admin"}},
		{"DELETE", func() string { return fmt.Sprintf("/v1/tokens/%d", e.freshTokenID()) }, none, []string{"admin"}},
		{"POST", static("/v1/sites"), func() any {
			id := "site-n" + uniq()
			return map[string]any{"id": id, "name": "N", "category": "wiki", "domains": []string{id + ".example.net"}, "owner": map[string]string{"name": "N"}}
		}, owners},
		{"GET", static("/v1/sites"), none, all},
		{"GET", static("/v1/sites/site-a"), none, all},
		{"PATCH", static("/v1/sites/site-a"), func() any { return map[string]string{"description": "d" + uniq()} }, []string{"a", "admin"}},
		{"PATCH", static("/v1/sites/site-b"), func() any { return map[string]string{"description": "d" + uniq()} }, []string{"b", "admin"}},
		{"PUT", static("/v1/sites/site-b/signoffs/dept-a"), func() any { return map[string]string{"decision": "approve"} }, []string{"a", "admin"}},
		{"PUT", static("/v1/sites/site-b/signoffs/dept-b"), func() any { return map[string]string{"decision": "approve"} }, []string{"b", "admin"}},
		{"DELETE", static("/v1/sites/site-b/signoffs/dept-a"), none, []string{"a", "admin"}},
		{"DELETE", static("/v1/sites/site-b/signoffs/dept-b"), none, []string{"b", "admin"}},
		{"POST", static("/v1/sites/site-b/suspend"), func() any { return map[string]string{"reason": "r"} }, []string{"admin"}},
		{"POST", static("/v1/sites/site-b/reinstate"), none, []string{"admin"}},
		{"GET", static("/v1/check?domain=x.a.example.org"), none, all},
		{"GET", static("/v1/check?domain=x.a.example.org&department=dept-b"), none, all},
		{"POST", static("/v1/requests"), func() any {
			return map[string]string{"tool": "T", "reason": "R", "department": "dept-a", "email": "staff@example.org"}
		}, all},
		{"GET", static("/v1/requests"), none, owners},
		{"GET", static("/v1/requests/groups"), none, owners},
		{"GET", func() string { return "/v1/requests/" + reqA.Reference }, none, all},
		{"POST", func() string { return fmt.Sprintf("/v1/requests/%d/answer", reqA.ID) }, func() any { return map[string]string{"answer": "a" + uniq()} }, []string{"a", "admin"}},
		{"GET", static("/v1/departments/dept-a/queue"), none, []string{"a", "admin"}},
		{"PUT", static("/v1/departments/dept-b/webhook"), func() any { return map[string]string{"url": "https://hooks.example.org/b" + uniq()} }, []string{"b", "admin"}},
		{"GET", static("/v1/departments/dept-a/webhook"), none, []string{"a", "admin"}},
		{"DELETE", static("/v1/departments/dept-b/webhook"), none, []string{"b", "admin"}},
		{"GET", static("/v1/departments/dept-a/deliveries"), none, []string{"a", "admin"}},
		{"POST", static("/v1/sites/site-a/signoffs/dept-a/renew"), none, []string{"a", "admin"}},
		{"GET", static("/v1/audit"), none, []string{"admin"}},
		{"GET", static("/v1/lists"), none, all},
		{"GET", static("/v1/lists/common"), none, all},
		{"GET", static("/v1/lists/dept-a?format=csv"), none, all},
		{"GET", static("/v1/lists/common/versions"), none, all},
		{"GET", static("/v1/lists/common/versions/0"), none, all},
		{"GET", static("/v1/lists/common/diff?from=0"), none, all},
		{"GET", static("/v1/lists/common/watch?after=0&timeout=0s"), none, all},
		{"GET", static("/v1/keys"), none, all},
		// Only a reader bound to dept-a may send dept-a's usage (TestUsageReport).
		{"POST", static("/v1/usage"), func() any { return usageBody("dept-a", uniq()) }, nil},
		{"GET", static("/v1/usage"), none, all},
		{"GET", static("/v1/departments/dept-a/usage"), none, []string{"a", "admin"}},
		{"GET", static("/v1/departments/dept-b/usage"), none, []string{"b", "admin"}},
	}
	checked := 0
	for _, c := range cells {
		for _, who := range actors {
			allowed := false
			for _, a := range c.allow {
				allowed = allowed || a == who
			}
			path := c.path()
			name := fmt.Sprintf("%s %s as %q", c.method, path, who)
			before := snapshot(e)
			r := e.do(c.method, path, e.tok[who], c.body())
			checked++
			switch {
			case allowed && (r.code == 401 || r.code == 403 || r.code >= 500):
				t.Errorf("%s: %d, want it allowed: %s", name, r.code, r.body)
			case !allowed && who == "" && r.code != 401:
				t.Errorf("%s: %d, want 401", name, r.code)
			case !allowed && who != "" && r.code != 403:
				t.Errorf("%s: %d, want 403", name, r.code)
			case !allowed && snapshot(e) != before:
				t.Errorf("%s: refused, but something changed", name)
			}
			if (who == "" || who == "reader") && strings.Contains(string(r.body), "@example.org") {
				t.Errorf("%s: a contact leaked: %s", name, r.body)
			}
		}
	}
	t.Logf("%d authorisation cells checked", checked)
}

// freshTokenID makes a token to be revoked.
func (e *env) freshTokenID() int64 {
	var out struct{ ID int64 }
	e.do("POST", "/v1/tokens", e.admin, map[string]string{"role": "reader", "name": "to-revoke"}).want(201).decode(&out)
	return out.ID
}

// TestFailedAuthenticationIsRateLimited: after a burst of bad tokens from
// one address, it gets 429 with Retry-After, even with a good token.
func TestFailedAuthenticationIsRateLimited(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	got429 := false
	for i := 0; i < 30; i++ {
		r := e.do("GET", "/v1/audit", "alt_guess"+fmt.Sprint(i), nil)
		if r.code == 429 {
			got429 = true
			if r.h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		r.want(401)
	}
	if !got429 {
		t.Fatal("no 429 after 30 failed tokens")
	}
	e.do("GET", "/v1/audit", e.admin, nil).want(429)
}
