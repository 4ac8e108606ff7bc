package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// A resolver that holds version N of its list takes N+1 as a patch when it
// can: a HEAD on the watch tells it the new version's identity and
// signature without the body, the diff from N gives the changes, and the
// new body is rebuilt from the cache file (which holds N exactly as
// signed) into a spool. The rebuilt bytes must verify against the new
// version's signature, exactly as a fetched body would, so a wrong diff or
// cache costs a fallback to the whole list, never a wrong list. At a
// million entries this moves a change in tens of kilobytes instead of 85
// MB, and patches the matcher instead of compiling it again. The cache
// file is not read entry by entry: the changes are spliced in where a
// bisection of its bytes puts them, and the runs between are copied
// (list.PatchAt), so the rebuild costs about the two hashes that check it.

// announced is what HEAD on a watch says about a new version.
type announced struct {
	hdr       list.Header
	signature string
}

// errNoHead says the registry does not answer HEAD on a watch (an older
// registry, or a proxy in front of it): the resolver stops trying.
// errHeadStatus is any other answer: the GET that follows reports it.
var (
	errNoHead     = errors.New("registry does not answer HEAD on the watch")
	errHeadStatus = errors.New("registry refused HEAD on the watch")
)

// head waits, as the watch does, for a version after held, and returns its
// identity; nil when the wait ended with nothing new. An answer without
// the headers a patch needs is errNoHead.
func (f *fetcher) head(ctx context.Context, held int64, wait time.Duration) (*announced, stampHeaders, error) {
	u := f.base + "/v1/lists/" + url.PathEscape(f.scope) + "/watch?after=" + strconv.FormatInt(held, 10) + "&timeout=" + wait.String()
	resp, err := f.do(ctx, "HEAD", u)
	if err != nil {
		return nil, stampHeaders{}, err
	}
	resp.Body.Close()
	stamp := stampOf(resp.Header)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, stamp, nil
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, stampHeaders{}, errNoHead
	default:
		return nil, stampHeaders{}, fmt.Errorf("%w (HTTP %d)", errHeadStatus, resp.StatusCode)
	}
	h := resp.Header
	v, verr := strconv.ParseInt(h.Get(list.HeaderVersion), 10, 64)
	at, terr := time.Parse(time.RFC3339Nano, h.Get(list.HeaderGeneratedAt))
	a := &announced{hdr: list.Header{Scope: f.scope, Version: v, GeneratedAt: at, SHA256: h.Get(list.HeaderSHA256)},
		signature: h.Get(list.HeaderSignature)}
	if verr != nil || terr != nil || a.hdr.SHA256 == "" || a.signature == "" {
		return nil, stampHeaders{}, fmt.Errorf("%w (headers missing)", errNoHead)
	}
	return a, stamp, nil
}

// do sends a request with the reader token.
func (f *fetcher) do(ctx context.Context, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, syncErr("fetch", "%v", err)
	}
	f.readClock(resp.Header, time.Now())
	return resp, nil
}

// readClock notes how far the registry's clock is from ours, from its
// answer's Date (whole seconds, not signed: for telling a stale alarm
// caused by a slow registry clock from a frozen list, never for trust).
func (f *fetcher) readClock(h http.Header, now time.Time) {
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	f.clockOffset.Store(int64(d.Sub(now.Truncate(time.Second)) / time.Second))
}

// diff fetches the changes from version from to version to.
func (f *fetcher) diff(ctx context.Context, from, to int64) (*list.DiffBody, error) {
	u := f.base + "/v1/lists/" + url.PathEscape(f.scope) + "/diff?from=" + strconv.FormatInt(from, 10) + "&to=" + strconv.FormatInt(to, 10)
	resp, err := f.do(ctx, "GET", u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("registry answered HTTP %d for the diff", resp.StatusCode)
	}
	var d list.DiffBody
	if err := json.NewDecoder(&capReader{rc: resp.Body, left: maxListBytes}).Decode(&d); err != nil {
		return nil, fmt.Errorf("decode the diff: %w", err)
	}
	if d.Scope != f.scope || d.From != from || d.To != to {
		return nil, fmt.Errorf("asked for the diff of %s from %d to %d, got %s from %d to %d", f.scope, from, to, d.Scope, d.From, d.To)
	}
	return &d, nil
}

