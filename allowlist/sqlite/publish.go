package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cross-gov/allowlist/allowlist"
)

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// publish recomputes every scope inside tx, stores a new signed version of
// each scope whose content changed, and brings site statuses up to date.
// When site is set, db.sites holds every other site as it is in tx, and
// only that one is read again. db.sites is left holding every site.
func (db *DB) publish(ctx context.Context, tx *sql.Tx, now time.Time, site string) ([]allowlist.Version, error) {
	var sites []allowlist.Site
	var err error
	if site != "" {
		sites, err = spliceSite(ctx, tx, db.sites.sites, site)
	} else {
		sites, err = loadSites(ctx, tx, "", nil)
	}
	if err != nil {
		return nil, err
	}
	db.sites.sites = sites
	depts, err := departmentIDs(ctx, tx)
	if err != nil {
		return nil, err
	}
	for i := range sites {
		if st := allowlist.SiteStatus(sites[i], db.opts.Quorum); st != sites[i].Status {
			if _, err := tx.ExecContext(ctx, "UPDATE sites SET status = ? WHERE id = ?", st, sites[i].ID); err != nil {
				return nil, fmt.Errorf("update status: %w", err)
			}
			sites[i].Status = st
		}
	}
	scopes := db.scopes.Scopes(sites, depts, db.opts.Quorum)
	endpoints := allowlist.EndpointScopes(sites, depts, db.opts.Quorum)
	// Scopes with the same content share one slice: encode and hash it
	// once, and count its changes once per previous version's content.
	encoded := map[*allowlist.Entry]allowlist.Encoded{}
	changes := map[[2]string]foundChanges{}
	var todo []*encodedList
	for _, scope := range append([]string{allowlist.ScopeCommon}, depts...) {
		entries := scopes[scope]
		eps := allowlist.EncodeEndpoints(endpoints[scope])
		prev, err := latestVersion(ctx, tx, scope)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			// Every scope starts at version 0 with no entries.
			v, err := db.storeVersion(ctx, tx, scope, 0, now, []allowlist.Entry{}, nil)
			if err != nil {
				return nil, err
			}
			prev = &v
		}
		sameEndpoints := bytes.Equal(eps, prev.Endpoints)
		if last := db.published[scope]; sameEndpoints && last.sha256 == prev.SHA256 && len(entries) > 0 && len(last.entries) == len(entries) &&
			(unsafe.SliceData(last.entries) == unsafe.SliceData(entries) || slices.Equal(last.entries, entries)) {
			// The very entries this scope's latest version was made from
			// (Scopes hands back the same slice when nothing changed, and
			// never writes to one it has handed out), or equal ones (a
			// department with sites of its own gets a new slice each
			// time): no new version, and no need to encode a million
			// entries to find that out.
			continue
		}
		enc, ok := encoded[unsafe.SliceData(entries)]
		if !ok || len(entries) == 0 {
			enc = allowlist.EncodeEntries(entries)
			encoded[unsafe.SliceData(entries)] = enc
		}
		if enc.SHA256 == prev.SHA256 && sameEndpoints {
			continue
		}
		// Scopes with the same entries share enc.JSON: each new version
		// holds only its own head.
		l, head := allowlist.NewListHead(scope, prev.Version+1, now, enc)
		todo = append(todo, &encodedList{l: l, head: head, content: enc.JSON, prev: prev, changes: changes, endpoints: eps})
	}
	// Each new body is signed (one pass over it, about 0.1 s at a million
	// entries), and a change to common reaches every department that lists
	// it: on every core the process may use.
	heads, contents := make([][]byte, len(todo)), make([][]byte, len(todo))
	for i, t := range todo {
		heads[i], contents[i] = t.head, t.content
	}
	var out []allowlist.Version
	for i, sig := range allowlist.SignLists(db.opts.Key, heads, contents) {
		t := todo[i]
		t.signature = sig
		if t.endpoints != nil {
			// The schema-2 body: few scopes, and only those whose sites
			// have endpoints, pay for a second signature.
			t.endpointsSignature = allowlist.SignEndpointsBody(db.opts.Key, t.head, t.content, t.endpoints)
		}
		v, err := db.storeVersion(ctx, tx, t.l.Scope, t.l.Version, now, t.l.Entries, t)
		if err != nil {
			return nil, err
		}
		if db.pending != nil {
			db.pending[t.l.Scope] = publishedEntries{sha256: t.l.SHA256, entries: t.l.Entries}
		}
		out = append(out, v)
	}
	return out, nil
}

