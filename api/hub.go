package api

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"golang.org/x/sync/singleflight"
)

// hub knows each scope's current version without asking the database,
// wakes watchers when one moves, and keeps rendered lists and compiled
// matchers so that a version is rendered once, not per request.
type hub struct {
	reg allowlist.ListService
	// flight makes concurrent first requests for one version share the
	// work of loading, rendering and compiling it, instead of each doing it.
	flight singleflight.Group

	mu       sync.Mutex
	current  map[string]int64
	changed  map[string]chan struct{} // closed when the scope moves
	rendered map[renderKey]*rendered
	// renderedBytes is the size of the bodies in rendered.
	renderedBytes int
	matchers      map[string]*compiled
	diffs         map[diffKey][]byte
	// stamps holds each scope's last signed timestamp, made again once
	// older than stampEvery (see timestamp.go).
	stamps     map[string]signedTimestamp
	stampEvery time.Duration
}

type diffKey struct {
	scope    string
	from, to int64
}

// maxDiffs bounds the diffs kept. A fleet of resolvers asks for the same
// few (from the version before to the current one).
const maxDiffs = 64

type renderKey struct {
	scope   string
	version int64
	format  string
}

// rendered is one version of a scope in one format, ready to serve.
type rendered struct {
	scope       string
	version     int64
	format      allowlist.Format
	parts       [][]byte // the body, in pieces that may be shared (see allowlist.Version)
	size        int      // its length
	etag        string
	signature   string
	sha256      string
	generatedAt string
	contentType string
	endpoints   []byte // the version's endpoint records (see allowlist.Version)
}

// compiled is the matcher for one version of a scope.
type compiled struct {
	list    allowlist.List
	matcher *allowlist.Matcher
}

// maxRendered and maxRenderedBytes bound the cache; past either, entries
// of versions no longer current go.
const (
	maxRendered      = 512
	maxRenderedBytes = 512 << 20
)

func newHub(reg allowlist.ListService) *hub {
	return &hub{reg: reg, current: map[string]int64{}, changed: map[string]chan struct{}{},
		rendered: map[renderKey]*rendered{}, matchers: map[string]*compiled{}, diffs: map[diffKey][]byte{},
		stamps: map[string]signedTimestamp{}, stampEvery: 10 * time.Second}
}

// notify records that scope is at version and wakes its watchers.
func (h *hub) notify(scope string, version int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur, known := h.current[scope]
	if known && version <= cur {
		return
	}
	h.current[scope] = version
	if ch, ok := h.changed[scope]; ok {
		close(ch)
		delete(h.changed, scope)
	}
}

// version returns a scope's current version.
func (h *hub) version(scope string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.current[scope]
	return v, ok
}

// changes returns the scope's current version and a channel closed when
// it next moves.
func (h *hub) changes(scope string) (int64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.changed[scope]
	if !ok {
		ch = make(chan struct{})
		h.changed[scope] = ch
	}
	return h.current[scope], ch
}

// scopeVersion resolves Latest to the current version, with ENOTFOUND for
// an unknown scope.
func (h *hub) scopeVersion(scope string, version int64) (int64, error) {
	cur, ok := h.version(scope)
	if !ok {
		return 0, allowlist.Errorf(allowlist.ENOTFOUND, "scope %q not found", scope)
	}
	if version == allowlist.Latest {
		return cur, nil
	}
	if version > cur {
		return 0, allowlist.Errorf(allowlist.ENOTFOUND, "scope %q has no version %d yet", scope, version)
	}
	return version, nil
}

// get returns a version of a scope rendered in a format.
func (h *hub) get(ctx context.Context, scope string, version int64, f allowlist.Format) (*rendered, error) {
	version, err := h.scopeVersion(scope, version)
	if err != nil {
		return nil, err
	}
	key := renderKey{scope, version, f.Key()}
	h.mu.Lock()
	r, ok := h.rendered[key]
	h.mu.Unlock()
	if ok {
		return r, nil
	}
	out, err, _ := h.flight.Do("render/"+scope+"/"+strconv.FormatInt(version, 10)+"/"+f.Key(), func() (any, error) {
		return h.render(context.WithoutCancel(ctx), scope, version, f)
	})
	if err != nil {
		return nil, err
	}
	return out.(*rendered), nil
}

