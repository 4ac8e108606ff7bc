package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// groundIDs is an answer's groups as site ids, from the API's JSON.
func groundIDs(t *testing.T, body []byte) map[string][]string {
	t.Helper()
	var g map[string]json.RawMessage
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("answer: %v\n%s", err, body)
	}
	out := map[string][]string{}
	for _, k := range []string{"allowed_for_all", "one_decision_away", "others"} {
		var sites []struct{ ID string }
		json.Unmarshal(g[k], &sites)
		out[k] = []string{}
		for _, s := range sites {
			out[k] = append(out[k], s.ID)
		}
	}
	return out
}

// TestCommonGroundWithRealProcesses asks the seeded registry which video
// tools DSIT, HMRC and GLA can all use, through the API and through
// `allowlist common-ground`, as decisions change.
func TestCommonGroundWithRealProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	r := startRegistry(t, db, "--seed")
	owner := map[string]string{}
	for _, d := range []string{"dsit", "hmrc", "gla"} {
		out, _, code := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", d, "--name", "owner-"+d)
		if code != 0 {
			t.Fatal("token create failed")
		}
		owner[d] = lastLine(out)
	}
	ask := func(args ...string) (string, string, int) {
		return cli(t, append(append([]string{"common-ground"}, args...), "--registry", r.url)...)
	}
	video := "/v1/common-ground?departments=dsit,hmrc,gla&category=video-conferencing"

	// In the seed, Zoom, Teams and Meet are on common; Webex only on DEFRA's.
	code, body := r.call(t, "GET", video, "", "")
	want := map[string][]string{"allowed_for_all": {"google-meet", "microsoft-teams", "zoom"}, "one_decision_away": {}, "others": {"webex"}}
	if got := groundIDs(t, body); code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("API: %d %v, want %v", code, got, want)
	}
	if strings.Contains(string(body), "@example.org") {
		t.Errorf("a contact in the answer: %s", body)
	}
	out, errOut, code := ask("dsit", "hmrc", "gla", "--category", "video-conferencing")
	if code != 0 || !strings.Contains(out, "Allowed for all (3):") || !strings.Contains(out, "Zoom (zoom)") || !strings.Contains(out, "Webex (webex)") {
		t.Errorf("CLI: exit %d\n%s%s", code, out, errOut)
	}
	// --json is the API's answer itself.
	out, _, _ = ask("dsit", "hmrc", "gla", "--category", "video-conferencing", "--json")
	if got := groundIDs(t, []byte(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("CLI --json: %v, want %v", got, want)
	}

	// HMRC objects to Zoom; DSIT and GLA approve Webex, which is then one
	// HMRC decision away.
	for _, c := range []struct{ site, dept, decision string }{
		{"zoom", "hmrc", "object"}, {"webex", "dsit", "approve"}, {"webex", "gla", "approve"},
	} {
		if code, b := r.call(t, "PUT", "/v1/sites/"+c.site+"/signoffs/"+c.dept, owner[c.dept], `{"decision":"`+c.decision+`","comment":"e2e"}`); code != 200 {
			t.Fatalf("%s %s: %d %s", c.dept, c.site, code, b)
		}
	}
	_, body = r.call(t, "GET", video, "", "")
	want = map[string][]string{"allowed_for_all": {"google-meet", "microsoft-teams", "webex"}, "one_decision_away": {}, "others": {"zoom"}}
	if got := groundIDs(t, body); !reflect.DeepEqual(got, want) {
		t.Errorf("after the decisions: %v, want %v", got, want)
	}
	// Webex reached common (quorum 2) with DSIT and GLA: allowed for all.
	// Between DSIT and a new department (whose list is common's), a tool
	// only DSIT approved is one decision of the new department away; DSIT's
	// column is read from its own list, the new department's from common.
	if code, b := r.call(t, "POST", "/v1/departments", r.admin, `{"id":"met-office","name":"Met Office","kind":"arms-length-body"}`); code != 201 {
		t.Fatalf("department: %d %s", code, b)
	}
	site := `{"id":"whereby","name":"Whereby","category":"video-conferencing","domains":["whereby.example.net"],"owner":{"name":"Whereby team","email":"whereby@example.org"}}`
	if code, b := r.call(t, "POST", "/v1/sites", owner["dsit"], site); code != 201 {
		t.Fatalf("propose: %d %s", code, b)
	}
	if code, b := r.call(t, "PUT", "/v1/sites/whereby/signoffs/dsit", owner["dsit"], `{"decision":"approve"}`); code != 200 {
		t.Fatalf("approve: %d %s", code, b)
	}
	out, errOut, code = ask("dsit", "met-office", "--category", "video-conferencing")
	if code != 0 || !strings.Contains(out, "One decision away (1):") || !strings.Contains(out, "Whereby (whereby)") ||
		!strings.Contains(out, "waiting for Met Office to decide") || !strings.Contains(out, "met-office: the common list (its own list is the same), version") {
		t.Errorf("one decision away: exit %d\n%s%s", code, out, errOut)
	}
	_, body = r.call(t, "GET", "/v1/common-ground?departments=dsit,met-office&category=video-conferencing", "", "")
	var g struct {
		Departments []struct {
			ID, Scope string
			Version   int64
		}
		OneDecisionAway []struct {
			ID         string
			WaitingFor string `json:"waiting_for"`
		} `json:"one_decision_away"`
	}
	json.Unmarshal(body, &g)
	for _, d := range g.Departments {
		_, lb := r.call(t, "GET", "/v1/lists/"+d.Scope, "", "")
		var l struct{ Version int64 }
		json.Unmarshal(lb, &l)
		if l.Version != d.Version {
			t.Errorf("%s read %s at %d; that list is at %d", d.ID, d.Scope, d.Version, l.Version)
		}
	}
	if len(g.Departments) != 2 || g.Departments[0].Scope != "dsit" || g.Departments[1].Scope != "common" ||
		len(g.OneDecisionAway) != 1 || g.OneDecisionAway[0].WaitingFor != "met-office" {
		t.Errorf("answer: %s", body)
	}

	// The page's link to send is built on the registry's address, not on
	// the Host a caller sends (it is quoted in requests owners read).
	req, _ := http.NewRequest("GET", r.url+"/common-ground?departments=dsit,met-office", nil)
	req.Host = "evil.example.net"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), r.url+"/common-ground?departments=dsit,met-office") || strings.Contains(string(page), "evil.example.net") {
		t.Errorf("page with a forged Host: %d\n%s", resp.StatusCode, page)
	}

	// HMRC objects to Teams and Meet too: no video tool for all, exit 1.
	for _, s := range []string{"microsoft-teams", "google-meet", "webex"} {
		if code, b := r.call(t, "PUT", "/v1/sites/"+s+"/signoffs/hmrc", owner["hmrc"], `{"decision":"object","comment":"not assured"}`); code != 200 {
			t.Fatalf("object: %d %s", code, b)
		}
	}
	out, errOut, code = ask("dsit", "hmrc", "gla", "--category", "video-conferencing")
	if code != 1 || !strings.Contains(out, "Allowed for all (0):") || !strings.Contains(out, "hmrc objected (not assured)") {
		t.Errorf("none for all: exit %d\n%s%s", code, out, errOut)
	}

	// Mistakes: exit 2, naming what is wrong.
	_, errOut, code = ask("dsit", "nope", "hmrc", "zz-top")
	if code != 2 || !strings.Contains(errOut, `"nope"`) || !strings.Contains(errOut, `"zz-top"`) {
		t.Errorf("unknown departments: exit %d %s", code, errOut)
	}
	if _, errOut, code = ask("dsit", "--category", "games"); code != 2 || !strings.Contains(errOut, "category") {
		t.Errorf("unknown category: exit %d %s", code, errOut)
	}
	if _, _, code = ask(); code != 2 {
		t.Errorf("no departments: exit %d", code)
	}
	if _, _, code = cli(t, "common-ground", "dsit", "--registry", "http://127.0.0.1:1"); code != 2 {
		t.Errorf("no registry: exit %d", code)
	}
}
