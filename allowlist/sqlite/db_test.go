package sqlite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

var ctx = context.Background()

// mustOpen opens a fresh database file in a temp dir.
func mustOpen(tb testing.TB, quorum int) *DB {
	tb.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := Open(filepath.Join(tb.TempDir(), "registry.db"), Options{Quorum: quorum, Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func seed(t *testing.T, db *DB, depts ...string) {
	for _, d := range depts {
		must[allowlist.Department](t)(db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: "Dept " + d, Kind: "other"}))
	}
}

func owner(dept string) allowlist.Actor {
	return allowlist.Actor{Role: allowlist.RoleOwner, Department: dept, Name: "owner-" + dept}
}

func version(t *testing.T, db *DB, scope string) int64 {
	t.Helper()
	v, err := db.FindVersion(ctx, scope, allowlist.Latest)
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

func TestFlowToQuorum(t *testing.T) {
	db := mustOpen(t, 2)
	if got := version(t, db, "common"); got != 0 {
		t.Fatalf("fresh common at version %d, want 0", got)
	}
	seed(t, db, "dept-a", "dept-b", "dept-c")
	if got := version(t, db, "dept-a"); got != 0 {
		t.Fatalf("new department scope at version %d, want 0", got)
	}
	site := must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"*.Wiki.Example.org.", "files.example.net"}, Owner: allowlist.Owner{Name: "Ops", Email: "ops@example.org"},
	}))
	if site.Status != allowlist.StatusProposed || site.ProposedBy != "dept-a" || !reflect.DeepEqual(site.Domains, []string{"*.wiki.example.org", "files.example.net"}) {
		t.Fatalf("created %+v", site)
	}
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", "fine"))
	if got := version(t, db, "common"); got != 0 {
		t.Errorf("common moved to %d after one approval", got)
	}
	if got := version(t, db, "dept-a"); got != 1 {
		t.Errorf("dept-a at %d after its approval, want 1", got)
	}
	site = must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "approve", ""))
	if site.Status != allowlist.StatusApproved {
		t.Errorf("status %s after quorum", site.Status)
	}
	v := must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if v.Version != 1 || v.Entries != 2 || v.Added != 2 {
		t.Errorf("common %+v", v)
	}
	if err := allowlist.VerifyList(db.PublicKey(), v.Body, v.Signature); err != nil {
		t.Error(err)
	}
	l, err := allowlist.ParseList(v.Body)
	if err != nil || l.SHA256 != v.SHA256 {
		t.Fatalf("stored body: %v", err)
	}
	// dept-a's scope already had the site: reaching quorum changes nothing.
	if got := version(t, db, "dept-a"); got != 1 {
		t.Errorf("dept-a at %d, want 1 (content unchanged)", got)
	}
	if got := version(t, db, "dept-c"); got != 1 {
		t.Errorf("dept-c at %d, want 1", got)
	}
	// Re-approving changes no content: no new version.
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "approve", "again"))
	if got := version(t, db, "common"); got != 1 {
		t.Errorf("common at %d after a no-op, want 1", got)
	}
	// Widening waits for quorum.
	domains := []string{"*.wiki.example.org", "files.example.net", "cdn.example.net"}
	must[allowlist.Site](t)(db.UpdateSite(ctx, owner("dept-a"), "wiki", allowlist.SitePatch{Domains: &domains}))
	if got := version(t, db, "common"); got != 1 {
		t.Errorf("common widened at once to %d", got)
	}
	site = must[allowlist.Site](t)(db.FindSite(ctx, "wiki"))
	if len(site.Published) != 2 || site.Revision != 2 {
		t.Errorf("published %v revision %d", site.Published, site.Revision)
	}
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "approve", ""))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-c"), "wiki", "dept-c", "approve", ""))
	if got := version(t, db, "common"); got != 2 {
		t.Errorf("common at %d after the widening reached quorum, want 2", got)
	}
	// Suspension empties every list in the next version.
	must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "wiki", "security review"))
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		v := must[allowlist.Version](t)(db.FindVersion(ctx, scope, allowlist.Latest))
		if v.Entries != 0 {
			t.Errorf("%s still has %d entries after suspension", scope, v.Entries)
		}
	}
	must[allowlist.Site](t)(db.ReinstateSite(ctx, allowlist.System, "wiki"))
	if got := version(t, db, "common"); got != 4 {
		t.Errorf("common at %d after reinstatement, want 4", got)
	}
	versions := must[[]allowlist.Version](t)(db.FindVersions(ctx, "common"))
	for i, v := range versions {
		if v.Version != int64(i) {
			t.Errorf("versions not contiguous: %v", versions)
		}
	}
	checkRecordedChanges(t, db, "common", "dept-a", "dept-b", "dept-c")
	if seq, ok, err := db.VerifyAudit(ctx); err != nil || !ok {
		t.Errorf("audit broken at %d: %v", seq, err)
	}
}