// patchError says why a patch was given up for the whole list; Reason is
// the metric label.
type patchError struct {
	reason string
	err    error
}

func (e *patchError) Error() string { return "patch (" + e.reason + "): " + e.err.Error() }
func (e *patchError) Unwrap() error { return e.err }

// maxStale is how many removed patterns a matcher may carry (as slots that
// allow nothing) before the next change compiles it afresh instead.
func maxStale(entries int) int { return 1000 + entries/8 }

// patch takes version a.hdr from the held version and its diff. On
// success the new list is enforced and becomes the cache file.
func (r *Resolver) patch(ctx context.Context, held int64, a *announced) error {
	start := time.Now()
	cur := r.policy.Load()
	switch {
	case cur == nil || cur.version != held:
		return &patchError{"no_base", errors.New("no list held to patch")}
	case a.hdr.Version <= held:
		return &patchError{"version", fmt.Errorf("announced version %d is not after %d", a.hdr.Version, held)}
	case r.spoolInMemory.Load():
		return &patchError{"no_base", errors.New("the cache directory takes no writes")}
	}
	f, _, off, n, err := openCache(r.opt.CacheDir)
	if err != nil {
		return &patchError{"no_base", fmt.Errorf("open the cached list: %w", err)}
	}
	defer f.Close()
	d, err := r.fetch.diff(ctx, held, a.hdr.Version)
	if err != nil {
		return &patchError{"diff", err}
	}
	fetched := time.Now()
	v, err := list.NewVerifier(r.opt.PublicKey, a.signature)
	if err != nil {
		return &patchError{"signature", err}
	}
	sp := newSpool(r.opt.CacheDir, a.signature, false)
	defer sp.close()
	if sp.f == nil {
		return &patchError{"no_base", errors.New("cannot create a spool file in the cache directory")}
	}
	// The held body is read at the changes only, and copied around them.
	res, err := allowlist.PatchListAt(f, off, n, cur.st, a.hdr, d.Added, d.Removed, io.MultiWriter(sp, v))
	var spoolErr *spoolError
	switch {
	case errors.As(err, &spoolErr):
		return &patchError{"cache_write", err}
	case err != nil:
		return &patchError{"invalid", err}
	}
	if res.Old.Version != held || res.Old.SHA256 != cur.sha256 || res.Old.Scope != r.opt.Scope {
		return &patchError{"no_base", fmt.Errorf("the cache file holds %s version %d, not the version %d enforced", res.Old.Scope, res.Old.Version, held)}
	}
	if err := v.Verify(); err != nil {
		return &patchError{"signature", fmt.Errorf("the list rebuilt from the diff does not verify: %w", err)}
	}
	verified := time.Now()
	var p *policy
	if cur.matcher.Stale()+len(res.Remove) > maxStale(res.Stats.Entries) {
		if p, err = compileStream(sp.body(), listInfo{hdr: a.hdr, st: res.Stats}); err != nil {
			return &patchError{"invalid", err}
		}
	} else {
		p = &policy{scope: a.hdr.Scope, version: a.hdr.Version, sha256: a.hdr.SHA256, entries: res.Stats.Entries, st: res.Stats,
			matcher: cur.matcher.Patch(res.Remove, res.Add), generated: a.hdr.GeneratedAt}
	}
	r.log.Debug("list patched", "version", a.hdr.Version, "diff", fetched.Sub(start), "rebuild_and_verify", verified.Sub(fetched), "matcher", time.Since(verified))
	r.enforce(p, sp, "patch", "registry (patched: +"+strconv.Itoa(len(d.Added))+" -"+strconv.Itoa(len(d.Removed))+")", start)
	return nil
}