func (h *hub) render(ctx context.Context, scope string, version int64, f allowlist.Format) (*rendered, error) {
	key := renderKey{scope, version, f.Key()}
	// JSON is the stored bytes themselves: nothing to decode or copy.
	// This is what a watching resolver waits for after a publication.
	v, err := h.reg.FindVersion(ctx, scope, version)
	if err != nil {
		return nil, err
	}
	parts := v.Parts()
	if f.Name != allowlist.Formats[0].Name {
		l, err := decodeStored(v)
		if err != nil {
			return nil, err
		}
		if l.Endpoints, err = allowlist.DecodeEndpoints(v.Endpoints); err != nil {
			return nil, fmt.Errorf("stored list %s/%d: %w", v.Scope, v.Version, err)
		}
		out, err := f.Render(l, v.Whole())
		if err != nil {
			return nil, err
		}
		parts = [][]byte{out}
	} else if f.Schema() == 2 && len(v.Endpoints) > 0 {
		// The schema-2 body: the same bytes with the endpoints field, and
		// its own signature.
		parts = allowlist.WithEndpoints(parts, v.Endpoints)
		v.Signature = v.EndpointsSignature
	}
	r := newRendered(v, f, parts)
	h.mu.Lock()
	h.keep(key, r)
	h.mu.Unlock()
	return r, nil
}

func newRendered(v allowlist.Version, f allowlist.Format, parts [][]byte) *rendered {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	return &rendered{
		scope: v.Scope, version: v.Version, format: f, parts: parts, size: size,
		signature: v.Signature, sha256: v.SHA256, contentType: f.ContentType, endpoints: v.Endpoints,
		generatedAt: v.CreatedAt.UTC().Format(time.RFC3339Nano),
		// The ETag names the exact bytes: scope, version, format and the
		// content hash, which never change for a version.
		etag: `"` + v.Scope + "-" + strconv.FormatInt(v.Version, 10) + "-" + f.Key() + "-" + v.SHA256[:16] + `"`,
	}
}

// whole returns the rendered body in one slice (a copy when in pieces).
func (r *rendered) whole() []byte {
	if len(r.parts) == 1 {
		return r.parts[0]
	}
	return bytes.Join(r.parts, nil)
}

// keep adds a rendered version to the cache, first dropping the versions
// that are no longer current if the cache holds too many or too many
// bytes (a million-entry list is 85 MB in JSON). h.mu is held.
func (h *hub) keep(key renderKey, r *rendered) {
	if len(h.rendered) >= maxRendered || h.renderedBytes+r.size > maxRenderedBytes {
		for k, old := range h.rendered {
			if h.current[k.scope] != k.version {
				h.renderedBytes -= old.size
				delete(h.rendered, k)
			}
		}
	}
	if old, ok := h.rendered[key]; ok {
		h.renderedBytes -= old.size
	}
	h.rendered[key] = r
	h.renderedBytes += r.size
}