// spliceSite returns sites (sorted by id) with site id as tx now holds it:
// replaced, added in its place, or dropped if it no longer exists.
func spliceSite(ctx context.Context, tx *sql.Tx, sites []allowlist.Site, id string) ([]allowlist.Site, error) {
	fresh, err := loadSites(ctx, tx, id, nil)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(sites, id, func(s allowlist.Site, id string) int { return strings.Compare(s.ID, id) })
	switch {
	case len(fresh) == 1 && found:
		sites[i] = fresh[0]
	case len(fresh) == 1:
		sites = slices.Insert(sites, i, fresh[0])
	case found:
		sites = slices.Delete(sites, i, i+1)
	}
	return sites, nil
}

// encodedList is a version already built and signed, the version it
// follows, and the changes found so far in this publication, by
// (previous, new) content hash.
type encodedList struct {
	l             allowlist.List
	head, content []byte // the body: head, content, "}\n"
	signature     string
	// The version's endpoint records (nil: none) and the signature of its
	// schema-2 body.
	endpoints          []byte
	endpointsSignature string
	prev               *allowlist.Version
	changes            map[[2]string]foundChanges
}

// foundChanges are the changes between two contents, encoded, with the
// number of entries each side holds.
type foundChanges struct {
	allowlist.Changes
	added, removed int
}

