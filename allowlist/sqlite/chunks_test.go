package sqlite

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/cross-gov/allowlist/allowlist/storetest"
)

func testEntries(n, skip int) []allowlist.Entry {
	var out []allowlist.Entry
	for i := 0; i < n; i++ {
		if i != skip {
			out = append(out, allowlist.Entry{Pattern: fmt.Sprintf("*.svc%d.tool%d.example.net", i%10, i/10), Site: fmt.Sprintf("site-%d", i/10), Category: "other"})
		}
	}
	return list.SortEntries(out)
}

// TestCutContent: the chunks of a content join to it, each cut falls
// between two entries, and a content one entry apart from another shares
// all but the chunk or two around the change.
func TestCutContent(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5000, 60000} {
		content := list.Encode(testEntries(n, -1)).JSON
		chunks := cutContent(content)
		if !bytes.Equal(bytes.Join(chunks, nil), content) {
			t.Fatalf("%d entries: the chunks do not join to the content", n)
		}
		for i, c := range chunks[1:] {
			if !bytes.HasPrefix(c, []byte(`{"pattern":"`)) || !bytes.HasSuffix(chunks[i], []byte(",")) {
				t.Fatalf("%d entries: cut %d is not between two entries: ...%q | %q...", n, i, chunks[i][max(0, len(chunks[i])-20):], c[:min(len(c), 20)])
			}
		}
		if want := n / chunkEntries; len(chunks) < want/3 || len(chunks) > 3*want+1 {
			t.Errorf("%d entries: %d chunks, expected about %d", n, len(chunks), want)
		}
		if n < 2 {
			continue
		}
		for _, skip := range []int{0, n / 3, n - 1} {
			other := cutContent(list.Encode(testEntries(n, skip)).JSON)
			fresh := 0
			for _, c := range other {
				if !slices.ContainsFunc(chunks, func(d []byte) bool { return bytes.Equal(c, d) }) {
					fresh++
				}
			}
			if fresh > 2 {
				t.Errorf("%d entries, entry %d removed: %d of %d chunks differ", n, skip, fresh, len(other))
			}
		}
	}
	// Patterns that never cut still make bounded chunks.
	var content []byte
	content = append(content, '[')
	for i := 0; i < 3*maxChunkEntries; i++ {
		if i > 0 {
			content = append(content, ',')
		}
		content = append(content, `{"pattern":"a.example.org","site":"s","category":"other"}`...)
	}
	content = append(content, ']')
	if cutBefore([]byte("a.example.org")) {
		t.Fatal("choose a pattern that does not cut")
	}
	if got := len(cutContent(content)); got != 3 {
		t.Errorf("%d entries that never cut: %d chunks, want 3", 3*maxChunkEntries, got)
	}
}

// TestChunksStoredOnce: a change of one site to a list of 60,000 entries
// stores a small part of the list again, not all of it; every version
// reads back as signed; a content stored whole (before 0004_chunks) still
// reads; a chunk that was changed under the store is refused, not served.
func TestChunksStoredOnce(t *testing.T) {
	db := mustOpen(t, 1)
	c := allowlist.Catalogue{Departments: []allowlist.CatalogueDepartment{{ID: "dept-a", Name: "A", Kind: "other"}}}
	for s := 0; s < 6000; s++ {
		site := allowlist.CatalogueSite{ID: fmt.Sprintf("site-%d", s), Name: "S", Category: "other", Owner: allowlist.Owner{Name: "x"},
			Signoffs: []allowlist.CatalogueSignoff{{Department: "dept-a", Decision: "approve"}}}
		for d := 0; d < 10; d++ {
			site.Domains = append(site.Domains, fmt.Sprintf("*.svc%d.tool%d.example.net", d, s))
		}
		c.Sites = append(c.Sites, site)
	}
	storetest.Must[struct{}](t)(struct{}{}, db.Import(ctx, allowlist.System, c))
	size := func(q string) int64 {
		var n int64
		if err := db.read.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const stored = "SELECT COALESCE(SUM(length(bytes)), 0) FROM chunks"
	bytesBefore, chunksBefore := size(stored), size("SELECT COUNT(*) FROM chunks")
	// A new site with one domain: one entry more, at most two new chunks.
	storetest.Must[allowlist.Site](t)(db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: "extra", Name: "E", Category: "wiki",
		Domains: []string{"extra.example.org"}, Owner: allowlist.Owner{Name: "x"}}))
	storetest.Must[allowlist.Site](t)(db.SetSignoff(ctx, storetest.Owner("dept-a"), "extra", "dept-a", "approve", ""))
	listed := size("SELECT MAX(LENGTH(c.entries)) FROM contents c") // 0: every content is in chunks
	latest := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	bytesAdded, chunksAdded := size(stored)-bytesBefore, size("SELECT COUNT(*) FROM chunks")-chunksBefore
	if latest.Version != 2 || chunksAdded > 2 || bytesAdded > int64(len(latest.Body))/3 || listed != 0 {
		t.Errorf("version %d: adding one entry stored %d chunks, %d bytes, for a %d-byte list (whole contents: %d bytes)",
			latest.Version, chunksAdded, bytesAdded, len(latest.Body), listed)
	}
	// Suspending a site of 10 domains, spread through the sorted list.
	bytesBefore = size(stored)
	storetest.Must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "site-3000", "review"))
	latest = storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	t.Logf("list of %d bytes in %d chunks; one entry added: %d chunks, %d bytes stored; a 10-domain site suspended: %d bytes",
		len(latest.Body), chunksBefore, chunksAdded, bytesAdded, size(stored)-bytesBefore)
	for _, v := range storetest.Must[[]allowlist.Version](t)(db.FindVersions(ctx, "common")) {
		full := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "common", v.Version))
		if err := list.Verify(db.PublicKey(), full.Body, full.Signature); err != nil {
			t.Errorf("common/%d: %v", v.Version, err)
		}
	}
	// A content stored whole, as before the migration: the same version
	// read back from it.
	head, content, _ := list.Split(latest.Body)
	if _, err := db.write.ExecContext(ctx, "INSERT INTO contents (sha256, entries) VALUES ('whole', ?)", content); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature, head)
		SELECT scope, version + 1, created_at, 'whole', entries, 0, 0, X'', signature, ? FROM versions WHERE scope = 'common' AND version = ?`, head, latest.Version); err != nil {
		t.Fatal(err)
	}
	if got := storetest.Must[allowlist.Version](t)(db.FindVersion(ctx, "common", latest.Version+1)); !bytes.Equal(got.Body, latest.Body) {
		t.Error("a content stored whole does not read back")
	}
	// A chunk changed behind the store's back.
	for _, q := range []string{"DROP TRIGGER chunks_no_update",
		"UPDATE chunks SET bytes = replace(bytes, 'tool3001', 'tool3xx1') WHERE instr(bytes, 'tool3001') > 0"} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.FindVersion(ctx, "common", latest.Version); err == nil {
		t.Error("a list whose chunk changed under the store is served")
	}
}
