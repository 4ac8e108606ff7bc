// Package storetest is the conformance suite every registry store passes:
// the SQLite store on a temporary file and the PostgreSQL store on a real
// server. A store's tests call Run with a Backend that makes and opens its
// databases.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"gopkg.in/yaml.v3"
)

var ctx = context.Background()

// Store is what the suite needs of a store.
type Store interface {
	allowlist.Registry
	allowlist.Subscriber
	allowlist.Governance
	allowlist.Timers
	allowlist.TSIGStore
	Ping(ctx context.Context) error
	Quorum() int
	Close() error
}

// Options are what the suite opens a store with.
type Options struct {
	Quorum int
	Key    ed25519.PrivateKey
	// Now is the store's clock (nil: the real one).
	Now func() time.Time
	// Policy holds the governance rules.
	Policy allowlist.Policy
}

// Backend makes and opens databases of one kind.
type Backend struct {
	// New returns a new, empty database's name (a path or URL), removed
	// when t ends.
	New func(t *testing.T) string
	// Open opens a store on database name.
	Open func(name string, o Options) (Store, error)
	// Exec runs one statement on database name outside the store, as an
	// operator with a database client could.
	Exec func(name, stmt string) error
}

// Run runs every conformance test against b.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"FlowToQuorum", testFlowToQuorum},
		{"Errors", testErrors},
		{"Tokens", testTokens},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ImportExportRoundTrip", testImportExportRoundTrip},
		{"SiteCacheFollowsTheDatabase", testSiteCacheFollowsTheDatabase},
		{"AppendOnly", testAppendOnly},
		{"OneSigningKey", testOneSigningKey},
		{"Reopen", testReopen},
		{"Endpoints", testEndpoints},
		{"Subscribers", testSubscribers},
		{"ProposeSite", testProposeSite},
		{"Usage", testUsage},
		{"UsageSaturates", testUsageSaturates},
		{"UsageDayCap", testUsageDayCap},
		{"SpliceMatchesEncode", testSpliceMatchesEncode},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
	runGovernance(t, b)
}

func newKey() ed25519.PrivateKey {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return key
}

// open opens a store on a new database.
func (b Backend) open(t *testing.T, quorum int) Store {
	return b.openOn(t, b.New(t), quorum, newKey())
}

// openOn opens a store on database name, closed when t ends.
func (b Backend) openOn(t *testing.T, name string, quorum int, key ed25519.PrivateKey) Store {
	t.Helper()
	s, err := b.Open(name, Options{Quorum: quorum, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Must returns a function that returns its value, failing tb on error.
func Must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

// Seed creates departments.
func Seed(t testing.TB, db Store, depts ...string) {
	for _, d := range depts {
		Must[allowlist.Department](t)(db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: "Dept " + d, Kind: "other"}))
	}
}

// Owner is an owner of dept.
func Owner(dept string) allowlist.Actor {
	return allowlist.Actor{Role: allowlist.RoleOwner, Department: dept, Name: "owner-" + dept}
}

func version(t *testing.T, db Store, scope string) int64 {
	t.Helper()
	v, err := db.FindVersion(ctx, scope, allowlist.Latest)
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// testAppendOnly: the database itself refuses to change or delete audit
// entries and published versions, whoever connects.
func testAppendOnly(t *testing.T, b Backend) {
	name := b.New(t)
	db := b.openOn(t, name, 1, newKey())
	Seed(t, db, "dept-a")
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "x"}}))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	for _, stmt := range []string{
		"UPDATE audit SET actor = 'someone-else' WHERE seq = 1",
		"DELETE FROM audit WHERE seq = 2",
		"UPDATE versions SET signature = 'forged' WHERE scope = 'common' AND version = 1",
		"UPDATE contents SET entries = entries",
		"UPDATE chunks SET bytes = bytes",
	} {
		err := b.Exec(name, stmt)
		if err == nil {
			t.Errorf("%s: allowed", stmt)
		} else if !strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "never change") {
			t.Errorf("%s: failed with %v, not the append-only rule", stmt, err)
		}
	}
	if seq, ok, err := db.VerifyAudit(ctx); err != nil || !ok {
		t.Errorf("audit broken at %d: %v", seq, err)
	}
}

