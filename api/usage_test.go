package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
)

// usageBody is a valid report of dept's for the 15 minutes to now, with
// report id n (any text: it is hashed to 32 hex characters).
func usageBody(dept, n string) map[string]any {
	end := time.Now().UTC().Truncate(time.Second)
	return map[string]any{
		"report_id": fmt.Sprintf("%032x", []byte(n + "                ")[:16]), "department": dept, "scope": dept, "list_version": 1, "mode": "enforce",
		"period_start": end.Add(-15 * time.Minute).Format(time.RFC3339), "period_end": end.Format(time.RFC3339), "k": 5,
		"entries": []map[string]any{{"pattern": "*.wiki.example.org", "hits": 120}},
		"refused": []map[string]any{{"domain": "example.com", "queries": 150, "clients": 10}},
	}
}

// usageEnv is a registry with a site on dept-a's and dept-b's lists and
// a reader token bound to each of them.
func usageEnv(t *testing.T, cfg api.Config) *env {
	e := newEnv(t, cfg)
	e.do("POST", "/v1/sites", e.tok["a"], map[string]any{"id": "wiki", "name": "Wiki", "category": "wiki", "domains": []string{"*.wiki.example.org"}, "owner": map[string]string{"name": "Ops"}}).want(201)
	e.do("PUT", "/v1/sites/wiki/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/wiki/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	e.tok["resolver-a"] = e.token("reader", "dept-a")
	e.tok["resolver-b"] = e.token("reader", "dept-b")
	return e
}

// TestUsageReport: a department's resolver sends a report with its reader
// token; the answer and the counts follow the contract; every refused
// report (another department's token, an owner's or admin's, a refused
// domain under k, a field that could carry an address, too large a body)
// changes nothing.
func TestUsageReport(t *testing.T) {
	e := usageEnv(t, api.Config{})
	body := usageBody("dept-a", "first")
	body["entries"] = []map[string]any{{"pattern": "*.wiki.example.org", "hits": 120}, {"pattern": "gone.example.org", "hits": 10}}
	var rc allowlist.UsageReceipt

	before := snapshot(e)
	for _, tc := range []struct {
		name, token string
		body        any
		code        int
		field       string
	}{
		{"no token", "", body, 401, ""},
		{"bad token", "alt_nope", body, 401, ""},
		{"another department's resolver", e.tok["resolver-b"], body, 403, ""},
		{"owner of the department", e.tok["a"], body, 403, ""},
		{"admin", e.tok["admin"], body, 403, ""},
		{"reader of no department", e.tok["reader"], body, 403, ""},
		{"clients under k", e.tok["resolver-a"], with(body, "refused", []map[string]any{{"domain": "example.com", "queries": 10, "clients": 0}}), 422, "refused[0].clients"},
		{"not a registrable domain", e.tok["resolver-a"], with(body, "refused", []map[string]any{{"domain": "www.example.com", "queries": 10, "clients": 5}}), 422, "refused[0].domain"},
		{"hits not rounded", e.tok["resolver-a"], with(body, "entries", []map[string]any{{"pattern": "*.wiki.example.org", "hits": 7}}), 422, "entries[0].hits"},
		{"period in the future", e.tok["resolver-a"], with(body, "period_end", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 422, "period_end"},
		{"a client address field", e.tok["resolver-a"], with(body, "client", "192.0.2.7"), 400, ""},
		{"a client address in a refused item", e.tok["resolver-a"], with(body, "refused", []map[string]any{{"domain": "example.com", "queries": 10, "clients": 5, "client_ip": "192.0.2.7"}}), 400, ""},
		{"not JSON", e.tok["resolver-a"], []byte("report"), 400, ""},
	} {
		r := e.do("POST", "/v1/usage", tc.token, tc.body)
		if r.code != tc.code {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.code, tc.code, r.body)
		}
		if tc.field != "" {
			var p api.Problem
			json.Unmarshal(r.body, &p)
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Errorf("%s: errors %+v, want %s", tc.name, p.Errors, tc.field)
			}
		}
		if snapshot(e) != before {
			t.Fatalf("%s: refused, but something changed", tc.name)
		}
	}

	e.do("POST", "/v1/usage", e.tok["resolver-a"], body).want(202).decode(&rc)
	if rc != (allowlist.UsageReceipt{ReportID: body["report_id"].(string), Entries: 1, IgnoredEntries: 1, Refused: 1}) {
		t.Errorf("receipt %+v", rc)
	}
	// A retry of the same report: 200, the same answer, counted once.
	var again allowlist.UsageReceipt
	e.do("POST", "/v1/usage", e.tok["resolver-a"], body).want(200).decode(&again)
	if again != rc {
		t.Errorf("second receipt %+v, want %+v", again, rc)
	}
	var v api.UsageView
	e.do("GET", "/v1/departments/dept-a/usage", e.tok["a"], nil).want(200).decode(&v)
	if v.Reports == nil || *v.Reports != 1 || len(v.Refused) != 1 || v.Refused[0].Queries != 150 || len(v.Entries) != 1 || v.Entries[0].Hits != 120 || len(v.Days) != 1 {
		t.Errorf("dept-a's usage after a report sent twice: %+v", v)
	}
	// Owner B sees none of A's report, in B's view or by asking for A's.
	e.do("GET", "/v1/departments/dept-a/usage", e.tok["b"], nil).want(403)
	var vb api.UsageView
	e.do("GET", "/v1/departments/dept-b/usage", e.tok["b"], nil).want(200).decode(&vb)
	if *vb.Reports != 0 || len(vb.Refused) != 0 || len(vb.Entries) != 0 || len(vb.Days) != 0 {
		t.Errorf("dept-b sees %+v", vb)
	}
	e.do("GET", "/v1/departments/dept-a/usage?from=2026-13-01", e.tok["a"], nil).want(422)
	e.do("GET", "/v1/departments/dept-a/usage?from=2020-01-01&to=2026-01-01", e.tok["a"], nil).want(422)
	e.do("GET", "/v1/departments/nope/usage", e.tok["admin"], nil).want(404)
}

