package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Publication is one step of the registry's write path, worked out in the
// core: from every site with its decisions, the departments and each
// scope's latest version, the statuses that changed, each scope's entries
// and the new signed versions with their changes. A store reads the inputs
// in its transaction, writes what Publish returns in the same transaction,
// and calls Publisher.Committed once the transaction commits.
type Publication struct {
	// Sites is every site, sorted by id, with its status and published
	// domains as this publication leaves them. The publisher reuses the
	// slice in its next publication: read it (or copy what is needed)
	// under the lock that serialises the store's writes.
	Sites []Site
	// StatusChanged lists the indexes in Sites whose status changed.
	StatusChanged []int
	// Scopes is each scope's entries (scopes may share a slice).
	Scopes map[string][]Entry
	// Initial is version 0 (no entries) of each scope that had none.
	Initial []Version
	// Versions are the new versions, signed, with their changes against
	// the version before.
	Versions []Version

	gen     int64
	entries map[string]publishedEntries // by scope: what Versions list
}

// Site returns the site with id as the publication left it.
func (p Publication) Site(id string) (Site, bool) {
	i, ok := slices.BinarySearchFunc(p.Sites, id, func(s Site, id string) int { return strings.Compare(s.ID, id) })
	if !ok {
		return Site{}, false
	}
	return p.Sites[i], true
}

// PublishInput is what a store reads, inside its write transaction, for a
// publication.
type PublishInput struct {
	// Generation is the store's write generation before this write (0
	// when nothing was written yet). Sites cached for it are reused.
	Generation int64
	// LoadSites reads every site (id "") or one site (none if it no
	// longer exists), with its domain history and decisions, as the
	// transaction sees them.
	LoadSites func(id string) ([]Site, error)
	// Changed is the one site the write changed, NoSite, or AnySite.
	Changed string
	// ChangedSince returns the sites that the writes after generation gen
	// (up to Generation, by any process) changed, or all when one of them
	// may have changed any site or the record does not reach back to gen.
	// Nil: the publisher reads every site after another process wrote.
	ChangedSince func(gen int64) (ids []string, all bool, err error)
	// Departments are the department ids, sorted.
	Departments []string
	// Latest returns the identity of a scope's latest version (without
	// its body), and false when the scope has none.
	Latest func(scope string) (Version, bool, error)
	// PreviousEntries reads a version's entries back, when the publisher
	// no longer holds them (another process published it).
	PreviousEntries func(v Version) ([]Entry, error)
	// ChangesAfter returns the changes each version of scope after after,
	// up to upTo, recorded against the one before, in order; ok is false
	// when one has none recorded. Nil: PreviousEntries alone.
	ChangesAfter func(scope string, after, upTo int64) (changes []Changes, ok bool, err error)
	Now          time.Time
}

// Publisher publishes, and holds what makes publication fast at a million
// entries, for one store:
//
//   - every site as the last committed publication left it, for the store
//     generation it belongs to, so that a write to one site reads only that
//     site again (a write by another process moves the generation on, and
//     the next publication reads every site);
//   - common's sorted entries (ScopeBuilder), so that a change to one site
//     does not sort every entry again;
//   - each scope's entries in its latest version, by hash, so that the next
//     publication finds the changes without reading the previous body back
//     and decoding it (85 MB at a million entries).
//
// The caches only save work: a publication gives the same result with or
// without them. Publisher is not safe for concurrent use: a store calls it
// under the lock that serialises its writes.
type Publisher struct {
	quorum int
	key    ed25519.PrivateKey

	gen       int64 // generation sites belong to; 0: nothing cached
	sites     []Site
	scopes    ScopeBuilder
	published map[string]publishedEntries
}

type publishedEntries struct {
	sha256  string
	version int64
	entries []Entry
	// content is the entries' canonical JSON array, when this publisher
	// encoded it (nil when it read or caught up the entries instead).
	content []byte
}

// NewPublisher returns a publisher for quorum, signing with key.
func NewPublisher(quorum int, key ed25519.PrivateKey) *Publisher {
	return &Publisher{quorum: max(quorum, 1), key: key, published: map[string]publishedEntries{}}
}

// Quorum is the number of approvals that put a site on common: the one
// rule PublishedDomains applies, for reads as for publication.
func (p *Publisher) Quorum() int { return p.quorum }

// WithPublished returns s with its published domains set.
func (p *Publisher) WithPublished(s Site) Site {
	return withPublished(s, PublishedDomains(s, p.quorum), p.quorum)
}