// storeVersion stores version n of scope, signing it if it is version 0.
// enc is the list already encoded and signed, and the version before it
// (nil for version 0, whose entries are given).
func (db *DB) storeVersion(ctx context.Context, tx *sql.Tx, scope string, n int64, now time.Time, entries []allowlist.Entry, enc *encodedList) (allowlist.Version, error) {
	var changes *allowlist.Changes
	added, removed := 0, 0
	if enc == nil {
		e := allowlist.EncodeEntries(allowlist.SortEntries(entries))
		l, head := allowlist.NewListHead(scope, n, now, e)
		enc = &encodedList{l: l, head: head, content: e.JSON, signature: allowlist.SignListParts(db.opts.Key, head, e.JSON)}
	} else {
		key := [2]string{enc.prev.SHA256, enc.l.SHA256}
		c, ok := enc.changes[key]
		if !ok {
			var err error
			if c, err = db.findChanges(ctx, tx, enc.prev, enc.l.Entries); err != nil {
				return allowlist.Version{}, err
			}
			enc.changes[key] = c
		}
		added, removed = c.added, c.removed
		ec, err := allowlist.EncodeEndpointChanges(enc.prev.Endpoints, enc.endpoints)
		if err != nil {
			return allowlist.Version{}, fmt.Errorf("version %s/%d endpoints: %w", scope, n, err)
		}
		c.Changes.Endpoints = ec
		changes = &c.Changes
	}
	l := enc.l
	v := allowlist.Version{
		Scope: scope, Version: n, CreatedAt: l.GeneratedAt, SHA256: l.SHA256,
		Entries: len(l.Entries), Added: added, Removed: removed,
		Head: enc.head, Content: enc.content, Signature: enc.signature, Changes: changes,
		Endpoints: enc.endpoints, EndpointsSignature: enc.endpointsSignature,
	}
	var addedJSON, removedJSON, endpointChanges []byte
	if changes != nil {
		addedJSON, removedJSON, endpointChanges = changes.Added, changes.Removed, changes.Endpoints
	}
	// The body is stored as its head and its content, the content once
	// for every version and scope that lists it.
	if err := storeContent(ctx, tx, v.SHA256, enc.content); err != nil {
		return v, fmt.Errorf("store version %s/%d: %w", scope, n, err)
	}
	var epSig any
	if enc.endpoints != nil {
		epSig = enc.endpointsSignature
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO versions (scope, version, created_at, sha256, entries, added, removed, body, signature, added_entries, removed_entries, head, endpoints, endpoints_signature, endpoint_changes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, scope, n, ts(v.CreatedAt), v.SHA256, v.Entries, v.Added, v.Removed, []byte{}, v.Signature, addedJSON, removedJSON, enc.head, enc.endpoints, epSig, endpointChanges)
	if err != nil {
		return v, fmt.Errorf("store version %s/%d: %w", scope, n, err)
	}
	return v, nil
}

// versionsWithContent is the FROM clause that reads a version with the
// content it shares (none for a version stored whole); joinBody makes the
// body from what it gives.
const versionsWithContent = "FROM versions v LEFT JOIN contents c ON v.head IS NOT NULL AND c.sha256 = v.sha256"

// readBody returns the exact body of a stored version, whole.
func readBody(ctx context.Context, q queryer, scope string, n int64) ([]byte, error) {
	var sha string
	var body, head, content []byte
	err := q.QueryRowContext(ctx, "SELECT v.sha256, v.body, v.head, c.entries "+versionsWithContent+" WHERE v.scope = ? AND v.version = ?", scope, n).
		Scan(&sha, &body, &head, &content)
	if err != nil {
		return nil, err
	}
	return joinBody(ctx, q, sha, body, head, content)
}

// joinBody makes a version's body from its stored parts: the whole body
// (versions stored before 0003_contents), or its head and content, the
// content whole (stored before 0004_chunks) or empty, to be joined from
// its chunks.
func joinBody(ctx context.Context, q queryer, sha string, body, head, content []byte) ([]byte, error) {
	if head == nil {
		return body, nil
	}
	if content == nil {
		return nil, errors.New("the version's list content is missing")
	}
	if len(content) == 0 {
		var err error
		if content, err = readContent(ctx, q, sha); err != nil {
			return nil, err
		}
	}
	return allowlist.JoinBody(head, content), nil
}

// latestVersion returns the identity of the latest version of scope
// (without its body), or nil when the scope has none.
func latestVersion(ctx context.Context, q queryer, scope string) (*allowlist.Version, error) {
	var v allowlist.Version
	var created string
	err := q.QueryRowContext(ctx, "SELECT version, sha256, created_at, endpoints FROM versions WHERE scope = ? ORDER BY version DESC LIMIT 1", scope).
		Scan(&v.Version, &v.SHA256, &created, &v.Endpoints)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest version of %s: %w", scope, err)
	}
	v.Scope, v.CreatedAt = scope, parseTS(created)
	return &v, nil
}

// findChanges finds the entries of next (sorted, as Scopes gives them)
// that are not in version prev, and those of prev not in next: one merge
// of next with prev's entries, kept from its publication by this process,
// or else read back from its stored body and decoded without copying.
func (db *DB) findChanges(ctx context.Context, q queryer, prev *allowlist.Version, next []allowlist.Entry) (foundChanges, error) {
	old := db.published[prev.Scope]
	if old.sha256 != prev.SHA256 {
		body, err := readBody(ctx, q, prev.Scope, prev.Version)
		if err != nil {
			return foundChanges{}, fmt.Errorf("version %s/%d: %w", prev.Scope, prev.Version, err)
		}
		l, err := allowlist.DecodeList(body)
		if err != nil {
			return foundChanges{}, fmt.Errorf("stored version %s/%d: %w", prev.Scope, prev.Version, err)
		}
		old.entries = l.Entries
	}
	added, removed := []allowlist.Entry{}, []allowlist.Entry{}
	allowlist.DiffFunc(old.entries, next, func(e allowlist.Entry) { added = append(added, e) }, func(e allowlist.Entry) { removed = append(removed, e) })
	// Encoded now, while the body (which old's strings may share) is alive.
	return foundChanges{allowlist.Changes{Added: allowlist.EncodeEntryArray(added), Removed: allowlist.EncodeEntryArray(removed)}, len(added), len(removed)}, nil
}