// testOneSigningKey: a second process with another signing key is refused
// rather than signing half the versions with a key resolvers do not know.
func testOneSigningKey(t *testing.T, b Backend) {
	name := b.New(t)
	b.openOn(t, name, 2, newKey())
	s, err := b.Open(name, Options{Quorum: 2, Key: newKey()})
	if err == nil {
		s.Close()
		t.Fatal("a second key was accepted")
	}
	if !strings.Contains(err.Error(), "same signing key") {
		t.Errorf("refused with %v", err)
	}
}

// testReopen: a store opened again finds everything as it was, migrations
// run once, and Ping answers.
func testReopen(t *testing.T, b Backend) {
	name := b.New(t)
	key := newKey()
	db, err := b.Open(name, Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	Seed(t, db, "dept-a", "dept-b")
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "x"}}))
	for _, d := range []string{"dept-a", "dept-b"} {
		Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner(d), "wiki", d, "approve", ""))
	}
	before := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	db.Close()
	db = b.openOn(t, name, 0, key) // 0: the stored quorum
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Quorum() != 2 {
		t.Errorf("quorum %d after reopening, want the stored 2", db.Quorum())
	}
	after := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if after.Version != before.Version || string(after.Body) != string(before.Body) {
		t.Errorf("common %d %s after reopening, was %d %s", after.Version, after.SHA256, before.Version, before.SHA256)
	}
	if err := list.Verify(db.PublicKey(), after.Body, after.Signature); err != nil {
		t.Error(err)
	}
}

func testFlowToQuorum(t *testing.T, b Backend) {
	db := b.open(t, 2)
	if got := version(t, db, "common"); got != 0 {
		t.Fatalf("fresh common at version %d, want 0", got)
	}
	Seed(t, db, "dept-a", "dept-b", "dept-c")
	if got := version(t, db, "dept-a"); got != 0 {
		t.Fatalf("new department scope at version %d, want 0", got)
	}
	site := Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"*.Wiki.Example.org.", "files.example.net"}, Owner: allowlist.Owner{Name: "Ops", Email: "ops@example.org"},
	}))
	if site.Status != allowlist.StatusProposed || site.ProposedBy != "dept-a" || !reflect.DeepEqual(site.Domains, []string{"*.wiki.example.org", "files.example.net"}) {
		t.Fatalf("created %+v", site)
	}
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", "fine"))
	if got := version(t, db, "common"); got != 0 {
		t.Errorf("common moved to %d after one approval", got)
	}
	if got := version(t, db, "dept-a"); got != 1 {
		t.Errorf("dept-a at %d after its approval, want 1", got)
	}
	site = Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", ""))
	if site.Status != allowlist.StatusApproved {
		t.Errorf("status %s after quorum", site.Status)
	}
	v := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if v.Version != 1 || v.Entries != 2 || v.Added != 2 {
		t.Errorf("common %+v", v)
	}
	if err := list.Verify(db.PublicKey(), v.Body, v.Signature); err != nil {
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
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", "again"))
	if got := version(t, db, "common"); got != 1 {
		t.Errorf("common at %d after a no-op, want 1", got)
	}
	// Widening waits for quorum.
	domains := []string{"*.wiki.example.org", "files.example.net", "cdn.example.net"}
	Must[allowlist.Site](t)(db.UpdateSite(ctx, Owner("dept-a"), "wiki", allowlist.SitePatch{Domains: &domains}))
	if got := version(t, db, "common"); got != 1 {
		t.Errorf("common widened at once to %d", got)
	}
	site = Must[allowlist.Site](t)(db.FindSite(ctx, "wiki"))
	if len(site.Published) != 2 || site.Revision != 2 {
		t.Errorf("published %v revision %d", site.Published, site.Revision)
	}
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", ""))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-c"), "wiki", "dept-c", "approve", ""))
	if got := version(t, db, "common"); got != 2 {
		t.Errorf("common at %d after the widening reached quorum, want 2", got)
	}
	// Suspension empties every list in the next version.
	Must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "wiki", "security review"))
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		v := Must[allowlist.Version](t)(db.FindVersion(ctx, scope, allowlist.Latest))
		if v.Entries != 0 {
			t.Errorf("%s still has %d entries after suspension", scope, v.Entries)
		}
	}
	Must[allowlist.Site](t)(db.ReinstateSite(ctx, allowlist.System, "wiki", ""))
	if got := version(t, db, "common"); got != 4 {
		t.Errorf("common at %d after reinstatement, want 4", got)
	}
	versions := Must[[]allowlist.Version](t)(db.FindVersions(ctx, "common"))
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