// withPublished sets s's published domains (given) and endpoints.
func withPublished(s Site, published []string, quorum int) Site {
	s.Published = published
	if s.Published == nil {
		s.Published = []string{}
	}
	s.PublishedEndpoints, _ = PublishedEndpoints(s, quorum)
	if s.PublishedEndpoints.Networks == nil {
		s.PublishedEndpoints = SiteEndpoints(Site{}, 0)
	}
	return s
}

// Publish works out a publication. It may keep in p the sites it read
// (the write's transaction may still fail): a store calls Committed after
// its commit, Abandon after a rollback.
func (p *Publisher) Publish(in PublishInput) (Publication, error) {
	sites, err := p.currentSites(in)
	if err != nil {
		return Publication{}, err
	}
	p.gen, p.sites = 0, sites // valid again once Committed
	// The quorum rule runs once per site: for its status, its domains on
	// common and what the API answers.
	published := publishedDomains(sites, p.quorum)
	pub := Publication{Sites: sites, gen: in.Generation + 1, entries: map[string]publishedEntries{}}
	for i := range sites {
		sites[i] = withPublished(sites[i], published[i], p.quorum)
		if st := statusOf(sites[i], published[i]); st != sites[i].Status {
			sites[i].Status = st
			pub.StatusChanged = append(pub.StatusChanged, i)
		}
	}
	pub.Scopes = scopesOf(sites, published, in.Departments, &p.scopes)
	endpoints := EndpointScopes(sites, in.Departments, p.quorum)
	// Scopes with the same content share one slice: encode and hash it
	// once, and find its changes once per previous version's content.
	encoded := map[*Entry]list.Encoded{}
	changes := map[[2]string]*foundChanges{}
	var todo []pendingVersion
	for _, scope := range append([]string{ScopeCommon}, in.Departments...) {
		entries := pub.Scopes[scope]
		eps := EncodeEndpoints(endpoints[scope])
		prev, found, err := in.Latest(scope)
		if err != nil {
			return Publication{}, err
		}
		if !found {
			// Every scope starts at version 0 with no entries.
			e := list.Encode([]Entry{})
			l, head := NewListHead(scope, 0, in.Now, e)
			v := Version{Scope: scope, Version: 0, CreatedAt: l.GeneratedAt, SHA256: l.SHA256, Entries: 0,
				Head: head, Content: e.JSON, Signature: list.SignParts(p.key, head, e.JSON)}
			pub.Initial = append(pub.Initial, v)
			prev = v
		}
		sameEndpoints := bytes.Equal(eps, prev.Endpoints)
		if last := p.published[scope]; sameEndpoints && last.sha256 == prev.SHA256 && len(entries) > 0 && len(last.entries) == len(entries) &&
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
			var c *foundChanges
			enc, c = p.encode(prev, entries)
			encoded[unsafe.SliceData(entries)] = enc
			if c != nil {
				changes[[2]string{prev.SHA256, enc.SHA256}] = c
			}
		}
		if enc.SHA256 == prev.SHA256 && sameEndpoints {
			continue
		}
		// Scopes with the same entries share enc.JSON: each new version
		// holds only its own head.
		l, head := NewListHead(scope, prev.Version+1, in.Now, enc)
		todo = append(todo, pendingVersion{l: l, head: head, content: enc.JSON, prev: prev, endpoints: eps})
	}
	// Each new body is signed (one pass over it, about 0.1 s at a million
	// entries), and a change to common reaches every department that lists
	// it: on every core the process may use.
	heads, contents := make([][]byte, len(todo)), make([][]byte, len(todo))
	for i, t := range todo {
		heads[i], contents[i] = t.head, t.content
	}
	for i, sig := range list.SignAll(p.key, heads, contents) {
		t := todo[i]
		key := [2]string{t.prev.SHA256, t.l.SHA256}
		c, ok := changes[key]
		if !ok {
			if c, err = p.findChanges(in, t.prev, t.l.Entries); err != nil {
				return Publication{}, err
			}
			changes[key] = c
		}
		l := t.l
		// The entries' changes are shared by scopes with the same
		// contents; the endpoints' are each scope's own.
		vc := c.Changes
		if vc.Endpoints, err = EncodeEndpointChanges(t.prev.Endpoints, t.endpoints); err != nil {
			return Publication{}, fmt.Errorf("version %s/%d endpoints: %w", l.Scope, l.Version, err)
		}
		v := Version{
			Scope: l.Scope, Version: l.Version, CreatedAt: l.GeneratedAt, SHA256: l.SHA256,
			Entries: len(l.Entries), Added: c.added, Removed: c.removed,
			Head: t.head, Content: t.content, Signature: sig, Changes: &vc,
			Endpoints: t.endpoints,
		}
		if t.endpoints != nil {
			// The schema-2 body: few scopes, and only those whose sites
			// have endpoints, pay for a second signature.
			v.EndpointsSignature = SignEndpointsBody(p.key, t.head, t.content, t.endpoints)
		}
		pub.Versions = append(pub.Versions, v)
		pub.entries[l.Scope] = publishedEntries{sha256: l.SHA256, version: l.Version, entries: l.Entries, content: t.content}
	}
	return pub, nil
}