func TestErrors(t *testing.T) {
	db := mustOpen(t, 2)
	seed(t, db, "dept-a")
	in := allowlist.SiteInput{ID: "zoom", Name: "Zoom", Category: "video-conferencing", Domains: []string{"*.zoom.us"}, Owner: allowlist.Owner{Name: "Zoom"}}
	must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), in))
	audit := must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))
	cases := map[string]struct {
		err  error
		code string
	}{}
	_, err := db.CreateSite(ctx, owner("dept-a"), in)
	cases["duplicate id"] = struct {
		err  error
		code string
	}{err, allowlist.ECONFLICT}
	in2 := in
	in2.ID = "zoom2"
	_, err = db.CreateSite(ctx, owner("dept-a"), in2)
	cases["domain held"] = struct {
		err  error
		code string
	}{err, allowlist.ECONFLICT}
	in3 := in
	in3.ID, in3.Domains = "bad", []string{"*.com"}
	_, err = db.CreateSite(ctx, owner("dept-a"), in3)
	cases["public suffix"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.SetSignoff(ctx, owner("dept-a"), "nope", "dept-a", "approve", "")
	cases["unknown site"] = struct {
		err  error
		code string
	}{err, allowlist.ENOTFOUND}
	_, err = db.SetSignoff(ctx, owner("dept-a"), "zoom", "dept-x", "approve", "")
	cases["unknown dept"] = struct {
		err  error
		code string
	}{err, allowlist.ENOTFOUND}
	_, err = db.SetSignoff(ctx, owner("dept-a"), "zoom", "dept-a", "maybe", "")
	cases["bad decision"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: "common", Name: "x", Kind: "other"})
	cases["reserved id"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.ReinstateSite(ctx, allowlist.System, "zoom")
	cases["reinstate unsuspended"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	for name, c := range cases {
		if allowlist.ErrorCode(c.err) != c.code {
			t.Errorf("%s: error %v, want code %s", name, c.err, c.code)
		}
	}
	after := must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))
	if len(after) != len(audit) {
		t.Errorf("refused changes wrote %d audit entries", len(after)-len(audit))
	}
}

func TestTokens(t *testing.T) {
	db := mustOpen(t, 2)
	seed(t, db, "dept-a")
	tok, secret, err := db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "owner", Department: "dept-a", Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := db.Authenticate(ctx, secret)
	if err != nil || a.Role != "owner" || a.Department != "dept-a" || a.TokenID != tok.ID {
		t.Fatalf("Authenticate = %+v, %v", a, err)
	}
	var stored string
	db.read.QueryRow("SELECT hash FROM tokens WHERE id = ?", tok.ID).Scan(&stored)
	if stored == secret || stored != hashToken(secret) {
		t.Error("the secret is stored, not its hash")
	}
	for _, bad := range []string{"", "alt_", secret + "x", "Bearer " + secret} {
		if _, err := db.Authenticate(ctx, bad); allowlist.ErrorCode(err) != allowlist.EUNAUTHORIZED {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}
	if err := db.RevokeToken(ctx, allowlist.System, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, secret); allowlist.ErrorCode(err) != allowlist.EUNAUTHORIZED {
		t.Errorf("revoked token accepted: %v", err)
	}
	if _, _, err := db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "owner", Name: "x"}); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Errorf("owner without department: %v", err)
	}
}

