package web

import (
	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

// Pages show errors as the API does, by code: the status comes from the
// API's one status table (api.CodeStatus), the page is HTML, never
// problem+json. A page that can say which field is at fault shows its form
// again with the fields marked, with the status of EINVALID.

// errorTitles are the error pages' headings, by code.
var errorTitles = map[string]string{
	allowlist.ENOTFOUND:       "Page not found",
	allowlist.EINVALID:        "There is a problem",
	allowlist.ECONFLICT:       "There is a problem",
	allowlist.EMALFORMED:      "Your form could not be read",
	allowlist.EUNSUPPORTED:    "Your form could not be read",
	allowlist.ETOOLARGE:       "That was too much to send",
	allowlist.ETOOMANY:        "Too many attempts",
	allowlist.EFORBIDDEN:      "You cannot use this page",
	allowlist.EUNAUTHORIZED:   "Sign in",
	allowlist.ENOTALLOWED:     "You cannot do that on this page",
	allowlist.ENOTIMPLEMENTED: "This registry does not offer that",
	allowlist.EUNAVAILABLE:    "Sorry, the service is unavailable",
	allowlist.EINTERNAL:       "Sorry, there is a problem with the service",
}

// routeMessages say what to do after an error no page chose: a path
// nobody serves, a method a page does not take.
var routeMessages = map[string]string{
	allowlist.ENOTFOUND:   "If you typed the web address, check it is correct. If you pasted it, check you copied the entire address.",
	allowlist.ENOTALLOWED: "This page does not take that kind of request. Go back and try again.",
}

// statusOf is the HTTP status of an error code.
func statusOf(code string) int { return api.CodeStatus(code) }

// fail shows an error page for err with the status of its code; internal
// errors are logged, not shown.
func (p *Pages) fail(c echo.Context, err error) error {
	return p.failTitled(c, "", err)
}

// failTitled is fail with a heading of the page's own ("": the code's).
func (p *Pages) failTitled(c echo.Context, title string, err error) error {
	code := allowlist.ErrorCode(err)
	msg := allowlist.ErrorMessage(err)
	if code == allowlist.EINTERNAL {
		p.log.Error("page failed", "path", c.Request().URL.Path, "err", err)
		msg = "Try again later."
	}
	if title == "" {
		title = errorTitles[code]
	}
	return p.render(c, statusOf(code), "error", &page{Title: title, Message: msg})
}

// routeError answers an error no page handler chose (see
// api.Server.SetPageError): a path nobody serves, a method a page does
// not take, a handler's internal error, as an HTML page with the status
// of its code.
func (p *Pages) routeError(c echo.Context, err *allowlist.Error) {
	if msg, ok := routeMessages[err.Code]; ok {
		err = allowlist.Errorf(err.Code, "%s", msg)
	}
	_ = p.secureHeaders(func(c echo.Context) error { return p.fail(c, err) })(c)
}

// refuse shows an error page with a code and message of the page's own.
func (p *Pages) refuse(c echo.Context, code, title, msg string) error {
	return p.failTitled(c, title, allowlist.Errorf(code, "%s", msg))
}
