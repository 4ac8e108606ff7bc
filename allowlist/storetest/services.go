package storetest

import (
	"strings"
	"sync"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// testSubscribers: every subscriber hears each version a commit
// published, with the bytes the store then serves; a refused change
// publishes nothing and tells nobody.
func testSubscribers(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a", "dept-b")
	var mu sync.Mutex
	heard := map[int][]allowlist.Version{}
	for i := range 2 {
		db.Subscribe(func(v allowlist.Version) {
			mu.Lock()
			heard[i] = append(heard[i], v)
			mu.Unlock()
		})
	}
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
	if _, err := db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "maybe", ""); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Fatalf("a decision that is not one: %v", err)
	}
	mu.Lock()
	if len(heard[0])+len(heard[1]) != 0 {
		t.Errorf("heard %v before any list changed", heard)
	}
	mu.Unlock()
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	want := Must[allowlist.Version](t)(db.FindVersion(ctx, "dept-a", allowlist.Latest))
	mu.Lock()
	defer mu.Unlock()
	for i := range 2 {
		if len(heard[i]) != 1 {
			t.Fatalf("subscriber %d heard %d versions, want dept-a's new one", i, len(heard[i]))
		}
		v := heard[i][0]
		if v.Scope != "dept-a" || v.Version != want.Version || v.SHA256 != want.SHA256 || string(v.Whole()) != string(want.Body) || v.Signature != want.Signature {
			t.Errorf("subscriber %d heard %s/%d %s, the store serves %d %s", i, v.Scope, v.Version, v.SHA256, want.Version, want.SHA256)
		}
	}
}

// testProposeSite: proposing and approving is one change: the site, its
// proposer's approval, the department's new list version and the audit
// entries of both steps, or (refused) none of them.
func testProposeSite(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a", "dept-b")
	in := allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"Wiki.Example.org"}, Owner: allowlist.Owner{Name: "Ops"}}
	before := version(t, db, "dept-a")
	auditBefore := len(Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0)))
	for _, c := range []struct {
		name  string
		actor allowlist.Actor
		in    allowlist.SiteInput
		code  string
	}{
		{"an actor of no department", allowlist.System, in, allowlist.EFORBIDDEN},
		{"an unknown department", Owner("dept-zz"), in, allowlist.ENOTFOUND},
		{"an invalid site", Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "nope", Domains: []string{"gov.uk"}}, allowlist.EINVALID},
	} {
		if _, err := db.ProposeSite(ctx, c.actor, c.in, "ours"); allowlist.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, err := db.FindSite(ctx, "wiki"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("a refused proposal left a site: %v", err)
	}
	if n := len(Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))); n != auditBefore {
		t.Errorf("refused proposals audited: %d entries, had %d", n, auditBefore)
	}
	site := Must[allowlist.Site](t)(db.ProposeSite(ctx, Owner("dept-a"), in, "we use it"))
	if site.ProposedBy != "dept-a" || site.Status != allowlist.StatusProposed || len(site.Signoffs) != 1 ||
		site.Signoffs[0].Department != "dept-a" || site.Signoffs[0].Decision != allowlist.DecisionApprove || site.Signoffs[0].Comment != "we use it" {
		t.Fatalf("proposed %+v", site)
	}
	if got := version(t, db, "dept-a"); got != before+1 {
		t.Errorf("dept-a at version %d after proposing and approving, want %d", got, before+1)
	}
	var actions []string
	for _, e := range Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))[auditBefore:] {
		actions = append(actions, e.Action+" "+e.Object)
	}
	if want := []string{"site.create site/wiki", "signoff.set site/wiki/signoffs/dept-a", "list.publish list/dept-a"}; strings.Join(actions, ", ") != strings.Join(want, ", ") {
		t.Errorf("audited %q, want %q", actions, want)
	}
	if _, err := db.ProposeSite(ctx, Owner("dept-b"), in, ""); allowlist.ErrorCode(err) != allowlist.ECONFLICT {
		t.Errorf("the same id again: %v", err)
	}
	if s := Must[allowlist.Site](t)(db.FindSite(ctx, "wiki")); len(s.Signoffs) != 1 {
		t.Errorf("a refused second proposal changed the decisions: %+v", s.Signoffs)
	}
}
