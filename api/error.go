package api

import (
	"errors"
	"net/http"
	"strconv"
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
// knows both.
var statuses = map[string]int{
	allowlist.EINVALID:      http.StatusUnprocessableEntity,
	allowlist.EMALFORMED:    http.StatusBadRequest,
	allowlist.ENOTFOUND:     http.StatusNotFound,
	allowlist.ECONFLICT:     http.StatusConflict,
	allowlist.EUNAUTHORIZED: http.StatusUnauthorized,
	allowlist.EFORBIDDEN:    http.StatusForbidden,
	allowlist.EINTERNAL:     http.StatusInternalServerError,
}

// httpError is an error that already knows its status (from decoding,
// routing or rate limiting).
type httpError struct {
	status int
	detail string
	fields []allowlist.FieldError
}

func (e *httpError) Error() string { return e.detail }

func errStatus(status int, detail string) error { return &httpError{status: status, detail: detail} }

func problemType(status int) string {
	return "https://allowlist.example/problems/" + strconv.Itoa(status)
}

// handleError writes every error as problem+json, including the router's
// own 404 and 405 and echo's errors; internal errors are logged, and their
// text never reaches the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := Problem{Status: http.StatusInternalServerError, Detail: "internal error"}
	var he *httpError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		p.Status, p.Detail, p.Errors = he.status, he.detail, he.fields
	case errors.As(err, &ee):
		p.Status = ee.Code
		p.Detail = http.StatusText(ee.Code)
		if m, ok := ee.Message.(string); ok && ee.Code < 500 {
			p.Detail = m
		}
		if ee.Code >= 500 {
			s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
	default:
		code := allowlist.ErrorCode(err)
		p.Status = statuses[code]
		p.Detail = allowlist.ErrorMessage(err)
		var ae *allowlist.Error
		if errors.As(err, &ae) {
			p.Errors = ae.Fields
		}
		if code == allowlist.EINTERNAL {
			s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
	}
	if p.Status == http.StatusNotFound && s.pageNotFound != nil && !isAPIPath(c.Request().URL.Path) && c.Path() == "" {
		if err := s.pageNotFound(c); err == nil {
			return
		}
	}
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

// SetPageNotFound makes unknown paths outside the API answer with h (the
// pages' HTML 404) instead of problem+json.
func (s *Server) SetPageNotFound(h echo.HandlerFunc) { s.pageNotFound = h }
