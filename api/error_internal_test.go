package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// TestDecodeCodes: a body decode refuses carries the code its status
// comes from (no error knows its status by itself): malformed JSON and
// unknown fields are EMALFORMED (400), a body that is not JSON is
// EUNSUPPORTED (415), one over MaxBody ETOOLARGE (413).
func TestDecodeCodes(t *testing.T) {
	for _, c := range []struct {
		name, ctype, body, code string
		status                  int
	}{
		{"malformed JSON", "application/json", `{"id":`, allowlist.EMALFORMED, 400},
		{"unknown field", "application/json", `{"id":"x","colour":"red"}`, allowlist.EMALFORMED, 400},
		{"wrong type", "application/json", `{"id":42}`, allowlist.EMALFORMED, 400},
		{"duplicate key", "application/json", `{"id":"a","id":"b"}`, allowlist.EMALFORMED, 400},
		{"trailing data", "application/json", `{"id":"a"} {}`, allowlist.EMALFORMED, 400},
		{"not JSON", "text/plain", `{"id":"a"}`, allowlist.EUNSUPPORTED, 415},
		{"too large", "application/json", `{"id":"` + strings.Repeat("a", MaxBody) + `"}`, allowlist.ETOOLARGE, 413},
	} {
		req := httptest.NewRequest("POST", "/v1/x", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		ctx := echo.New().NewContext(req, httptest.NewRecorder())
		var v struct {
			ID string `json:"id"`
		}
		err := decode(ctx, &v)
		if got := allowlist.ErrorCode(err); got != c.code {
			t.Errorf("%s: code %q (%v), want %q", c.name, got, err, c.code)
		}
		if got := Status(err); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
	}
}

// TestStatusTable: every code has its status, and echo's own errors (the
// router's 404 and 405) read back as codes.
func TestStatusTable(t *testing.T) {
	for code, want := range map[string]int{
		allowlist.EINVALID: 422, allowlist.EMALFORMED: 400, allowlist.ENOTFOUND: 404, allowlist.ECONFLICT: 409,
		allowlist.EUNAUTHORIZED: 401, allowlist.EFORBIDDEN: 403, allowlist.ENOTALLOWED: 405, allowlist.ETOOLARGE: 413,
		allowlist.EUNSUPPORTED: 415, allowlist.ETOOMANY: 429, allowlist.ENOTIMPLEMENTED: 501, allowlist.EUNAVAILABLE: 503,
		allowlist.EINTERNAL: 500, "no-such-code": 500,
	} {
		if got := CodeStatus(code); got != want {
			t.Errorf("%s: %d, want %d", code, got, want)
		}
	}
	if got := AsError(echo.ErrMethodNotAllowed).Code; got != allowlist.ENOTALLOWED {
		t.Errorf("echo's 405: %s", got)
	}
	if got := AsError(echo.ErrNotFound).Code; got != allowlist.ENOTFOUND {
		t.Errorf("echo's 404: %s", got)
	}
	if e := AsError(http.ErrHandlerTimeout); e.Code != allowlist.EINTERNAL || e.Message != "internal error" {
		t.Errorf("a plain error: %s %q", e.Code, e.Message)
	}
}