// prime takes a version just published, with its body in memory: its JSON
// is kept as it is (no read back from the store), and so is its diff
// against the version before.
func (h *hub) prime(v allowlist.Version) {
	if v.Size() == 0 || v.Signature == "" || len(v.SHA256) < 16 {
		return
	}
	jsonFormat := allowlist.Formats[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keep(renderKey{v.Scope, v.Version, jsonFormat.Name}, newRendered(v, jsonFormat, v.Parts()))
	if v.Changes != nil && v.Version > 0 {
		h.keepDiff(diffKey{v.Scope, v.Version - 1, v.Version}, diffBody(v.Scope, v.Version-1, v.Version, *v.Changes))
	}
}

// keepDiff adds a diff's JSON to the cache. h.mu is held.
func (h *hub) keepDiff(key diffKey, body []byte) {
	if len(h.diffs) >= maxDiffs {
		clear(h.diffs)
	}
	h.diffs[key] = body
}

// diffBody is the diff endpoint's JSON (list.DiffBody, with the endpoint
// changes) around changes already encoded.
func diffBody(scope string, from, to int64, c allowlist.Changes) []byte {
	return list.EncodeDiff(scope, from, to, c.Added, c.Removed, c.Endpoints)
}

// diff returns the JSON of the changes between two versions of a scope
// (to may be Latest). Between consecutive versions it is what the store
// recorded at publication (a patching resolver asks for nothing else);
// otherwise it is computed, once per pair: at a million entries two
// decodes and a merge, a quarter of a second or more.
func (h *hub) diff(ctx context.Context, scope string, from, to int64) ([]byte, error) {
	to, err := h.scopeVersion(scope, to)
	if err != nil {
		return nil, err
	}
	if from, err = h.scopeVersion(scope, from); err != nil {
		return nil, err
	}
	key := diffKey{scope, from, to}
	h.mu.Lock()
	body, ok := h.diffs[key]
	h.mu.Unlock()
	if ok {
		return body, nil
	}
	out, err, _ := h.flight.Do(fmt.Sprintf("diff/%s/%d/%d", scope, from, to), func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if to == from+1 {
			// Recorded when the version was published.
			if c, ok, err := h.reg.FindChanges(ctx, scope, to); err != nil {
				return nil, err
			} else if ok {
				return diffBody(scope, from, to, c), nil
			}
		}
		jsonFormat := allowlist.Formats[0]
		b, err := h.get(ctx, scope, to, jsonFormat)
		if err != nil {
			return nil, err
		}
		a, err := h.get(ctx, scope, from, jsonFormat)
		if err != nil {
			return nil, err
		}
		la, err := allowlist.DecodeList(a.whole())
		if err != nil {
			return nil, err
		}
		lb, err := allowlist.DecodeList(b.whole())
		if err != nil {
			return nil, err
		}
		added, removed := list.Diff(la.Entries, lb.Entries)
		ec, err := allowlist.EncodeEndpointChanges(a.endpoints, b.endpoints)
		if err != nil {
			return nil, err
		}
		return diffBody(scope, from, to, allowlist.Changes{Added: list.EncodeArray(added), Removed: list.EncodeArray(removed), Endpoints: ec}), nil
	})
	if err != nil {
		return nil, err
	}
	body = out.([]byte)
	h.mu.Lock()
	h.keepDiff(key, body)
	h.mu.Unlock()
	return body, nil
}

// matcher returns the compiled matcher for a scope's current version.
func (h *hub) matcher(ctx context.Context, scope string) (*compiled, error) {
	version, err := h.scopeVersion(scope, allowlist.Latest)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	c, ok := h.matchers[scope]
	h.mu.Unlock()
	if ok && c.list.Version == version {
		return c, nil
	}
	out, err, _ := h.flight.Do("match/"+scope+"/"+strconv.FormatInt(version, 10), func() (any, error) {
		v, l, err := h.load(context.WithoutCancel(ctx), scope, version)
		if err != nil {
			return nil, err
		}
		if l.Endpoints, err = allowlist.DecodeEndpoints(v.Endpoints); err != nil {
			return nil, err
		}
		return &compiled{list: l, matcher: allowlist.Compile(l.Patterns())}, nil
	})
	if err != nil {
		return nil, err
	}
	c = out.(*compiled)
	h.mu.Lock()
	if cur, ok := h.matchers[scope]; !ok || cur.list.Version < c.list.Version {
		h.matchers[scope] = c
	}
	h.mu.Unlock()
	return c, nil
}

// load reads a stored version and decodes its list. The body is the
// registry's own, so DecodeList checks its form and hash but does not
// validate each pattern again (ParseList would, at seconds per million).
func (h *hub) load(ctx context.Context, scope string, version int64) (allowlist.Version, allowlist.List, error) {
	v, err := h.reg.FindVersion(ctx, scope, version)
	if err != nil {
		return v, allowlist.List{}, err
	}
	l, err := decodeStored(v)
	return v, l, err
}

func decodeStored(v allowlist.Version) (allowlist.List, error) {
	l, err := allowlist.DecodeList(v.Whole())
	if err != nil {
		return l, fmt.Errorf("stored list %s/%d: %w", v.Scope, v.Version, err)
	}
	return l, nil
}