func testErrors(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a")
	in := allowlist.SiteInput{ID: "zoom", Name: "Zoom", Category: "video-conferencing", Domains: []string{"*.zoom.us"}, Owner: allowlist.Owner{Name: "Zoom"}}
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), in))
	audit := Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))
	cases := map[string]struct {
		err  error
		code string
	}{}
	_, err := db.CreateSite(ctx, Owner("dept-a"), in)
	cases["duplicate id"] = struct {
		err  error
		code string
	}{err, allowlist.ECONFLICT}
	in2 := in
	in2.ID = "zoom2"
	_, err = db.CreateSite(ctx, Owner("dept-a"), in2)
	cases["domain held"] = struct {
		err  error
		code string
	}{err, allowlist.ECONFLICT}
	in3 := in
	in3.ID, in3.Domains = "bad", []string{"*.com"}
	_, err = db.CreateSite(ctx, Owner("dept-a"), in3)
	cases["public suffix"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.SetSignoff(ctx, Owner("dept-a"), "nope", "dept-a", "approve", "")
	cases["unknown site"] = struct {
		err  error
		code string
	}{err, allowlist.ENOTFOUND}
	_, err = db.SetSignoff(ctx, Owner("dept-a"), "zoom", "dept-x", "approve", "")
	cases["unknown dept"] = struct {
		err  error
		code string
	}{err, allowlist.ENOTFOUND}
	_, err = db.SetSignoff(ctx, Owner("dept-a"), "zoom", "dept-a", "maybe", "")
	cases["bad decision"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: "common", Name: "x", Kind: "other"})
	cases["reserved id"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	_, err = db.ReinstateSite(ctx, allowlist.System, "zoom", "")
	cases["reinstate unsuspended"] = struct {
		err  error
		code string
	}{err, allowlist.EINVALID}
	for name, c := range cases {
		if allowlist.ErrorCode(c.err) != c.code {
			t.Errorf("%s: error %v, want code %s", name, c.err, c.code)
		}
	}
	after := Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 0))
	if len(after) != len(audit) {
		t.Errorf("refused changes wrote %d audit entries", len(after)-len(audit))
	}
}

