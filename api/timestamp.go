package api

import (
	"context"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/labstack/echo/v4"
)

// A list's signature proves it genuine, not current. The registry also
// signs, with the same key, a timestamp (allowlist.Timestamp): "at this
// time, this version with this hash is the current one". Answers about
// the current version carry the newest one in two headers, a 304 at a
// watch's timeout included, so that a client measures its list's age from
// a time the registry signed, which a network attacker can replay but
// never move forward (list.HeaderTimestamp, list.HeaderTimestampSignature).

// signedTimestamp is a timestamp with its signature.
type signedTimestamp struct {
	t   allowlist.Timestamp
	sig string
}

// timestamp returns a signed timestamp for version of scope with entries
// hashing to sha, if that is the current version: the one made last,
// unless it is older than stampEvery or names another version. Signing
// takes tens of microseconds; a fleet of resolvers shares one signature
// per scope every stampEvery.
func (h *hub) timestamp(scope string, version int64, sha string) (signedTimestamp, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.current[scope]; !ok || cur != version {
		return signedTimestamp{}, false
	}
	now := time.Now()
	st, ok := h.stamps[scope]
	if ok && st.t.Version == version && st.t.SHA256 == sha && now.Sub(st.t.Time) < h.stampEvery {
		return st, true
	}
	t := allowlist.Timestamp{Scope: scope, Version: version, SHA256: sha, Time: now.UTC().Truncate(time.Second)}
	sig, err := h.reg.SignTimestamp(t)
	if err != nil {
		return signedTimestamp{}, false
	}
	st = signedTimestamp{t: t, sig: sig}
	h.stamps[scope] = st
	return st, true
}

// setTimestamp adds the timestamp headers for version of scope (with
// entries hashing to sha) when it is the current version. Answers about
// older versions (/versions/{n}) carry none: they say nothing about what
// is current.
func (h *hub) setTimestamp(c echo.Context, scope string, version int64, sha string) {
	st, ok := h.timestamp(scope, version, sha)
	if !ok {
		return
	}
	hd := c.Response().Header()
	hd.Set(list.HeaderTimestamp, st.t.Time.Format(allowlist.TimestampFormat))
	hd.Set(list.HeaderTimestampSignature, st.sig)
}

// setCurrent adds, to an answer that carries no list (a watch's 304), the
// current version's identity and its timestamp.
func (h *hub) setCurrent(ctx context.Context, c echo.Context, scope string, version int64) {
	hd := c.Response().Header()
	hd.Set(list.HeaderScope, scope)
	hd.Set(list.HeaderVersion, itoa(version))
	// The JSON form is in memory for the current version whenever anyone
	// has fetched it (and from its publication on), so this reads
	// nothing in the usual case.
	r, err := h.get(ctx, scope, version, allowlist.Formats[0])
	if err != nil {
		return
	}
	hd.Set(list.HeaderSHA256, r.sha256)
	h.setTimestamp(c, scope, version, r.sha256)
}