// pendingVersion is a new version built but not yet signed, and the
// version it follows.
type pendingVersion struct {
	l             List
	head, content []byte // the body: head, content, "}\n"
	prev          Version
	endpoints     []byte // the version's endpoint records (nil: none)
}

// foundChanges are the changes between two contents, encoded, with the
// number of entries each side holds.
type foundChanges struct {
	Changes
	added, removed int
}

// Sites a write may change: AnySite (the zero value, so that a store that
// does not say reads every site again) or NoSite, where a site id would
// be (neither is a valid site id).
const (
	AnySite = ""
	NoSite  = "-"
)

// maxSplice is the number of changed sites past which reading every site
// is cheaper than reading each.
const maxSplice = 256

// currentSites returns every site as the write's transaction holds them:
// the cached sites with those changed since read again, or all read.
func (p *Publisher) currentSites(in PublishInput) ([]Site, error) {
	if p.gen == 0 || in.Generation == 0 || in.Changed == AnySite {
		return in.LoadSites("")
	}
	var ids []string
	if in.Changed != NoSite {
		ids = append(ids, in.Changed)
	}
	if p.gen != in.Generation {
		// Other processes wrote since this one's last publication.
		if in.ChangedSince == nil || p.gen > in.Generation {
			return in.LoadSites("")
		}
		more, all, err := in.ChangedSince(p.gen)
		if err != nil {
			return nil, err
		}
		if all {
			return in.LoadSites("")
		}
		ids = append(ids, more...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > maxSplice {
		return in.LoadSites("")
	}
	sites := p.sites
	for _, id := range ids {
		var err error
		if sites, err = splice(sites, in.LoadSites, id); err != nil {
			return nil, err
		}
	}
	return sites, nil
}

// splice returns sites (sorted by id) with site id as the store now holds
// it: replaced, added in its place, or dropped if it no longer exists.
func splice(sites []Site, load func(string) ([]Site, error), id string) ([]Site, error) {
	fresh, err := load(id)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(sites, id, func(s Site, id string) int { return strings.Compare(s.ID, id) })
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

// findChanges finds the entries of next (sorted, as Scopes gives them)
// that are not in version prev, and those of prev not in next: one merge
// of next with prev's entries, kept from its publication, or brought up to
// prev from an earlier version this publisher made with the changes
// recorded since (another process published prev), or else read back.
func (p *Publisher) findChanges(in PublishInput, prev Version, next []Entry) (*foundChanges, error) {
	old := p.published[prev.Scope]
	switch {
	case prev.SHA256 == emptySHA256:
		old.entries = nil // version 0, perhaps not stored yet
	case old.sha256 == prev.SHA256:
	default:
		entries, ok, err := p.catchUp(in, old, prev)
		if err != nil {
			return nil, err
		}
		if !ok {
			if entries, err = in.PreviousEntries(prev); err != nil {
				return nil, fmt.Errorf("version %s/%d: %w", prev.Scope, prev.Version, err)
			}
		}
		old.entries = entries
	}
	c, _, _ := changesBetween(old.entries, next)
	return c, nil
}

// changesBetween returns the changes from entries old to next (both
// sorted), encoded, and the entries added and removed.
func changesBetween(old, next []Entry) (c *foundChanges, added, removed []Entry) {
	added, removed = []Entry{}, []Entry{}
	list.DiffFunc(old, next, func(e Entry) { added = append(added, e) }, func(e Entry) { removed = append(removed, e) })
	// Encoded now, while the body (which old's strings may share) is alive.
	return &foundChanges{Changes{Added: list.EncodeArray(added), Removed: list.EncodeArray(removed)}, len(added), len(removed)}, added, removed
}

// maxSplicedShare: a change to more than one entry in maxSplicedShare is
// encoded whole rather than spliced.
const maxSplicedShare = 4

// encode encodes a scope's new entries. When p holds the array of the
// scope's latest version (prev) with the entries it was made from, the
// new array is that one with the changes spliced in (list.Splice): at a
// million entries a copy and a hash instead of encoding every entry again,
// about half a second. It then returns the changes against prev too.
func (p *Publisher) encode(prev Version, entries []Entry) (list.Encoded, *foundChanges) {
	old := p.published[prev.Scope]
	if old.content == nil || old.sha256 != prev.SHA256 || len(entries) == 0 {
		return list.Encode(entries), nil
	}
	c, added, removed := changesBetween(old.entries, entries)
	if (len(added)+len(removed))*maxSplicedShare > len(entries) {
		return list.Encode(entries), c
	}
	b, err := list.SpliceArray(old.content, added, removed)
	if err != nil {
		// A string written escaped: encoded whole, as before.
		return list.Encode(entries), c
	}
	sum := sha256.Sum256(b)
	return list.Encoded{Entries: entries, JSON: b, SHA256: hex.EncodeToString(sum[:])}, c
}

// catchUp returns prev's entries made from old's (an earlier version of
// the scope) and the changes recorded by each version since, if they are
// all recorded and the result hashes to prev's sha256: a merge of a few
// entries and one hash instead of reading prev's body back and decoding
// it (85 MB at a million entries).
func (p *Publisher) catchUp(in PublishInput, old publishedEntries, prev Version) ([]Entry, bool, error) {
	if in.ChangesAfter == nil || old.sha256 == "" || old.version >= prev.Version {
		return nil, false, nil
	}
	changes, ok, err := in.ChangesAfter(prev.Scope, old.version, prev.Version)
	if err != nil || !ok {
		return nil, false, err
	}
	entries := old.entries
	for _, c := range changes {
		var added, removed []Entry
		if json.Unmarshal(c.Added, &added) != nil || json.Unmarshal(c.Removed, &removed) != nil {
			return nil, false, nil
		}
		if entries, ok = mergeSorted(entries, removed, added); !ok {
			return nil, false, nil
		}
	}
	if list.Encode(entries).SHA256 != prev.SHA256 {
		return nil, false, nil // read it back rather than trust it
	}
	return entries, true, nil
}

// emptySHA256 is the hash of a list with no entries.
var emptySHA256 = list.Encode([]Entry{}).SHA256

// Committed tells p that the store committed pub: its sites are the
// store's for pub's generation, its versions the scopes' latest.
func (p *Publisher) Committed(pub Publication) {
	p.gen, p.sites = pub.gen, pub.Sites
	maps.Copy(p.published, pub.entries)
}

// Abandon tells p that the publication it last worked out was not
// committed: the sites it read are not the store's.
func (p *Publisher) Abandon() { p.gen, p.sites = 0, nil }

// Warm loads what the first publication after a start would otherwise
// work out itself, from what a store read in one snapshot: every site (for
// generation gen), the scopes' sorted entries, and, for each scope whose
// latest version is what the sites give, its entries.
func (p *Publisher) Warm(gen int64, sites []Site, departments []string, latest func(scope string) (Version, bool, error)) error {
	if p.gen == gen {
		sites = p.sites // the store's own publication left them
	}
	published := map[string]publishedEntries{}
	encoded := map[*Entry]list.Encoded{}
	for scope, entries := range p.scopes.Scopes(sites, departments, p.quorum) {
		prev, found, err := latest(scope)
		if err != nil {
			return err
		}
		if !found || len(entries) == 0 {
			continue
		}
		enc, ok := encoded[unsafe.SliceData(entries)]
		if !ok {
			enc = list.Encode(entries)
			encoded[unsafe.SliceData(entries)] = enc
		}
		if enc.SHA256 == prev.SHA256 {
			// The array too: the next publication splices into it.
			published[scope] = publishedEntries{sha256: enc.SHA256, version: prev.Version, entries: entries, content: enc.JSON}
		}
	}
	p.gen, p.sites = gen, sites
	maps.Copy(p.published, published)
	return nil
}

// Cached reports the generation whose sites p holds (0: none), so that a
// store can skip reading them for Warm.
func (p *Publisher) Cached() int64 { return p.gen }

// Holding reports what p holds for scope: the hash and number of entries
// of the version it takes for the scope's latest (empty when none), and
// how many sites it holds.
func (p *Publisher) Holding(scope string) (sha256 string, entries, sites int) {
	e := p.published[scope]
	return e.sha256, len(e.entries), len(p.sites)
}

// Entries returns the sorted entries p holds for version of scope, and
// false when it holds another version or none (the caller reads the
// version itself). The slice is shared: do not modify it.
func (p *Publisher) Entries(scope string, version int64) ([]Entry, bool) {
	e, ok := p.published[scope]
	if !ok || e.version != version || e.entries == nil {
		return nil, false
	}
	return e.entries, true
}