func testTokens(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a")
	tok, secret, err := db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "owner", Department: "dept-a", Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := db.Authenticate(ctx, secret)
	if err != nil || a.Role != "owner" || a.Department != "dept-a" || a.TokenID != tok.ID {
		t.Fatalf("Authenticate = %+v, %v", a, err)
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

// testConcurrentWriters sends 100 sign-offs and proposals at once through
// two stores on one database (two processes, or two instances): none is
// lost, none fails with a lock error, versions rise by exactly one and the
// audit chain stays one sequence.
func testConcurrentWriters(t *testing.T, b Backend) {
	name := b.New(t)
	key := newKey()
	stores := []Store{b.openOn(t, name, 1, key), b.openOn(t, name, 1, key)}
	db := stores[0]
	var depts []string
	for i := 0; i < 10; i++ {
		depts = append(depts, fmt.Sprintf("dept-%d", i))
	}
	Seed(t, db, depts...)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 50; i++ {
		wg.Add(2)
		s := stores[i%2]
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("site-%d", i)
			_, err := s.CreateSite(ctx, Owner(depts[i%10]), allowlist.SiteInput{ID: id, Name: id, Category: "wiki",
				Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}})
			if err == nil {
				_, err = s.SetSignoff(ctx, Owner(depts[i%10]), id, depts[i%10], "approve", "")
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "t", Reason: "r", Department: depts[i%10]})
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
	for _, db := range stores {
		v := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
		if v.Entries != 50 {
			t.Errorf("common has %d entries, want 50", v.Entries)
		}
		versions := Must[[]allowlist.Version](t)(db.FindVersions(ctx, "common"))
		for i, v := range versions {
			if v.Version != int64(i) {
				t.Fatalf("version %d at position %d", v.Version, i)
			}
		}
		if len(Must[[]allowlist.Request](t)(db.FindRequests(ctx, ""))) != 50 {
			t.Error("lost requests")
		}
		if seq, ok, err := db.VerifyAudit(ctx); err != nil || !ok {
			t.Errorf("audit broken at %d: %v", seq, err)
		}
	}
	// Every acknowledged sign-off is in the audit log, once.
	signoffs := 0
	for _, e := range Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 1000)) {
		if e.Action == "signoff.set" {
			signoffs++
		}
	}
	if signoffs != 50 {
		t.Errorf("%d sign-offs audited, want 50", signoffs)
	}
	checkRecordedChanges(t, db, "common")
}

