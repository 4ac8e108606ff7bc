package postgres_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/postgres/pgtest"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

// TestBackupWithPgDump backs a live registry up the way docs/operations.md
// says (pg_dump --format=custom), restores it into a new database with
// pg_restore, and opens the registry there: the same catalogue, the same
// signed versions, an intact audit chain, and writes carry on from where
// the backup stood.
func TestBackupWithPgDump(t *testing.T) {
	pgtest.Need(t, server)
	bin, _ := pgtest.BinDir()
	url := server.Database(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := postgres.Open(url, sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Seed(t, db, "dept-a", "dept-b")
	must := storetest.Must[allowlist.Site](t)
	must(db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "x"}}))
	must(db.SetSignoff(ctx, storetest.Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	must(db.SetSignoff(ctx, storetest.Owner("dept-b"), "wiki", "dept-b", "approve", ""))

	dump := filepath.Join(t.TempDir(), "registry.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+dump, "--dbname="+url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	restoredURL := server.Database(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--exit-on-error", "--no-owner", "--dbname="+restoredURL, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	restored, err := postgres.Open(restoredURL, sqlite.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	a := storetest.Must[allowlist.Catalogue](t)(db.Export(ctx))
	b := storetest.Must[allowlist.Catalogue](t)(restored.Export(ctx))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("restored catalogue differs:\n%+v\n%+v", a, b)
	}
	for _, scope := range []string{"common", "dept-a", "dept-b"} {
		va := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, scope, allowlist.Latest))
		vb := storetest.Must[allowlist.Version](t)(restored.FindVersion(ctx, scope, allowlist.Latest))
		if va.Version != vb.Version || string(va.Body) != string(vb.Body) || va.Signature != vb.Signature {
			t.Errorf("%s: restored version %d differs from %d", scope, vb.Version, va.Version)
		}
	}
	if seq, ok, err := restored.VerifyAudit(ctx); err != nil || !ok {
		t.Errorf("restored audit broken at %d: %v", seq, err)
	}
	// The restored registry carries on: the next version follows.
	before := storetest.Must[allowlist.Version](t)(restored.FindVersion(ctx, "common", allowlist.Latest)).Version
	must(restored.SuspendSite(ctx, allowlist.System, "wiki", "review"))
	if after := storetest.Must[allowlist.Version](t)(restored.FindVersion(ctx, "common", allowlist.Latest)).Version; after != before+1 {
		t.Errorf("after the restore common went from %d to %d", before, after)
	}
	// The append-only triggers came back with the schema.
	if err := backend.Exec(restoredURL, "DELETE FROM audit"); err == nil {
		t.Error("the restored audit log can be deleted")
	}
}
