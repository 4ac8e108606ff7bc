package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string                 `json:"type"`
	Title  string                 `json:"title"`
	Status int                    `json:"status"`
	Detail string                 `json:"detail"`
	Errors []allowlist.FieldError `json:"errors,omitempty"`
}

// statuses maps domain error codes to HTTP statuses: the only place that
// knows both, used by the API's problems and the pages' error pages.
var statuses = map[string]int{
	allowlist.EINVALID:        http.StatusUnprocessableEntity,
	allowlist.EMALFORMED:      http.StatusBadRequest,
	allowlist.ENOTFOUND:       http.StatusNotFound,
	allowlist.ECONFLICT:       http.StatusConflict,
	allowlist.EUNAUTHORIZED:   http.StatusUnauthorized,
	allowlist.EFORBIDDEN:      http.StatusForbidden,
	allowlist.ENOTALLOWED:     http.StatusMethodNotAllowed,
	allowlist.ETOOLARGE:       http.StatusRequestEntityTooLarge,
	allowlist.EUNSUPPORTED:    http.StatusUnsupportedMediaType,
	allowlist.ETOOMANY:        http.StatusTooManyRequests,
	allowlist.ENOTIMPLEMENTED: http.StatusNotImplemented,
	allowlist.EUNAVAILABLE:    http.StatusServiceUnavailable,
	allowlist.EINTERNAL:       http.StatusInternalServerError,
}

// Status is the HTTP status of err (500 for an error with no code).
func Status(err error) int { return CodeStatus(allowlist.ErrorCode(err)) }

// CodeStatus is the HTTP status of an error code (500 for one it does not
// know).
func CodeStatus(code string) int {
	if st, ok := statuses[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// codeOf is the code for a status echo itself chose (its router's 404
// and 405): the status table read backwards, EINTERNAL for any other.
func codeOf(status int) string {
	for code, st := range statuses {
		if st == status {
			return code
		}
	}
	return allowlist.EINTERNAL
}

// AsError returns err as an *allowlist.Error when it is one or is echo's
// own (a path nobody serves, a method a path does not take); any other
// error is internal, and its text is not shown.
func AsError(err error) *allowlist.Error {
	var ae *allowlist.Error
	if errors.As(err, &ae) {
		return ae
	}
	var ee *echo.HTTPError
	if errors.As(err, &ee) {
		msg, ok := ee.Message.(string)
		if !ok || ee.Code >= 500 {
			msg = http.StatusText(ee.Code)
		}
		return allowlist.Errorf(codeOf(ee.Code), "%s", msg)
	}
	return allowlist.Errorf(allowlist.EINTERNAL, "internal error")
}

// problemType is "about:blank" (RFC 9457 section 4.2.1): a problem here
// means no more than its HTTP status, whose phrase is its title; the
// detail and the field errors say what was wrong. A made-up address that
// resolves nowhere would promise documentation that is not there.
func problemType(int) string {
	return "about:blank"
}

// handleError writes every error as problem+json, including the router's
// own 404 and 405; internal errors are logged, and their text never
// reaches the client. Outside the API (see isAPIPath) the pages answer
// with an HTML error page of the same status instead.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := AsError(err)
	if ae.Code == allowlist.EINTERNAL {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if s.pageError != nil && !isAPIPath(c.Request().URL.Path) {
		s.pageError(c, ae)
		return
	}
	p := Problem{Status: Status(ae), Detail: ae.Message, Errors: ae.Fields}
	p.Title = http.StatusText(p.Status)
	p.Type = problemType(p.Status)
	h := c.Response().Header()
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="allowlist"`)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method != http.MethodHead {
		_ = writeJSON(c.Response(), p)
	}
}

// isAPIPath says whether a path is the API's, answered in problem+json
// whatever happens; other unknown paths are people's, answered as pages.
func isAPIPath(path string) bool {
	switch path {
	case "/v1", "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/v1/")
}

// SetPageError makes errors outside the API (an unknown page, a method a
// page does not take) answer with h, the pages' HTML error page, instead
// of problem+json. h renders err with the status Status gives it.
func (s *Server) SetPageError(h func(c echo.Context, err *allowlist.Error)) { s.pageError = h }