func testImportExportRoundTrip(t *testing.T, b Backend) {
	db := b.open(t, 2)
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
	out := Must[allowlist.Catalogue](t)(db.Export(ctx))
	db2 := b.open(t, 2)
	if err := db2.Import(ctx, allowlist.System, out); err != nil {
		t.Fatal(err)
	}
	out2 := Must[allowlist.Catalogue](t)(db2.Export(ctx))
	if !reflect.DeepEqual(out, out2) {
		t.Errorf("round trip differs:\n%+v\n%+v", out, out2)
	}
	wiki := Must[allowlist.Site](t)(db2.FindSite(ctx, "wiki"))
	if !reflect.DeepEqual(wiki.Published, []string{"*.wiki.example.org"}) {
		t.Errorf("pending widening published on import: %v", wiki.Published)
	}
	v1 := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	v2 := Must[allowlist.Version](t)(db2.FindVersion(ctx, "common", allowlist.Latest))
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

// TestSiteCacheFollowsTheDatabase: a registry that keeps its sites in
// memory between writes publishes what a fresh reading of the database
// gives, after every kind of site change, and after another process (a
// second handle on the same file) has written behind its back.
func testSiteCacheFollowsTheDatabase(t *testing.T, bk Backend) {
	name := bk.New(t)
	key := newKey()
	a := bk.openOn(t, name, 2, key)
	for _, d := range []string{"dept-a", "dept-b", "dept-c"} {
		Must[allowlist.Department](t)(a.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: d, Kind: "other"}))
	}
	admin := allowlist.Actor{Role: allowlist.RoleAdmin, Name: "admin"}
	// fresh recomputes every scope from the database alone and compares
	// it with what a published.
	fresh := func(step string) {
		t.Helper()
		sites := Must[[]allowlist.Site](t)(a.FindSites(ctx, allowlist.SiteFilter{}))
		var depts []string
		for _, d := range Must[[]allowlist.Department](t)(a.FindDepartments(ctx)) {
			depts = append(depts, d.ID)
		}
		for scope, entries := range allowlist.Scopes(sites, depts, 2) {
			v := Must[allowlist.Version](t)(a.FindVersion(ctx, scope, allowlist.Latest))
			if want := list.EntriesSHA256(entries); v.SHA256 != want {
				t.Fatalf("%s: scope %s published %s, the database gives %s", step, scope, v.SHA256, want)
			}
		}
	}
	site := func(id string, domains ...string) allowlist.SiteInput {
		return allowlist.SiteInput{ID: id, Name: id, Category: "wiki", Domains: domains, Owner: allowlist.Owner{Name: "x"}}
	}
	Must[allowlist.Site](t)(a.CreateSite(ctx, Owner("dept-a"), site("m-site", "m.example.org")))
	Must[allowlist.Site](t)(a.CreateSite(ctx, Owner("dept-a"), site("c-site", "c.example.org")))
	Must[allowlist.Site](t)(a.CreateSite(ctx, Owner("dept-a"), site("x-site", "x.example.org", "*.x.example.net")))
	fresh("created")
	for _, id := range []string{"m-site", "c-site", "x-site"} {
		Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-a"), id, "dept-a", "approve", ""))
		Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-b"), id, "dept-b", "approve", ""))
	}
	Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-c"), "c-site", "dept-c", "object", "no"))
	fresh("signed off")
	domains := []string{"x.example.org", "*.x.example.net", "more.example.org"}
	Must[allowlist.Site](t)(a.UpdateSite(ctx, Owner("dept-a"), "x-site", allowlist.SitePatch{Domains: &domains}))
	Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-a"), "x-site", "dept-a", "approve", ""))
	fresh("widened")
	Must[allowlist.Site](t)(a.SuspendSite(ctx, admin, "m-site", "incident"))
	fresh("suspended")
	Must[allowlist.Site](t)(a.DeleteSignoff(ctx, Owner("dept-b"), "c-site", "dept-b"))
	fresh("signoff withdrawn")

	// Another process writes: a second handle approves a site and creates
	// one that sorts first. a must notice on its next write.
	b, err := bk.Open(name, Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	Must[allowlist.Site](t)(b.SetSignoff(ctx, Owner("dept-b"), "c-site", "dept-b", "approve", ""))
	Must[allowlist.Site](t)(b.CreateSite(ctx, Owner("dept-a"), site("a-site", "a.example.org")))
	Must[allowlist.Site](t)(b.SetSignoff(ctx, Owner("dept-a"), "a-site", "dept-a", "approve", ""))
	// A change to no site, then one that may change any (an import).
	Must[allowlist.Department](t)(b.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: "dept-d", Name: "D", Kind: "other"}))
	if err := b.Import(ctx, allowlist.System, allowlist.Catalogue{Sites: []allowlist.CatalogueSite{{ID: "i-site", Name: "I", Category: "wiki",
		Domains: []string{"i.example.org"}, Owner: allowlist.Owner{Name: "x"},
		Signoffs: []allowlist.CatalogueSignoff{{Department: "dept-a", Decision: "approve"}, {Department: "dept-d", Decision: "approve"}}}}}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-b"), "a-site", "dept-b", "approve", ""))
	fresh("after another process wrote")
	l, err := allowlist.ParseList(Must[allowlist.Version](t)(a.FindVersion(ctx, "common", allowlist.Latest)).Body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Entries {
		got = append(got, e.Pattern)
	}
	if want := []string{"*.x.example.net", "a.example.org", "c.example.org", "i.example.org", "x.example.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("common = %v, want %v", got, want)
	}
	// a diffed its last publication against a version b made (read back
	// from the database, not from what a kept in memory).
	checkRecordedChanges(t, a, "common", "dept-a", "dept-b", "dept-d")
	// a's own writes to no site and to one site, after b's.
	Must[allowlist.Request](t)(a.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "t", Reason: "r", Department: "dept-a"}))
	Must[allowlist.Site](t)(a.SetSignoff(ctx, Owner("dept-d"), "x-site", "dept-d", "object", ""))
	fresh("after a change to no site")
}