// TestConcurrentWriters sends 100 sign-offs and proposals at once: none is
// lost, none fails with a lock error, and versions rise by exactly one.
func TestConcurrentWriters(t *testing.T) {
	db := mustOpen(t, 1)
	var depts []string
	for i := 0; i < 10; i++ {
		depts = append(depts, fmt.Sprintf("dept-%d", i))
	}
	seed(t, db, depts...)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("site-%d", i)
			_, err := db.CreateSite(ctx, owner(depts[i%10]), allowlist.SiteInput{ID: id, Name: id, Category: "wiki",
				Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}})
			if err == nil {
				_, err = db.SetSignoff(ctx, owner(depts[i%10]), id, depts[i%10], "approve", "")
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "t", Reason: "r", Department: depts[i%10]})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	v := must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if v.Entries != 50 {
		t.Errorf("common has %d entries, want 50", v.Entries)
	}
	versions := must[[]allowlist.Version](t)(db.FindVersions(ctx, "common"))
	for i, v := range versions {
		if v.Version != int64(i) {
			t.Fatalf("version %d at position %d", v.Version, i)
		}
	}
	if len(must[[]allowlist.Request](t)(db.FindRequests(ctx, ""))) != 50 {
		t.Error("lost requests")
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	db := mustOpen(t, 2)
	c := allowlist.Catalogue{
		Departments: []allowlist.CatalogueDepartment{
			{ID: "dept-a", Name: "A", Kind: "other", Contacts: []allowlist.Contact{{Name: "Ann", Email: "ann@example.org", Role: "filtering owner"}}},
			{ID: "dept-b", Name: "B", Kind: "local-authority"},
		},
		Sites: []allowlist.CatalogueSite{
			{ID: "zoom", Name: "Zoom", Category: "video-conferencing", Domains: []string{"*.zoom.us"}, Owner: allowlist.Owner{Name: "Zoom"}, ProposedBy: "dept-a",
				Signoffs: []allowlist.CatalogueSignoff{{Department: "dept-a", Decision: "approve", By: "ann"}, {Department: "dept-b", Decision: "approve", By: "bob", Domains: []string{"*.zoom.us", "zoom.example.net"}}}},
			{ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"*.wiki.example.org", "files.example.net"}, Owner: allowlist.Owner{Name: "W", Email: "w@example.org"},
				Signoffs: []allowlist.CatalogueSignoff{{Department: "dept-a", Decision: "approve", By: "ann", Domains: []string{"*.wiki.example.org"}}, {Department: "dept-b", Decision: "approve", By: "bob", Domains: []string{"*.wiki.example.org"}}}},
			{ID: "old", Name: "Old", Category: "other", Domains: []string{"old.example.org"}, Owner: allowlist.Owner{Name: "O"}, Status: "suspended", Reason: "gone"},
		},
	}
	if err := db.Import(ctx, allowlist.System, c); err != nil {
		t.Fatal(err)
	}
	out := must[allowlist.Catalogue](t)(db.Export(ctx))
	db2 := mustOpen(t, 2)
	if err := db2.Import(ctx, allowlist.System, out); err != nil {
		t.Fatal(err)
	}
	out2 := must[allowlist.Catalogue](t)(db2.Export(ctx))
	if !reflect.DeepEqual(out, out2) {
		t.Errorf("round trip differs:\n%+v\n%+v", out, out2)
	}
	wiki := must[allowlist.Site](t)(db2.FindSite(ctx, "wiki"))
	if !reflect.DeepEqual(wiki.Published, []string{"*.wiki.example.org"}) {
		t.Errorf("pending widening published on import: %v", wiki.Published)
	}
	v1 := must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	v2 := must[allowlist.Version](t)(db2.FindVersion(ctx, "common", allowlist.Latest))
	if v1.SHA256 != v2.SHA256 {
		t.Error("the same catalogue published different lists")
	}
	// A bad catalogue imports nothing.
	bad := allowlist.Catalogue{
		Departments: []allowlist.CatalogueDepartment{{ID: "dept-c", Name: "C", Kind: "other"}},
		Sites:       []allowlist.CatalogueSite{{ID: "xx", Name: "X", Category: "wiki", Domains: []string{"ok.example.org", "*.co.uk"}, Owner: allowlist.Owner{Name: "x"}}},
	}
	err := db2.Import(ctx, allowlist.System, bad)
	var e *allowlist.Error
	if !asError(err, &e) || e.Code != allowlist.EINVALID || len(e.Fields) == 0 || e.Fields[0].Field != "sites[0].domains[1]" {
		t.Fatalf("bad import error %#v", err)
	}
	if _, err := db2.FindDepartment(ctx, "dept-c"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Error("a failed import left a department behind")
	}
}