// with returns a copy of m with key set to v.
func with(m map[string]any, key string, v any) map[string]any {
	out := map[string]any{}
	for k, x := range m {
		out[k] = x
	}
	out[key] = v
	return out
}

// TestUsageBodyLimit: a report of 50,000 entries (over the API's usual
// 1 MiB) is taken; one over 4 MiB is refused with 413 and changes nothing.
func TestUsageBodyLimit(t *testing.T) {
	e := usageEnv(t, api.Config{})
	body := usageBody("dept-a", "big")
	entries := make([]map[string]any, allowlist.UsageMaxEntries)
	for i := range entries {
		entries[i] = map[string]any{"pattern": fmt.Sprintf("host-%d.wiki.example.org", i), "hits": 10}
	}
	body["entries"] = entries
	b, _ := json.Marshal(body)
	if len(b) <= api.MaxBody || len(b) > api.MaxUsageBody {
		t.Fatalf("report of %d bytes does not test the limit", len(b))
	}
	var rc allowlist.UsageReceipt
	e.do("POST", "/v1/usage", e.tok["resolver-a"], b).want(202).decode(&rc)
	if rc.Entries != 0 || rc.IgnoredEntries != allowlist.UsageMaxEntries {
		t.Errorf("receipt %+v: the hosts are not list entries and are ignored", rc)
	}
	before := snapshot(e)
	big := usageBody("dept-a", "too big")
	big["pad"] = strings.Repeat("x", api.MaxUsageBody)
	r := e.do("POST", "/v1/usage", e.tok["resolver-a"], big).want(413)
	if !bytes.Contains(r.body, []byte("4 MiB")) {
		t.Errorf("413 says %s", r.body)
	}
	if snapshot(e) != before {
		t.Error("a refused report changed something")
	}
}

// TestUsageCrossGovernment: anyone sees the cross-government totals of
// refused domains that two departments or more reported and whose clients
// reach k, never which departments reported them; an admin sees
// everything. The registry's k here (10) is above the k some stored
// reports were taken with (5). One department alone, however many clients
// it claims, puts nothing in the public totals.
func TestUsageCrossGovernment(t *testing.T) {
	e := usageEnv(t, api.Config{UsageK: 10})
	now := time.Now().UTC().Truncate(time.Second)
	for i, rep := range []struct {
		dept    string
		refused []allowlist.UsageRefused
	}{
		{"dept-a", []allowlist.UsageRefused{{Domain: "shared-example.net", Queries: 100, Clients: 5}, {Domain: "lonely-example.net", Queries: 500, Clients: 5}, {Domain: "made-up-example.net", Queries: 9000, Clients: 5000}}},
		{"dept-b", []allowlist.UsageRefused{{Domain: "shared-example.net", Queries: 20, Clients: 5}}},
	} {
		r := allowlist.UsageReport{ReportID: fmt.Sprintf("%032x", i+1), Department: rep.dept, Scope: rep.dept, ListVersion: 1, Mode: "monitor",
			PeriodStart: now.Add(-time.Minute), PeriodEnd: now, K: 5, Refused: rep.refused}
		a := allowlist.Actor{Role: allowlist.RoleReader, Department: rep.dept, Name: "r"}
		if _, _, err := e.db.RecordUsage(context.Background(), a, r, now, 5); err != nil {
			t.Fatal(err)
		}
	}
	for _, who := range []string{"", "reader", "a", "b"} {
		r := e.do("GET", "/v1/usage", e.tok[who], nil).want(200)
		var v api.UsageView
		r.decode(&v)
		if len(v.Refused) != 1 || v.Refused[0] != (allowlist.RefusedUsage{Domain: "shared-example.net", Queries: 120, Clients: 10}) || v.K != 10 {
			t.Errorf("%q sees %+v", who, v)
		}
		if v.Reports != nil || v.Entries != nil || v.Days != nil || bytes.Contains(r.body, []byte("dept-")) || bytes.Contains(r.body, []byte("departments")) {
			t.Errorf("%q sees more than the totals: %s", who, r.body)
		}
	}
	var v api.UsageView
	e.do("GET", "/v1/usage", e.tok["admin"], nil).want(200).decode(&v)
	if len(v.Refused) != 3 || v.Refused[1] != (allowlist.RefusedUsage{Domain: "lonely-example.net", Queries: 500, Clients: 5, Departments: 1}) || *v.Reports != 2 {
		t.Errorf("admin sees %+v", v)
	}
	// The limit counts what may be shown: one department's names, however
	// often it says they were asked, do not push the shared one out of
	// the public totals.
	var top api.UsageView
	e.do("GET", "/v1/usage?limit=1", "", nil).want(200).decode(&top)
	if len(top.Refused) != 1 || top.Refused[0].Domain != "shared-example.net" {
		t.Errorf("anyone's first refused domain: %+v, want shared-example.net", top.Refused)
	}
	e.do("GET", "/v1/usage?limit=1", e.tok["admin"], nil).want(200).decode(&top)
	if len(top.Refused) != 1 || top.Refused[0].Domain != "made-up-example.net" {
		t.Errorf("the admin's first refused domain: %+v, want made-up-example.net", top.Refused)
	}
}