func departmentIDs(ctx context.Context, q queryer) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT id FROM departments ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("departments: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func appendAudit(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, object string, detail any) error {
	d, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit detail: %w", err)
	}
	var prev string
	var seq int64
	err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&seq, &prev)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("audit tail: %w", err)
	}
	e := allowlist.AuditEntry{Seq: seq + 1, At: parseTS(ts(now)), Actor: actor, Action: action, Object: object, Detail: string(d), PrevHash: prev}
	e.Hash = e.ComputeHash()
	_, err = tx.ExecContext(ctx, "INSERT INTO audit (seq, at, actor, action, object, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.Seq, ts(e.At), e.Actor, e.Action, e.Object, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// FindAudit lists audit entries after seq, oldest first.
func (db *DB) FindAudit(ctx context.Context, after int64, limit int) ([]allowlist.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := db.read.QueryContext(ctx, "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	out := []allowlist.AuditEntry{}
	for rows.Next() {
		var e allowlist.AuditEntry
		var at string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.At = parseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole chain and returns the first broken entry,
// or, when the chain is intact, the number of entries checked.
// A gap in sequence numbers counts as a break.
func (db *DB) VerifyAudit(ctx context.Context) (int64, bool, error) {
	prev, next := "", int64(1)
	for {
		batch, err := db.FindAudit(ctx, next-1, 1000)
		if err != nil {
			return 0, false, err
		}
		if len(batch) == 0 {
			return next - 1, true, nil
		}
		for _, e := range batch {
			if e.Seq != next {
				return next, false, nil
			}
			next++
		}
		if seq, ok := allowlist.VerifyAudit(batch, prev); !ok {
			return seq, false, nil
		}
		prev = batch[len(batch)-1].Hash
	}
}

// Warm loads what the first write after a start would otherwise load
// itself: every site, the scopes' sorted entries, and, for each scope
// whose latest version is what the sites give, its entries (the next
// publication diffs against them). At a million entries that is about two
// seconds the first sign-off after a restart no longer spends. It holds
// the write lock while it runs (writes wait, reads do not): call it in
// the background once the store is open.
func (db *DB) Warm(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	gen, err := generation(ctx, tx)
	if err != nil || gen == 0 { // 0: nothing written yet
		return err
	}
	sites := db.sites.sites
	if db.sites.gen != gen { // else Open's own publication left them
		if sites, err = loadSites(ctx, tx, "", nil); err != nil {
			return err
		}
	}
	depts, err := departmentIDs(ctx, tx)
	if err != nil {
		return err
	}
	published := map[string]publishedEntries{}
	hashes := map[*allowlist.Entry]string{}
	for scope, entries := range db.scopes.Scopes(sites, depts, db.opts.Quorum) {
		prev, err := latestVersion(ctx, tx, scope)
		if err != nil {
			return err
		}
		if prev == nil || len(entries) == 0 {
			continue
		}
		sha, ok := hashes[unsafe.SliceData(entries)]
		if !ok {
			sha = allowlist.EncodeEntries(entries).SHA256
			hashes[unsafe.SliceData(entries)] = sha
		}
		if sha == prev.SHA256 {
			published[scope] = publishedEntries{sha256: sha, entries: entries}
		}
	}
	db.sites = siteCache{gen: gen, sites: sites}
	db.remember(published)
	return nil
}
