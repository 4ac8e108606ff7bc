package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
)

// TestStaffRequestTrackedToAnswer: the requester follows a request by its
// reference (never seeing e-mails), owners of another department cannot
// touch it, an owner links it to a site, and it becomes allowed by itself
// when the site reaches the department's list.
func TestStaffRequestTrackedToAnswer(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, PublicURL: "https://registry.example.org"})
	var created api.RequestCreated
	e.do("POST", "/v1/requests", "", map[string]string{"tool": "Zoom", "url": "https://zoom.us/j/1", "reason": "supplier calls", "department": "dept-a", "email": "staff@example.org"}).want(201).decode(&created)
	if created.ID == 0 || !strings.HasPrefix(created.Reference, "req_") || created.Status != "received" || created.StatusURL != "https://registry.example.org/requests/"+created.Reference {
		t.Fatalf("created %+v", created)
	}
	var again api.RequestCreated
	e.do("POST", "/v1/requests", "", map[string]string{"tool": "zoom", "url": "https://www.zoom.us", "reason": "same", "department": "dept-a"}).want(201).decode(&again)
	if again.Reference == created.Reference {
		t.Fatal("two requests share a reference")
	}
	r := e.do("GET", "/v1/requests/"+created.Reference, "", nil).want(200)
	if strings.Contains(string(r.body), "staff@example.org") || !strings.Contains(string(r.body), `"status":"received"`) {
		t.Fatalf("status page: %s", r.body)
	}
	e.do("GET", "/v1/requests/"+created.Reference[:len(created.Reference)-2], "", nil).want(404)
	e.do("GET", fmt.Sprintf("/v1/requests/%d", created.ID), "", nil).want(404) // the number is not a reference

	var groups []allowlist.RequestGroup
	e.do("GET", "/v1/requests/groups", e.tok["a"], nil).want(200).decode(&groups)
	if len(groups) != 1 || groups[0].Count != 2 || groups[0].Key != "zoom.us" {
		t.Fatalf("groups %+v", groups)
	}
	answer := fmt.Sprintf("/v1/requests/%d/answer", created.ID)
	e.do("POST", answer, e.tok["b"], map[string]string{"status": "declined", "answer": "no"}).want(403)
	e.do("POST", answer, e.tok["a"], map[string]string{"status": "declined"}).want(422)
	e.do("POST", answer, e.tok["a"], map[string]string{"site": "zoom"}).want(422) // no such site yet
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	var linked allowlist.Request
	e.do("POST", answer, e.tok["a"], map[string]any{"site": "zoom", "answer": "We proposed Zoom.", "group": true}).want(200).decode(&linked)
	if linked.Status != "in-review" || linked.Site != "zoom" {
		t.Fatalf("linked %+v", linked)
	}
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	if _, err := e.db.SettleRequests(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{created.Reference, again.Reference} {
		var v api.RequestView
		e.do("GET", "/v1/requests/"+ref, "", nil).want(200).decode(&v)
		if v.Status != "allowed" || v.Answer != "We proposed Zoom." {
			t.Fatalf("after approval: %+v", v)
		}
	}
}

// TestCheckSaysWhyNot: a name that is not allowed gets the reason, in
// plain English, with the request page's address and no API call.
func TestCheckSaysWhyNot(t *testing.T) {
	// Scopes of departments made after the start are learnt at the next
	// refresh.
	e := newEnv(t, api.Config{PublicLists: true, PublicURL: "https://registry.example.org", RefreshEvery: 20 * time.Millisecond})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(e.url + "/v1/check?domain=x.example.org&department=dept-b")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
	}
	check := func(q string) api.CheckResult {
		t.Helper()
		var c api.CheckResult
		e.do("GET", "/v1/check?"+q, "", nil).want(200).decode(&c)
		return c
	}
	c := check("domain=unknown.example.net")
	if c.Allowed || c.WhyNot == nil || c.WhyNot.Reason != allowlist.WhyNotListed || !strings.Contains(c.HowToRequest, "https://registry.example.org/request") || strings.Contains(c.HowToRequest, "/v1/") {
		t.Fatalf("unknown: %+v %+v", c, c.WhyNot)
	}
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "object", "comment": "recordings stored abroad"}).want(200)
	c = check("domain=zoom.us")
	if c.WhyNot == nil || c.WhyNot.Reason != allowlist.WhyProposed || c.WhyNot.Needed != 1 || !strings.Contains(c.WhyNot.Message, "approved by dept-a") {
		t.Fatalf("proposed: %+v", c.WhyNot)
	}
	c = check("domain=eu01.zoom.us&department=dept-b")
	if c.WhyNot == nil || c.WhyNot.Reason != allowlist.WhyObjected || !strings.Contains(c.WhyNot.Message, "recordings stored abroad") {
		t.Fatalf("objected: %+v", c.WhyNot)
	}
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-c", e.tok["c"], map[string]string{"decision": "approve"}).want(200)
	e.do("POST", "/v1/sites/zoom/suspend", e.admin, map[string]string{"reason": "a vulnerability under investigation"}).want(200)
	c = check("domain=zoom.us")
	if c.WhyNot == nil || c.WhyNot.Reason != allowlist.WhySuspended || !strings.Contains(c.WhyNot.Message, "vulnerability") {
		t.Fatalf("suspended: %+v", c.WhyNot)
	}
}

// TestWebhookSecretShownOnce: the secret comes with PUT only.
func TestWebhookSecretShownOnce(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	var w api.WebhookCreated
	e.do("PUT", "/v1/departments/dept-a/webhook", e.tok["a"], map[string]string{"url": "https://hooks.example.org/a"}).want(200).decode(&w)
	if !strings.HasPrefix(w.Secret, "whsec_") || w.URL != "https://hooks.example.org/a" {
		t.Fatalf("webhook %+v", w)
	}
	r := e.do("GET", "/v1/departments/dept-a/webhook", e.tok["a"], nil).want(200)
	if strings.Contains(string(r.body), w.Secret) || strings.Contains(string(r.body), "secret") {
		t.Fatalf("the secret is shown again: %s", r.body)
	}
	e.do("PUT", "/v1/departments/dept-a/webhook", e.tok["a"], map[string]string{"url": "ftp://hooks.example.org/a"}).want(422)
	for _, withUser := range []string{"https://bot:hunter2@hooks.example.org/a", "https://bot@hooks.example.org/a", "https://:hunter2@hooks.example.org/a"} {
		r := e.do("PUT", "/v1/departments/dept-a/webhook", e.tok["a"], map[string]string{"url": withUser}).want(422)
		if !strings.Contains(string(r.body), "user name or password") {
			t.Errorf("%s: %s", withUser, r.body)
		}
	}
	e.do("GET", "/v1/departments/dept-a/webhook", e.tok["a"], nil).want(200).decode(&w)
	if w.URL != "https://hooks.example.org/a" {
		t.Errorf("a refused address changed the webhook: %+v", w)
	}
	e.do("DELETE", "/v1/departments/dept-a/webhook", e.tok["a"], nil).want(204)
	e.do("GET", "/v1/departments/dept-a/webhook", e.tok["a"], nil).want(404)
}