// lockedBuffer is a log sink the server's goroutines may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUsageNoClientAddressKept: a resolver that tried to send client
// addresses (in any field, or as a refused domain) is refused, and not a
// byte of the addresses reaches the registry's database files or its logs,
// while its good reports are kept.
func TestUsageNoClientAddressKept(t *testing.T) {
	logs := &lockedBuffer{}
	e := usageEnv(t, api.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	addrs := []string{"192.0.2.77", "2001:db8::77", "77.2.0.192.in-addr.arpa"}
	for i, b := range []map[string]any{
		with(usageBody("dept-a", "addr-1"), "client", addrs[0]),
		with(usageBody("dept-a", "addr-2"), "clients", []string{addrs[0], addrs[1]}),
		with(usageBody("dept-a", "addr-3"), "refused", []map[string]any{{"domain": "example.com", "queries": 10, "clients": 5, "client": addrs[1]}}),
		with(usageBody("dept-a", "addr-4"), "refused", []map[string]any{{"domain": addrs[0], "queries": 10, "clients": 5}}),
		with(usageBody("dept-a", "addr-5"), "refused", []map[string]any{{"domain": addrs[2], "queries": 10, "clients": 5}}),
		with(usageBody("dept-a", "addr-6"), "entries", []map[string]any{{"pattern": addrs[1], "hits": 10}}),
	} {
		if r := e.do("POST", "/v1/usage", e.tok["resolver-a"], b); r.code != 400 && r.code != 422 {
			t.Errorf("report %d with an address: %d", i, r.code)
		}
	}
	e.do("POST", "/v1/usage", e.tok["resolver-a"], usageBody("dept-a", "good")).want(202)
	e.db.Close() // everything on disk
	files, _ := filepath.Glob(e.path + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	kept := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		kept = kept || bytes.Contains(b, []byte("example.com"))
		for _, a := range addrs {
			if bytes.Contains(b, []byte(a)) {
				t.Errorf("%s holds %s", filepath.Base(f), a)
			}
		}
	}
	if !kept {
		t.Error("the good report's refused domain is not in the database: the search proves nothing")
	}
	if !strings.Contains(logs.String(), `"route":"/v1/usage"`) {
		t.Fatal("no request logged: the search proves nothing")
	}
	for _, a := range addrs {
		if strings.Contains(logs.String(), a) {
			t.Errorf("the logs hold %s", a)
		}
	}
}

// TestUsageReportRateLimit: one token sends a burst of 10 reports, then
// gets 429 with Retry-After and nothing counted (an attacker once sent
// 1,000 reports in 20 s); another department's token is not slowed.
func TestUsageReportRateLimit(t *testing.T) {
	e := usageEnv(t, api.Config{})
	for i := range api.DefaultUsageBurst {
		e.do("POST", "/v1/usage", e.tok["resolver-a"], usageBody("dept-a", fmt.Sprint("burst", i))).want(202)
	}
	r := e.do("POST", "/v1/usage", e.tok["resolver-a"], usageBody("dept-a", "one too many"))
	if r.code != 429 || r.h.Get("Retry-After") == "" || r.h.Get("Retry-After") == "0" {
		t.Fatalf("report past the burst: %d, Retry-After %q: %s", r.code, r.h.Get("Retry-After"), r.body)
	}
	var v api.UsageView
	e.do("GET", "/v1/departments/dept-a/usage", e.tok["a"], nil).want(200).decode(&v)
	if *v.Reports != api.DefaultUsageBurst {
		t.Errorf("%d reports counted, want %d", *v.Reports, api.DefaultUsageBurst)
	}
	e.do("POST", "/v1/usage", e.tok["resolver-b"], usageBody("dept-b", "other token")).want(202)
}