// checkRecordedChanges holds the changes recorded with each version to
// the diff of its body against the one before.
func checkRecordedChanges(t *testing.T, db Store, scopes ...string) {
	t.Helper()
	for _, scope := range scopes {
		versions := Must[[]allowlist.Version](t)(db.FindVersions(ctx, scope))
		for _, v := range versions[1:] {
			c, ok, err := db.FindChanges(ctx, scope, v.Version)
			if err != nil || !ok {
				t.Fatalf("%s/%d: no changes recorded (%v)", scope, v.Version, err)
			}
			a := Must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version-1))
			b := Must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version))
			la, _ := allowlist.DecodeList(a.Body)
			lb, _ := allowlist.DecodeList(b.Body)
			added, removed := list.Diff(la.Entries, lb.Entries)
			if string(c.Added) != string(list.EncodeArray(added)) || string(c.Removed) != string(list.EncodeArray(removed)) {
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

// testEndpoints: networks, handling and notes survive
// the store, each revision's endpoints are kept for the sign-off rules, a
// widening waits for its quorum while a narrowing publishes at once, the
// version records both the schema-2 signature and the endpoint changes,
// and a catalogue with a pending widening goes through export, YAML and
// import unchanged.
func testEndpoints(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a", "dept-b")
	relaxed := allowlist.Handling{TLSInspection: "bypass", Proxy: "direct"}
	teams := []allowlist.Network{{Prefix: "52.112.0.0/14", Protocol: "udp", Ports: "3478-3481"}}
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{ID: "teams", Name: "Teams", Category: "video-conferencing",
		Domains: []string{"*.teams.microsoft.com"}, Networks: teams, Handling: relaxed, Notes: "no calls", Owner: allowlist.Owner{Name: "M"}}))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "teams", "dept-a", "approve", ""))
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "teams", "dept-b", "approve", ""))
	v := Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	eps, err := allowlist.DecodeEndpoints(v.Endpoints)
	if err != nil || len(eps) != 1 || !reflect.DeepEqual(eps[0].Networks, teams) || eps[0].Handling != relaxed || eps[0].Notes != "no calls" {
		t.Fatalf("version %d endpoints %+v %v", v.Version, eps, err)
	}
	if err := list.Verify(db.PublicKey(), bytes.Join(allowlist.WithEndpoints(v.Parts(), v.Endpoints), nil), v.EndpointsSignature); err != nil {
		t.Fatalf("schema-2 signature: %v", err)
	}
	if err := list.Verify(db.PublicKey(), v.Whole(), v.Signature); err != nil {
		t.Fatalf("schema-1 signature: %v", err)
	}

	// Widening: a new revision, nothing new published.
	wider := append([]allowlist.Network{{Prefix: "13.107.64.0/18", Protocol: "udp", Ports: "3478-3481"}}, teams...)
	s := Must[allowlist.Site](t)(db.UpdateSite(ctx, Owner("dept-a"), "teams", allowlist.SitePatch{Networks: &wider}))
	if s.Revision != 2 || len(s.Networks) != 2 || len(s.PublishedEndpoints.Networks) != 1 {
		t.Fatalf("after widening: revision %d, networks %v, published %v", s.Revision, s.Networks, s.PublishedEndpoints)
	}
	if version(t, db, "common") != v.Version {
		t.Fatal("widening published a version")
	}
	// Export while the widening waits; the YAML goes back in unchanged.
	cat := Must[allowlist.Catalogue](t)(db.Export(ctx))
	text, err := yaml.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	var back allowlist.Catalogue
	if err := yaml.Unmarshal(text, &back); err != nil {
		t.Fatal(err)
	}
	db2 := b.open(t, 2)
	if err := db2.Import(ctx, allowlist.System, back); err != nil {
		t.Fatalf("import: %v\n%s", err, text)
	}
	if again := Must[allowlist.Catalogue](t)(db2.Export(ctx)); !reflect.DeepEqual(cat, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", cat, again)
	}
	s2 := Must[allowlist.Site](t)(db2.FindSite(ctx, "teams"))
	if len(s2.Networks) != 2 || len(s2.PublishedEndpoints.Networks) != 1 || s2.Notes != "no calls" {
		t.Errorf("imported: %+v", s2)
	}

	// Narrowing publishes at once, and the version says what changed.
	narrow := []allowlist.Network{{Prefix: "52.112.0.0/16", Protocol: "udp", Ports: "3478"}}
	Must[allowlist.Site](t)(db.UpdateSite(ctx, Owner("dept-a"), "teams", allowlist.SitePatch{Networks: &narrow}))
	if n := version(t, db, "common"); n != v.Version+1 {
		t.Fatalf("narrowing: version %d, want %d", n, v.Version+1)
	}
	c, ok, err := db.FindChanges(ctx, "common", v.Version+1)
	if err != nil || !ok || !bytes.Contains(c.Endpoints, []byte(`"networks_removed":[{"site":"teams","prefix":"52.112.0.0/14"`)) ||
		!bytes.Contains(c.Endpoints, []byte(`"networks_added":[{"site":"teams","prefix":"52.112.0.0/16","protocol":"udp","ports":"3478"}]`)) {
		t.Errorf("changes %s %v %v", c.Endpoints, ok, err)
	}
	if string(c.Added) != "[]" || string(c.Removed) != "[]" {
		t.Errorf("domain changes on a network-only change: %s %s", c.Added, c.Removed)
	}

	// Suspension removes everything.
	Must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "teams", "test"))
	v = Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if v.Endpoints != nil || v.EndpointsSignature != "" {
		t.Errorf("suspended: endpoints %s", v.Endpoints)
	}
}

