package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// What every page request passes through, in this order (see Register):
//
//  1. secureHeaders: CSP, no framing, no caching, HSTS behind https.
//  2. limitBody: a body over MaxBody is refused before a byte of it is
//     parsed, and no more than MaxBody is ever read; pages take only
//     application/x-www-form-urlencoded, never multipart.
//  3. identify: the session cookie names a session, whose token is
//     checked again on every request, so a revoked, expired or demoted
//     token ends the session at once.
//  4. checkCSRF: a form post must carry the token for this browser and
//     this session, in the body (never the query string), and must not
//     come from another site.

// MaxBody is the largest form body a page accepts (1 MiB), as for the API.
const MaxBody = 1 << 20

const (
	sessionCookie = "allowlist_session"
	csrfCookie    = "allowlist_csrf"
	sessionTTL    = 8 * time.Hour
	csrfField     = "_csrf"
)

// session is a signed-in filtering owner. The token itself is held (in
// memory only, never written anywhere) so that each request can ask the
// registry whether it is still valid.
type session struct {
	token   string
	expires time.Time
	flash   string
	shown   [2]string // a secret to show once on the next page, and what it is for
}

// sessions is the in-memory session store, safe for concurrent use.
// Expired sessions are swept on every sign-in.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// create starts a session for token and returns its id.
func (s *sessions) create(token string, now time.Time) string {
	id := randomID()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = &session{token: token, expires: now.Add(sessionTTL)}
	return id
}

// token returns the token of a live session.
func (s *sessions) token(id string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return "", false
	}
	if now.After(v.expires) {
		delete(s.m, id)
		return "", false
	}
	return v.token, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	if v := s.m[id]; v != nil {
		v.flash = msg
	}
	s.mu.Unlock()
}

// showOnce keeps a secret (a new token) for the next page only, so that
// the page that creates it can redirect and a reload creates nothing.
func (s *sessions) showOnce(id, secret, what string) {
	s.mu.Lock()
	if v := s.m[id]; v != nil {
		v.shown = [2]string{secret, what}
	}
	s.mu.Unlock()
}

func (s *sessions) takeShown(id string) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return "", ""
	}
	out := v.shown
	v.shown = [2]string{}
	return out[0], out[1]
}

// takeFlash returns the session's message once.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return ""
	}
	msg := v.flash
	v.flash = ""
	return msg
}

// Context keys set by the guard.
const (
	ctxActor   = "web.actor"
	ctxSession = "web.session"
	ctxCSRF    = "web.csrf"
	ctxEnded   = "web.ended"
	// ctxDepartments holds the departments read for this request.
	ctxDepartments = "web.departments"
	ctxNames       = "web.names"
)

func (p *Pages) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: p.opt.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
}

const (
	errTooMuch    = "What you sent is larger than we accept. Go back and shorten it."
	errUnreadable = "Go back, reload the page and try again."
)

// limitBody refuses large or non-form bodies before anything reads them.
func (p *Pages) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return next(c)
		}
		if r.ContentLength > MaxBody {
			return p.refuse(c, allowlist.ETOOLARGE, "", errTooMuch)
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return p.refuse(c, allowlist.EUNSUPPORTED, "", errUnreadable)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, MaxBody)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return p.refuse(c, allowlist.ETOOLARGE, "", errTooMuch)
			}
			return p.refuse(c, allowlist.EMALFORMED, "", errUnreadable)
		}
		// A form's fields come from its body only: values in the query
		// string of a post (a token, a decision) are not read.
		r.Form = r.PostForm
		return next(c)
	}
}

// identify finds the signed-in owner, if any, asking the registry about
// the session's token on every request.
func (p *Pages) identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		token, ok := p.sessions.token(ck.Value, time.Now())
		if !ok {
			c.SetCookie(p.cookie(sessionCookie, "", -1))
			return next(c)
		}
		a, err := p.svc.Tokens.Authenticate(c.Request().Context(), token)
		switch {
		case err == nil && (a.Role == allowlist.RoleOwner || a.Role == allowlist.RoleAdmin):
			c.Set(ctxActor, a)
			c.Set(ctxSession, ck.Value)
		case err == nil || allowlist.ErrorCode(err) == allowlist.EUNAUTHORIZED:
			// Revoked, expired, or no longer an owner's: signed out now.
			p.sessions.end(ck.Value)
			c.SetCookie(p.cookie(sessionCookie, "", -1))
			c.Set(ctxEnded, true)
			p.log.Info("web session ended: token no longer valid", "token_id", a.TokenID)
		default:
			// The registry cannot say: act as signed out for this request
			// (nothing is allowed on an unchecked token), keep the session.
			p.log.Warn("web session check failed", "err", err)
		}
		return next(c)
	}
}

// checkCSRF gives each browser a random cookie, issued and MACed by this
// process, and each form a token that is an HMAC of that cookie and the
// session; it refuses a post whose body does not carry the token, whose
// cookie this process did not issue, or that another site (or a sibling
// subdomain) sent.
func (p *Pages) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		browser := ""
		if ck, err := c.Cookie(p.csrfCookieName()); err == nil && p.issued(ck.Value) {
			browser = ck.Value
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !safe {
			sent := r.PostForm.Get(csrfField)
			want := p.csrfToken(browser, sessionID(c))
			site := r.Header.Get("Sec-Fetch-Site")
			foreign := site != "" && site != "same-origin" && site != "none"
			if browser == "" || foreign || !hmac.Equal([]byte(sent), []byte(want)) {
				return p.refuse(c, allowlist.EFORBIDDEN, "Your form has expired",
					"For your security we could not accept that form. Go back, reload the page and try again.")
			}
		}
		if browser == "" {
			browser = p.issueBrowserID()
			c.SetCookie(p.cookie(p.csrfCookieName(), browser, 0))
		}
		c.Set(ctxCSRF, p.csrfToken(browser, sessionID(c)))
		return next(c)
	}
}

// csrfCookieName is __Host- prefixed whenever cookies are Secure, so that
// a sibling subdomain cannot set it.
func (p *Pages) csrfCookieName() string {
	if p.opt.SecureCookies {
		return "__Host-" + csrfCookie
	}
	return csrfCookie
}

// issueBrowserID makes a browser id this process can recognise: random
// bytes and their MAC.
func (p *Pages) issueBrowserID() string {
	id := randomID()[:32]
	return id + "." + p.mac("browser", id)[:32]
}

func (p *Pages) issued(v string) bool {
	id, tag, ok := strings.Cut(v, ".")
	return ok && len(id) == 32 && hmac.Equal([]byte(tag), []byte(p.mac("browser", id)[:32]))
}

func (p *Pages) csrfToken(browser, session string) string {
	return p.mac("allowlist web form", browser+"\x00"+session)
}

func (p *Pages) mac(purpose, data string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(purpose + "\x00" + data))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sessionID(c echo.Context) string {
	id, _ := c.Get(ctxSession).(string)
	return id
}

// tooMany answers 429 with a page and a Retry-After header.
func (p *Pages) tooMany(c echo.Context, wait time.Duration, msg string) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second))))
	return p.refuse(c, allowlist.ETOOMANY, "", msg)
}
