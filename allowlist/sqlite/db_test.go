package sqlite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/cross-gov/allowlist/allowlist/storetest"
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

func TestBackupRoundTrip(t *testing.T) {
	db := mustOpen(t, 1)
	storetest.Seed(t, db, "dept-a")
	storetest.Must[allowlist.Site](t)(db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: "zoom", Name: "Zoom", Category: "other", Domains: []string{"*.zoom.us"}, Owner: allowlist.Owner{Name: "z"}}))
	storetest.Must[allowlist.Site](t)(db.SetSignoff(ctx, storetest.Owner("dept-a"), "zoom", "dept-a", "approve", ""))
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(out, Options{Quorum: 1, Key: db.opts.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	a := storetest.Must[allowlist.Catalogue](t)(db.Export(ctx))
	b := storetest.Must[allowlist.Catalogue](t)(restored.Export(ctx))
	if !reflect.DeepEqual(a, b) {
		t.Error("backup differs")
	}
	va := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	vb := storetest.Must[allowlist.Version](t)(restored.FindVersion(ctx, "common", allowlist.Latest))
	if string(va.Body) != string(vb.Body) || va.Version != vb.Version {
		t.Error("backup versions differ")
	}
	if _, ok, _ := restored.VerifyAudit(ctx); !ok {
		t.Error("backup audit broken")
	}
}

// TestContentsStoredOnce: scopes and versions that list the same entries
// share one stored copy of them, every body reads back as it was signed,
// and a version stored whole (before 0003_contents) still reads back.
func TestContentsStoredOnce(t *testing.T) {
	db := mustOpen(t, 2)
	storetest.Seed(t, db, "dept-a", "dept-b", "dept-c")
	storetest.Must[allowlist.Site](t)(db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"*.wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
	storetest.Must[allowlist.Site](t)(db.SetSignoff(ctx, storetest.Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	storetest.Must[allowlist.Site](t)(db.SetSignoff(ctx, storetest.Owner("dept-b"), "wiki", "dept-b", "approve", ""))
	storetest.Must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "wiki", "review"))
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
		for _, v := range storetest.Must[[]allowlist.Version](t)(db.FindVersions(ctx, scope)) {
			full := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, scope, v.Version))
			if err := list.Verify(db.PublicKey(), full.Body, full.Signature); err != nil {
				t.Errorf("%s/%d: %v", scope, v.Version, err)
			}
			if l, err := allowlist.ParseList(full.Body); err != nil || l.SHA256 != v.SHA256 || l.Version != v.Version || l.Scope != scope {
				t.Errorf("%s/%d: body reads as %+v (%v)", scope, v.Version, l, err)
			}
		}
	}
	// A version stored whole, as before the migration.
	old := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "dept-c", allowlist.Latest))
	l, body := allowlist.NewList("dept-c", old.Version+1, time.Now(), []allowlist.Entry{{Pattern: "old.example.org", Site: "old", Category: "wiki"}})
	if _, err := db.write.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature)
		VALUES (?, ?, ?, ?, 1, 1, 0, ?, ?)`, "dept-c", l.Version, ts(l.GeneratedAt), l.SHA256, body, "sig"); err != nil {
		t.Fatal(err)
	}
	if got := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "dept-c", l.Version)); !bytes.Equal(got.Body, body) {
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
		storetest.Must[allowlist.Site](t)(db.CreateSite(ctx, storetest.Owner(dept), allowlist.SiteInput{ID: id, Name: id, Category: "wiki",
			Domains: []string{id + ".example.org", "*." + id + ".example.net"}, Owner: allowlist.Owner{Name: "x"}}))
		for _, d := range approvers {
			storetest.Must[allowlist.Site](t)(db.SetSignoff(ctx, storetest.Owner(d), id, d, "approve", ""))
		}
	}
	db := open()
	storetest.Seed(t, db, "dept-a", "dept-b", "dept-c")
	site(db, "wiki", "dept-a", "dept-a", "dept-b")
	site(db, "own", "dept-c", "dept-c") // on dept-c's scope only
	db.Close()

	warm := open()
	defer warm.Close()
	if err := warm.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{"common", "dept-a", "dept-b", "dept-c"} {
		latest := storetest.Must[allowlist.Version](t)(warm.FindVersion(ctx, scope, allowlist.Latest))
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
	storetest.Must[allowlist.Site](t)(warm.SetSignoff(ctx, storetest.Owner("dept-b"), "own", "dept-b", "object", ""))

	sites := storetest.Must[[]allowlist.Site](t)(loadSites(ctx, warm.read, "", nil))
	want := allowlist.Scopes(sites, []string{"dept-a", "dept-b", "dept-c"}, 2)
	for scope, entries := range want {
		l := storetest.Must[allowlist.List](t)(allowlist.DecodeList(storetest.Must[allowlist.Version](t)(warm.FindVersion(ctx, scope, allowlist.Latest)).Body))
		if !reflect.DeepEqual(l.Entries, entries) {
			t.Errorf("%s: published %v, the sites give %v", scope, l.Entries, entries)
		}
	}
	if n := len(want["common"]); n != 6 {
		t.Errorf("common lists %d patterns, want 6 (wiki, meet, docs)", n)
	}
}

// TestTokenHashStored: the database holds a token's hash, never its secret.
func TestTokenHashStored(t *testing.T) {
	db := mustOpen(t, 2)
	tok, secret, err := db.CreateToken(ctx, allowlist.System, allowlist.Token{Role: "admin", Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	db.read.QueryRow("SELECT hash FROM tokens WHERE id = ?", tok.ID).Scan(&stored)
	if stored == secret || stored != hashToken(secret) {
		t.Error("the secret is stored, not its hash")
	}
}

// The conformance suite's helper, under the name this package's tests use.
func owner(dept string) allowlist.Actor { return storetest.Owner(dept) }

// retryableErr is what PostgreSQL says when it orders two writers by
// failing one (SQLSTATE 40001).
type retryableErr struct{}

func (retryableErr) Error() string    { return "could not serialize access" }
func (retryableErr) SQLState() string { return "40001" }

// TestRetryPauseLetsOtherWritersIn: a change the database refused waits
// before it runs again, and this process's other writers are not held up
// meanwhile: the change below is refused until another write has gone
// through, which it could not if the pause kept the lock.
func TestRetryPauseLetsOtherWritersIn(t *testing.T) {
	db := mustOpen(t, 1)
	other := make(chan error, 1)
	tries := 0
	err := db.updateOther(ctx, allowlist.System, func(*sql.Tx) (string, string, any, error) {
		tries++
		if tries == 1 {
			go func() {
				other <- db.updateOther(ctx, allowlist.System, func(*sql.Tx) (string, string, any, error) {
					return "test.other", "other", nil, nil
				})
			}()
		}
		select {
		case err := <-other:
			if err != nil {
				t.Errorf("the other write: %v", err)
			}
			return "test.retried", "retried", nil, nil
		default:
			return "", "", nil, retryableErr{}
		}
	})
	if err != nil {
		t.Fatalf("after %d tries, the other write still had not gone through while this one paused: %v", tries, err)
	}
	if tries < 2 {
		t.Errorf("%d tries", tries)
	}
	// A change refused every time gives up with the database's error.
	err = db.updateOther(ctx, allowlist.System, func(*sql.Tx) (string, string, any, error) { return "", "", nil, retryableErr{} })
	if !isRetryable(err) {
		t.Errorf("a change refused every time: %v", err)
	}
}
