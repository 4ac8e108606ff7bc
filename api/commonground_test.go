package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
)

// groundSite finds a site's place in an answer: its group and entry.
func groundSite(g allowlist.Ground, id string) (string, allowlist.GroundSite) {
	for name, group := range map[string][]allowlist.GroundSite{"allowed_for_all": g.AllowedForAll, "one_decision_away": g.OneDecisionAway, "others": g.Others} {
		for _, s := range group {
			if s.ID == id {
				return name, s
			}
		}
	}
	return "", allowlist.GroundSite{}
}

func site(id, category string, domains ...string) map[string]any {
	return map[string]any{"id": id, "name": strings.ToUpper(id[:1]) + id[1:], "category": category, "domains": domains,
		"owner": map[string]string{"name": id + " liaison", "email": id + ".liaison@example.org"}}
}

// TestCommonGround asks the API the meeting's question over a registry
// with decisions of every kind, and checks each answer against the lists
// it says it read (every response is also checked against the OpenAPI
// document by e.do).
func TestCommonGround(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	e.do("POST", "/v1/departments", e.admin, map[string]string{"id": "dept-d", "name": "Department dept-d", "kind": "other"}).want(201)
	approve := func(site, dept string) {
		e.do("PUT", "/v1/sites/"+site+"/signoffs/"+dept, e.tok[dept[len(dept)-1:]], map[string]string{"decision": "approve"}).want(200)
	}
	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	approve("zoom", "dept-a")
	approve("zoom", "dept-b")
	e.do("POST", "/v1/sites", e.tok["a"], site("jitsi", "video-conferencing", "meet.example.org")).want(201)
	approve("jitsi", "dept-a")
	e.do("POST", "/v1/sites", e.tok["a"], site("webex", "video-conferencing", "*.webex.example.net")).want(201)
	approve("webex", "dept-a")
	approve("webex", "dept-b")
	e.do("PUT", "/v1/sites/webex/signoffs/dept-c", e.tok["c"], map[string]string{"decision": "object", "comment": "no data processing agreement"}).want(200)
	e.do("POST", "/v1/sites", e.tok["b"], site("whereby", "video-conferencing", "whereby.example.net")).want(201)
	approve("whereby", "dept-a")
	approve("whereby", "dept-b")
	e.do("POST", "/v1/sites/whereby/suspend", e.admin, map[string]string{"reason": "supplier breach"}).want(200)
	e.do("POST", "/v1/sites", e.tok["b"], site("wiki", "wiki", "wiki.example.net")).want(201)
	approve("wiki", "dept-b")
	approve("wiki", "dept-c")
	// Zoom widens; until a quorum approves, the lists keep its old domains,
	// except dept-a's, which approved the new ones.
	e.do("PATCH", "/v1/sites/zoom", e.tok["a"], map[string]any{"domains": []string{"*.zoom.us", "zoom.example.net", "new.zoom.example.net"}}).want(200)
	approve("zoom", "dept-a")

	var g allowlist.Ground
	r := e.do("GET", "/v1/common-ground?departments=dept-a,dept-c,dept-d&category=video-conferencing", "", nil).want(200).decode(&g)
	if strings.Contains(string(r.body), "@") || strings.Contains(string(r.body), "liaison") {
		t.Errorf("a contact in the answer: %s", r.body)
	}
	// Each column says which list and version it was read from.
	wantScopes := []string{"dept-a", "dept-c", "common"}
	for i, c := range g.Departments {
		if c.Scope != wantScopes[i] || c.Version != e.version(c.Scope) || c.Name == "" {
			t.Errorf("column %d: %+v, want scope %s at version %d", i, c, wantScopes[i], e.version(wantScopes[i]))
		}
	}
	want := map[string]string{"zoom": "allowed_for_all", "jitsi": "others", "webex": "others", "whereby": "others"}
	for id, group := range want {
		if got, _ := groundSite(g, id); got != group {
			t.Errorf("%s in %q, want %q", id, got, group)
		}
	}
	if got, _ := groundSite(g, "wiki"); got != "" {
		t.Errorf("category filter let the wiki in")
	}
	_, zoom := groundSite(g, "zoom")
	if got := zoom.Departments[0].Patterns; !reflect.DeepEqual(got, []string{"*.zoom.us", "new.zoom.example.net", "zoom.example.net"}) {
		t.Errorf("zoom on dept-a's list: %q", got)
	}
	if got := zoom.Departments[1].Patterns; !reflect.DeepEqual(got, []string{"*.zoom.us", "zoom.example.net"}) {
		t.Errorf("zoom on dept-c's list (published domains only): %q", got)
	}
	_, webex := groundSite(g, "webex")
	if c := webex.Departments[1]; c.Allowed || c.Reason != "objected" || c.Comment != "no data processing agreement" || c.At == nil {
		t.Errorf("webex for dept-c: %+v", c)
	}
	_, whereby := groundSite(g, "whereby")
	if c := whereby.Departments[2]; c.Reason != "suspended" || c.Comment != "supplier breach" {
		t.Errorf("whereby for dept-d: %+v", c)
	}
	_, jitsi := groundSite(g, "jitsi")
	if jitsi.AllowedBy != 1 || jitsi.Departments[1].Reason != "awaiting-decision" || jitsi.Departments[2].Reason != "awaiting-decision" {
		t.Errorf("jitsi: %+v", jitsi)
	}

	// Two departments: jitsi is one decision away from dept-b; webex is
	// allowed for both. Repeated parameters (a form's checkboxes) work too.
	e.do("GET", "/v1/common-ground?departments=dept-a&departments=dept-b&category=video-conferencing", "", nil).want(200).decode(&g)
	if got, s := groundSite(g, "jitsi"); got != "one_decision_away" || s.WaitingFor != "dept-b" || s.AllowedBy != 1 {
		t.Errorf("jitsi for a and b: %s %+v", got, s)
	}
	if len(g.AllowedForAll) != 2 || g.AllowedForAll[0].ID != "webex" && g.AllowedForAll[0].ID != "zoom" {
		t.Errorf("allowed for a and b: %+v", g.AllowedForAll)
	}
	// A decision shows in the next answer (the sites are read again).
	e.do("PUT", "/v1/sites/jitsi/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "object", "comment": "not yet"}).want(200)
	e.do("GET", "/v1/common-ground?departments=dept-a,dept-b&category=video-conferencing", "", nil).want(200).decode(&g)
	if got, s := groundSite(g, "jitsi"); got != "others" || s.Departments[1].Reason != "objected" {
		t.Errorf("jitsi after dept-b objected: %s %+v", got, s)
	}
	// Owners get the same answer: no contacts for anyone.
	anon := e.do("GET", "/v1/common-ground?departments=dept-a,dept-b", "", nil).want(200)
	owner := e.do("GET", "/v1/common-ground?departments=dept-a,dept-b", e.tok["a"], nil).want(200)
	if string(anon.body) != string(owner.body) || strings.Contains(string(owner.body), "@") {
		t.Errorf("owner's answer differs or has contacts:\n%s\n%s", anon.body, owner.body)
	}

	// Refusals: each names what is wrong and changes nothing.
	bad := e.do("GET", "/v1/common-ground?departments=dept-a,nope,Other-One", "", nil).want(422)
	if !strings.Contains(string(bad.body), `\"nope\"`) || !strings.Contains(string(bad.body), `\"other-one\"`) || strings.Contains(string(bad.body), `\"dept-a\"`) {
		t.Errorf("unknown departments not named: %s", bad.body)
	}
	for _, c := range []badCase{
		{name: "no departments", method: "GET", path: "/v1/common-ground", status: 422},
		{name: "only commas", method: "GET", path: "/v1/common-ground?departments=,,", status: 422},
		{name: "common is not a department", method: "GET", path: "/v1/common-ground?departments=common", status: 422},
		{name: "unknown category", method: "GET", path: "/v1/common-ground?departments=dept-a&category=games", status: 422},
	} {
		refused(t, e, c)
	}
	many := []string{}
	for i := 0; i < 51; i++ {
		many = append(many, fmt.Sprintf("dept-%d", i))
	}
	if r := e.do("GET", "/v1/common-ground?departments="+strings.Join(many, ","), "", nil).want(422); !strings.Contains(string(r.body), "at most 50") {
		t.Errorf("too many departments: %s", r.body)
	}
}

// BenchmarkCommonGround compares an answer for three departments with a
// check (its peer: the other anonymous look-up) over a registry of n
// sites with ten patterns each: most on common, some on one department's
// list only, a few objected to.
func BenchmarkCommonGround(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			db, err := sqlite.Open(filepath.Join(b.TempDir(), "r.db"), sqlite.Options{Quorum: 2, Key: key})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			depts := []string{"bench-a", "bench-b", "bench-c"}
			c := allowlist.Catalogue{}
			for _, d := range depts {
				c.Departments = append(c.Departments, allowlist.CatalogueDepartment{ID: d, Name: d, Kind: "other"})
			}
			for s := 0; s < n; s++ {
				site := allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: fmt.Sprintf("Site %d", s), Category: allowlist.Categories[s%len(allowlist.Categories)],
					Owner: allowlist.Owner{Name: "x"}, Signoffs: []allowlist.CatalogueSignoff{{Department: "bench-a", Decision: "approve"}}}
				switch s % 10 {
				case 0: // on bench-a's list only
				case 1:
					site.Signoffs = append(site.Signoffs, allowlist.CatalogueSignoff{Department: "bench-b", Decision: "approve"}, allowlist.CatalogueSignoff{Department: "bench-c", Decision: "object"})
				default:
					site.Signoffs = append(site.Signoffs, allowlist.CatalogueSignoff{Department: "bench-b", Decision: "approve"})
				}
				for d := 0; d < 10; d++ {
					site.Domains = append(site.Domains, fmt.Sprintf("*.svc%d.tool%d.example.net", d, s))
				}
				c.Sites = append(c.Sites, site)
			}
			ctx := context.Background()
			if err := db.Import(ctx, allowlist.System, c); err != nil {
				b.Fatal(err)
			}
			srv := api.New(db, api.Config{PublicLists: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err := srv.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run("check", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := srv.Check(ctx, fmt.Sprintf("x.svc1.tool%d.example.net", i%n), "bench-c", allowlist.Actor{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, category := range []string{"", "wiki"} {
				b.Run("common-ground/category="+category, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						g, err := srv.CommonGround(ctx, depts, category)
						if err != nil || len(g.AllowedForAll) == 0 {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
