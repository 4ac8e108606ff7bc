package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
	"github.com/labstack/echo/v4"
)

func (s *Server) handleScopes(c echo.Context) error {
	scopes, err := s.svc.Lists.FindScopes(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, scopes)
}

func format(c echo.Context) (allowlist.Format, error) {
	f, err := allowlist.FindFormat(c.QueryParam("format"))
	if err == nil {
		f, err = f.Configure(c.QueryParam)
	}
	if err != nil {
		return f, allowlist.Errorf(allowlist.EMALFORMED, "%s", err.Error())
	}
	return f, nil
}

// serveList writes a rendered version with its headers, or 304 when the
// client already has these exact bytes.
func serveList(c echo.Context, r *rendered, cacheControl string) error {
	h := c.Response().Header()
	h.Set("ETag", r.etag)
	h.Set("Cache-Control", cacheControl)
	h.Set(list.HeaderScope, r.scope)
	h.Set(list.HeaderVersion, strconv.FormatInt(r.version, 10))
	h.Set(list.HeaderSignature, r.signature)
	h.Set(list.HeaderSHA256, r.sha256)
	h.Set(list.HeaderGeneratedAt, r.generatedAt)
	h.Set("Vary", "Authorization")
	if etagMatch(c.Request().Header.Get("If-None-Match"), r.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	if r.format.Name != "json" {
		h.Set("Content-Disposition", `inline; filename="allowlist-`+r.scope+"-"+strconv.FormatInt(r.version, 10)+"."+r.format.Name+`"`)
	}
	// Written piece by piece: a list's entries may be shared with other
	// scopes' versions, never copied into one body per response.
	res := c.Response()
	h.Set(echo.HeaderContentType, r.contentType)
	h.Set(echo.HeaderContentLength, strconv.Itoa(r.size))
	res.WriteHeader(http.StatusOK)
	for _, p := range r.parts {
		if _, err := res.Write(p); err != nil {
			return nil // the client went away; nothing more to say
		}
	}
	return nil
}

// etagMatch implements If-None-Match's list form and "*" (RFC 9110 13.1.2).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// The latest list may change at any time: caches must revalidate, which
// the ETag makes cheap. A numbered version never changes: cache it forever.
const (
	cacheLatest    = "public, no-cache"
	cacheImmutable = "public, max-age=31536000, immutable"
)

func (s *Server) handleList(c echo.Context) error {
	f, err := format(c)
	if err != nil {
		return err
	}
	r, err := s.hub.get(c.Request().Context(), c.Param("scope"), allowlist.Latest, f)
	if err != nil {
		return err
	}
	s.hub.setTimestamp(c, r.scope, r.version, r.sha256)
	return serveList(c, r, cacheLatest)
}

func parseVersion(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, allowlist.Errorf(allowlist.EMALFORMED, "%s", name+" must be a non-negative integer version")
	}
	return n, nil
}

func (s *Server) handleVersion(c echo.Context) error {
	n, err := parseVersion(c.Param("n"), "the version")
	if err != nil {
		return err
	}
	f, err := format(c)
	if err != nil {
		return err
	}
	r, err := s.hub.get(c.Request().Context(), c.Param("scope"), n, f)
	if err != nil {
		return err
	}
	return serveList(c, r, cacheImmutable)
}

func (s *Server) handleVersions(c echo.Context) error {
	vs, err := s.svc.Lists.FindVersions(c.Request().Context(), c.Param("scope"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, vs)
}

func (s *Server) handleDiff(c echo.Context) error {
	scope := c.Param("scope")
	if c.QueryParam("from") == "" {
		return allowlist.Errorf(allowlist.EMALFORMED, "from is required")
	}
	from, err := parseVersion(c.QueryParam("from"), "from")
	if err != nil {
		return err
	}
	to := int64(allowlist.Latest)
	if v := c.QueryParam("to"); v != "" {
		if to, err = parseVersion(v, "to"); err != nil {
			return err
		}
	}
	body, err := s.hub.diff(c.Request().Context(), scope, from, to)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

// defaultWatch is how long a watch waits when the client does not say.
const defaultWatch = 30 * time.Second

// watchTimeout reads a watch's timeout: a duration ("30s") or seconds,
// from 0 to most; defaultWatch when v is empty. EMALFORMED.
func watchTimeout(v string, most time.Duration) (time.Duration, error) {
	if v == "" {
		return defaultWatch, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, err2 := strconv.Atoi(v)
		if err2 != nil {
			return 0, allowlist.Errorf(allowlist.EMALFORMED, "timeout must be a duration such as 30s")
		}
		d = time.Duration(secs) * time.Second
	}
	if d < 0 || d > most {
		return 0, allowlist.Errorf(allowlist.EMALFORMED, "timeout must be between 0s and %s", most)
	}
	return d, nil
}

// handleWatch is a long-poll: it answers at once if the scope is already
// past after, otherwise when it next moves, or 304 at the timeout. Each
// waiter blocks on a channel that the hub closes on change: no polling,
// no CPU while idle, and a client that goes away ends its wait.
func (s *Server) handleWatch(c echo.Context) error {
	scope := c.Param("scope")
	if c.QueryParam("after") == "" {
		return allowlist.Errorf(allowlist.EMALFORMED, "after is required")
	}
	after, err := parseVersion(c.QueryParam("after"), "after")
	if err != nil {
		return err
	}
	timeout, err := watchTimeout(c.QueryParam("timeout"), s.cfg.MaxWatch)
	if err != nil {
		return err
	}
	f, err := format(c)
	if err != nil {
		return err
	}
	if _, err := s.hub.scopeVersion(scope, allowlist.Latest); err != nil {
		return err
	}
	ip := c.RealIP()
	if !s.watches.take(ip) {
		c.Response().Header().Set("Retry-After", "5")
		return allowlist.Errorf(allowlist.ETOOMANY, "too many watches open from this address; close some, or poll")
	}
	defer s.watches.release(ip)
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		cur, changed := s.hub.changes(scope)
		if cur > after {
			r, err := s.hub.get(c.Request().Context(), scope, cur, f)
			if err != nil {
				return err
			}
			s.hub.setTimestamp(c, r.scope, r.version, r.sha256)
			return serveList(c, r, "no-store")
		}
		select {
		case <-changed:
		case <-timer.C:
			// Nothing new: say which version is current, and since when
			// the registry vouches for it (the timestamp).
			s.hub.setCurrent(c.Request().Context(), c, scope, cur)
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.NoContent(http.StatusNotModified)
		case <-c.Request().Context().Done():
			return nil
		}
	}
}

func (s *Server) handleKeys(c echo.Context) error {
	pub := s.svc.Lists.PublicKey()
	return c.JSON(http.StatusOK, map[string]any{"keys": []map[string]string{{
		"id": list.KeyID(pub), "algorithm": "ed25519", "public_key": base64.StdEncoding.EncodeToString(pub),
	}}})
}