func asError(err error, target **allowlist.Error) bool {
	e, ok := err.(*allowlist.Error)
	*target = e
	return ok
}

func TestBackupRoundTrip(t *testing.T) {
	db := mustOpen(t, 1)
	seed(t, db, "dept-a")
	must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: "zoom", Name: "Zoom", Category: "other", Domains: []string{"*.zoom.us"}, Owner: allowlist.Owner{Name: "z"}}))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "zoom", "dept-a", "approve", ""))
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(out, Options{Quorum: 1, Key: db.opts.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	a := must[allowlist.Catalogue](t)(db.Export(ctx))
	b := must[allowlist.Catalogue](t)(restored.Export(ctx))
	if !reflect.DeepEqual(a, b) {
		t.Error("backup differs")
	}
	va := must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	vb := must[allowlist.Version](t)(restored.FindVersion(ctx, "common", allowlist.Latest))
	if string(va.Body) != string(vb.Body) || va.Version != vb.Version {
		t.Error("backup versions differ")
	}
	if _, ok, _ := restored.VerifyAudit(ctx); !ok {
		t.Error("backup audit broken")
	}
}

// TestSiteCacheFollowsTheDatabase: a registry that keeps its sites in
// memory between writes publishes what a fresh reading of the database
// gives, after every kind of site change, and after another process (a
// second handle on the same file) has written behind its back.
func TestSiteCacheFollowsTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	a, err := Open(path, Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, d := range []string{"dept-a", "dept-b", "dept-c"} {
		must[allowlist.Department](t)(a.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: d, Kind: "other"}))
	}
	admin := allowlist.Actor{Role: allowlist.RoleAdmin, Name: "admin"}
	// fresh recomputes every scope from the database alone and compares
	// it with what a published.
	fresh := func(step string) {
		t.Helper()
		sites, err := loadSites(ctx, a.read, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		depts, _ := departmentIDs(ctx, a.read)
		for scope, entries := range allowlist.Scopes(sites, depts, 2) {
			v := must[allowlist.Version](t)(a.FindVersion(ctx, scope, allowlist.Latest))
			if want := allowlist.EntriesSHA256(entries); v.SHA256 != want {
				t.Fatalf("%s: scope %s published %s, the database gives %s", step, scope, v.SHA256, want)
			}
		}
	}
	site := func(id string, domains ...string) allowlist.SiteInput {
		return allowlist.SiteInput{ID: id, Name: id, Category: "wiki", Domains: domains, Owner: allowlist.Owner{Name: "x"}}
	}
	must[allowlist.Site](t)(a.CreateSite(ctx, owner("dept-a"), site("m-site", "m.example.org")))
	must[allowlist.Site](t)(a.CreateSite(ctx, owner("dept-a"), site("c-site", "c.example.org")))
	must[allowlist.Site](t)(a.CreateSite(ctx, owner("dept-a"), site("x-site", "x.example.org", "*.x.example.net")))
	fresh("created")
	for _, id := range []string{"m-site", "c-site", "x-site"} {
		must[allowlist.Site](t)(a.SetSignoff(ctx, owner("dept-a"), id, "dept-a", "approve", ""))
		must[allowlist.Site](t)(a.SetSignoff(ctx, owner("dept-b"), id, "dept-b", "approve", ""))
	}
	must[allowlist.Site](t)(a.SetSignoff(ctx, owner("dept-c"), "c-site", "dept-c", "object", "no"))
	fresh("signed off")
	domains := []string{"x.example.org", "*.x.example.net", "more.example.org"}
	must[allowlist.Site](t)(a.UpdateSite(ctx, owner("dept-a"), "x-site", allowlist.SitePatch{Domains: &domains}))
	must[allowlist.Site](t)(a.SetSignoff(ctx, owner("dept-a"), "x-site", "dept-a", "approve", ""))
	fresh("widened")
	must[allowlist.Site](t)(a.SuspendSite(ctx, admin, "m-site", "incident"))
	fresh("suspended")
	must[allowlist.Site](t)(a.DeleteSignoff(ctx, owner("dept-b"), "c-site", "dept-b"))
	fresh("signoff withdrawn")

	// Another process writes: a second handle approves a site and creates
	// one that sorts first. a must notice on its next write.
	b, err := Open(path, Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	must[allowlist.Site](t)(b.SetSignoff(ctx, owner("dept-b"), "c-site", "dept-b", "approve", ""))
	must[allowlist.Site](t)(b.CreateSite(ctx, owner("dept-a"), site("a-site", "a.example.org")))
	must[allowlist.Site](t)(b.SetSignoff(ctx, owner("dept-a"), "a-site", "dept-a", "approve", ""))
	b.Close()
	must[allowlist.Site](t)(a.SetSignoff(ctx, owner("dept-b"), "a-site", "dept-b", "approve", ""))
	fresh("after another process wrote")
	l, err := allowlist.ParseList(must[allowlist.Version](t)(a.FindVersion(ctx, "common", allowlist.Latest)).Body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Entries {
		got = append(got, e.Pattern)
	}
	if want := []string{"*.x.example.net", "a.example.org", "c.example.org", "x.example.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("common = %v, want %v", got, want)
	}
	// a diffed its last publication against a version b made (read back
	// from the database, not from what a kept in memory).
	checkRecordedChanges(t, a, "common", "dept-a", "dept-b")
}

// checkRecordedChanges holds the changes recorded with each version to
// the diff of its body against the one before.
func checkRecordedChanges(t *testing.T, db *DB, scopes ...string) {
	t.Helper()
	for _, scope := range scopes {
		versions := must[[]allowlist.Version](t)(db.FindVersions(ctx, scope))
		for _, v := range versions[1:] {
			c, ok, err := db.FindChanges(ctx, scope, v.Version)
			if err != nil || !ok {
				t.Fatalf("%s/%d: no changes recorded (%v)", scope, v.Version, err)
			}
			a := must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version-1))
			b := must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version))
			la, _ := allowlist.DecodeList(a.Body)
			lb, _ := allowlist.DecodeList(b.Body)
			added, removed := allowlist.Diff(la.Entries, lb.Entries)
			if string(c.Added) != string(allowlist.EncodeEntryArray(added)) || string(c.Removed) != string(allowlist.EncodeEntryArray(removed)) {
				t.Errorf("%s/%d: recorded +%s -%s, bodies differ by +%v -%v", scope, v.Version, c.Added, c.Removed, added, removed)
			}
			if v.Added != len(added) || v.Removed != len(removed) {
				t.Errorf("%s/%d: counts +%d -%d, want +%d -%d", scope, v.Version, v.Added, v.Removed, len(added), len(removed))
			}
		}
		if _, ok, _ := db.FindChanges(ctx, scope, 0); ok {
			t.Errorf("%s/0: changes recorded for the first version", scope)
		}
	}
}

