package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/api"
)

// TestHeadAndMethodNotAllowedEverywhere walks every path of the OpenAPI
// document: HEAD answers wherever GET does, with GET's status and headers
// and no body; every method a path does not take is a 405 problem with an
// Allow header naming those it does.
func TestHeadAndMethodNotAllowedEverywhere(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/departments/dept-a/webhook", e.tok["a"], map[string]string{"url": "https://hooks.example.org/allowlist"}).want(200)
	var req struct{ Reference string }
	e.do("POST", "/v1/requests", "", map[string]string{"tool": "T", "reason": "r", "department": "dept-a"}).want(201).decode(&req)
	values := map[string]string{"{id}": "zoom", "{department}": "dept-a", "{scope}": "common", "{n}": "0", "{reference}": req.Reference}
	send := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		r, _ := http.NewRequest(method, e.url+path, nil)
		r.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	all := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	checked := 0
	for tmpl, item := range spec.Paths.Map() {
		path := tmpl
		if strings.HasPrefix(tmpl, "/v1/departments/") {
			path = strings.ReplaceAll(path, "{id}", "dept-a")
		}
		for k, v := range values {
			path = strings.ReplaceAll(path, k, v)
		}
		if strings.Contains(path, "{") {
			t.Fatalf("no value for a parameter of %s", tmpl)
		}
		ops := item.Operations()
		if _, ok := ops["GET"]; ok && !strings.HasSuffix(path, "/watch") {
			q := map[string]string{"/v1/check": "?domain=zoom.us", "/v1/lists/{scope}/diff": "?from=0", "/v1/common-ground": "?departments=dept-a,dept-b"}[tmpl]
			g, gb := send("GET", path+q)
			h, hb := send("HEAD", path+q)
			if h.StatusCode != g.StatusCode || len(hb) != 0 {
				t.Errorf("HEAD %s: %d with %d bytes; GET %d", path, h.StatusCode, len(hb), g.StatusCode)
			}
			for _, k := range []string{"Content-Type", "ETag", "X-Allowlist-Version", "Cache-Control"} {
				if h.Header.Get(k) != g.Header.Get(k) {
					t.Errorf("HEAD %s: %s %q, GET %q", path, k, h.Header.Get(k), g.Header.Get(k))
				}
			}
			if g.StatusCode >= 400 {
				t.Errorf("GET %s: %d %s", path, g.StatusCode, gb)
			}
			checked++
		}
		var allowed []string
		for m := range ops {
			allowed = append(allowed, m)
		}
		if slices.Contains(allowed, "GET") {
			allowed = append(allowed, "HEAD")
		}
		for _, m := range all {
			if slices.Contains(allowed, m) {
				continue
			}
			resp, b := send(m, path)
			var p api.Problem
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: %d %s", m, path, resp.StatusCode, resp.Header.Get("Content-Type"))
				continue
			}
			if m != "HEAD" && (json.Unmarshal(b, &p) != nil || p.Status != 405) {
				t.Errorf("%s %s: not a problem body: %s", m, path, b)
			}
			allow := resp.Header.Get("Allow")
			for _, want := range allowed {
				if !strings.Contains(allow, want) {
					t.Errorf("%s %s: Allow %q lacks %s", m, path, allow, want)
				}
			}
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("only %d checks made", checked)
	}
}