// testSpliceMatchesEncode: a store's publication splices each change into
// the array of the version before instead of encoding every entry again;
// after a run of changes of every kind, every version's body is still
// exactly what encoding its entries gives, and its signature holds.
func testSpliceMatchesEncode(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a", "dept-b")
	sites := []string{"wiki", "chat", "mail", "docs", "meet", "code"}
	for i, id := range sites {
		Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{ID: id, Name: id, Category: "other",
			Domains: []string{id + ".example.org", fmt.Sprintf("*.%s%d.example.net", id, i)}, Owner: allowlist.Owner{Name: "x"}}))
	}
	approve := func(dept string) func(id string) error {
		return func(id string) error {
			_, err := db.SetSignoff(ctx, Owner(dept), id, dept, "approve", "")
			return err
		}
	}
	steps := []func(id string) error{
		approve("dept-a"),
		approve("dept-b"),
		func(id string) error {
			_, err := db.UpdateSite(ctx, Owner("dept-a"), id, allowlist.SitePatch{Domains: &[]string{id + ".example.org", "a-" + id + ".example.com"}})
			return err
		},
		approve("dept-a"),
		approve("dept-b"),
		func(id string) error { _, err := db.SuspendSite(ctx, allowlist.System, id, "test"); return err },
		func(id string) error { _, err := db.ReinstateSite(ctx, allowlist.System, id, ""); return err },
		func(id string) error { _, err := db.DeleteSignoff(ctx, Owner("dept-b"), id, "dept-b"); return err },
	}
	for _, step := range steps {
		for _, id := range sites {
			if err := step(id); err != nil {
				t.Fatal(err)
			}
			for _, scope := range []string{"common", "dept-a", "dept-b"} {
				v := Must[allowlist.Version](t)(db.FindVersion(ctx, scope, allowlist.Latest))
				body := v.Whole()
				l, err := allowlist.DecodeList(body)
				if err != nil {
					t.Fatal(err)
				}
				_, array, _ := list.Split(body)
				if want := list.EncodeArray(l.Entries); !bytes.Equal(array, want) {
					t.Fatalf("%s version %d holds\n%s\nwhere its entries encode to\n%s", scope, v.Version, array, want)
				}
				if err := list.Verify(db.PublicKey(), body, v.Signature); err != nil {
					t.Fatalf("%s version %d: %v", scope, v.Version, err)
				}
			}
		}
	}
}