// TestContentsStoredOnce: scopes and versions that list the same entries
// share one stored copy of them, every body reads back as it was signed,
// and a version stored whole (before 0003_contents) still reads back.
func TestContentsStoredOnce(t *testing.T) {
	db := mustOpen(t, 2)
	seed(t, db, "dept-a", "dept-b", "dept-c")
	must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"*.wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "approve", ""))
	must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "wiki", "review"))
	count := func(q string) int {
		var n int
		if err := db.read.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	versions, contents := count("SELECT COUNT(*) FROM versions"), count("SELECT COUNT(*) FROM contents")
	if distinct := count("SELECT COUNT(DISTINCT sha256) FROM versions"); contents != distinct || contents >= versions {
		t.Errorf("%d versions, %d distinct contents, %d stored", versions, distinct, contents)
	}
	if whole := count("SELECT COUNT(*) FROM versions WHERE head IS NULL OR length(body) > 0"); whole != 0 {
		t.Errorf("%d versions stored whole", whole)
	}
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		for _, v := range must[[]allowlist.Version](t)(db.FindVersions(ctx, scope)) {
			full := must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version))
			if err := allowlist.VerifyList(db.PublicKey(), full.Body, full.Signature); err != nil {
				t.Errorf("%s/%d: %v", scope, v.Version, err)
			}
			if l, err := allowlist.ParseList(full.Body); err != nil || l.SHA256 != v.SHA256 || l.Version != v.Version || l.Scope != scope {
				t.Errorf("%s/%d: body reads as %+v (%v)", scope, v.Version, l, err)
			}
		}
	}
	// A version stored whole, as before the migration.
	old := must[allowlist.Version](t)(db.FindVersion(ctx, "dept-c", allowlist.Latest))
	l, body := allowlist.NewList("dept-c", old.Version+1, time.Now(), []allowlist.Entry{{Pattern: "old.example.org", Site: "old", Category: "wiki"}})
	if _, err := db.write.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature)
		VALUES (?, ?, ?, ?, 1, 1, 0, ?, ?)`, "dept-c", l.Version, ts(l.GeneratedAt), l.SHA256, body, "sig"); err != nil {
		t.Fatal(err)
	}
	if got := must[allowlist.Version](t)(db.FindVersion(ctx, "dept-c", l.Version)); !bytes.Equal(got.Body, body) {
		t.Errorf("a version stored whole reads back as %q", got.Body)
	}
}

// TestWarm: a store warmed at start holds every site and each scope's
// latest entries; the writes after it publish what the sites give, and a
// write by another process in between (the CLI) is not missed.
func TestWarm(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "registry.db")
	open := func() *DB {
		db, err := Open(path, Options{Quorum: 2, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	site := func(db *DB, id, dept string, approvers ...string) {
		must[allowlist.Site](t)(db.CreateSite(ctx, owner(dept), allowlist.SiteInput{ID: id, Name: id, Category: "wiki",
			Domains: []string{id + ".example.org", "*." + id + ".example.net"}, Owner: allowlist.Owner{Name: "x"}}))
		for _, d := range approvers {
			must[allowlist.Site](t)(db.SetSignoff(ctx, owner(d), id, d, "approve", ""))
		}
	}
	db := open()
	seed(t, db, "dept-a", "dept-b", "dept-c")
	site(db, "wiki", "dept-a", "dept-a", "dept-b")
	site(db, "own", "dept-c", "dept-c") // on dept-c's scope only
	db.Close()

	warm := open()
	defer warm.Close()
	if err := warm.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		latest := must[allowlist.Version](t)(warm.FindVersion(ctx, scope, allowlist.Latest))
		if sha, n, _ := warm.pub.Holding(scope); sha != latest.SHA256 || n != latest.Entries {
			t.Errorf("%s: warmed with %d entries hashing to %q, latest version has %d, %q", scope, n, sha, latest.Entries, latest.SHA256)
		}
	}
	if _, _, n := warm.pub.Holding("common"); warm.pub.Cached() == 0 || n != 2 {
		t.Fatalf("warmed with generation %d and %d sites", warm.pub.Cached(), n)
	}

	other := open() // another process
	site(other, "meet", "dept-b", "dept-b", "dept-c")
	other.Close()
	site(warm, "docs", "dept-a", "dept-a", "dept-c")
	must[allowlist.Site](t)(warm.SetSignoff(ctx, owner("dept-b"), "own", "dept-b", "object", ""))

	sites := must[[]allowlist.Site](t)(loadSites(ctx, warm.read, "", nil))
	want := allowlist.Scopes(sites, []string{"dept-a", "dept-b", "dept-c"}, 2)
	for scope, entries := range want {
		l := must[allowlist.List](t)(allowlist.DecodeList(must[allowlist.Version](t)(warm.FindVersion(ctx, scope, allowlist.Latest)).Body))
		if !reflect.DeepEqual(l.Entries, entries) {
			t.Errorf("%s: published %v, the sites give %v", scope, l.Entries, entries)
		}
	}
	if n := len(want["common"]); n != 6 {
		t.Errorf("common lists %d patterns, want 6 (wiki, meet, docs)", n)
	}
}
