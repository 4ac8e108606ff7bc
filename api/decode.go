package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// MaxBody is the largest request body accepted (1 MiB).
const MaxBody = 1 << 20

// maxDepth bounds JSON nesting; no request of ours needs more than a few.
const maxDepth = 16

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc.Encode(v)
}

// decode reads a JSON request body into v strictly:
//   - 415 unless the content type is application/json (charset utf-8 only);
//   - 413 when the body is over MaxBody, whatever Content-Length says;
//   - 400 for malformed JSON, invalid UTF-8, trailing data, nesting deeper
//     than maxDepth, duplicate keys (also differing only in case), keys
//     that are not lower-case, unknown fields and wrong types.
//
// Go's decoder would otherwise match keys case-insensitively and let the
// last duplicate win, so {"domain":"a","DOMAIN":"b"} could smuggle a value
// past a proxy or a log that read the first.
func decode(c echo.Context, v any) error { return decodeLimit(c, v, MaxBody) }

// decodeLimit is decode with a body limit of limit bytes (a whole number
// of MiB), for the routes that take more than MaxBody (POST /v1/usage).
func decodeLimit(c echo.Context, v any, limit int64) error {
	r := c.Request()
	tooLarge := func() error {
		return allowlist.Errorf(allowlist.ETOOLARGE, "the body is larger than %d MiB", limit>>20)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err != nil || mt != "application/json" {
		return allowlist.Errorf(allowlist.EUNSUPPORTED, "send the body as application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return allowlist.Errorf(allowlist.EUNSUPPORTED, "the only charset accepted is utf-8")
	}
	if r.ContentLength > limit {
		return tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		return allowlist.Errorf(allowlist.EMALFORMED, "could not read the body")
	}
	if int64(len(body)) > limit {
		return tooLarge()
	}
	if !utf8.Valid(body) {
		return allowlist.Errorf(allowlist.EMALFORMED, "the body is not valid UTF-8")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return allowlist.Errorf(allowlist.EMALFORMED, "the body must be a JSON object")
	}
	if err := checkKeys(body); err != nil {
		return allowlist.Errorf(allowlist.EMALFORMED, "%s", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return allowlist.Errorf(allowlist.EMALFORMED, "%s", jsonMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return allowlist.Errorf(allowlist.EMALFORMED, "unexpected data after the JSON value")
	}
	return nil
}

func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("the body must be a JSON %s", "object")
		}
		return fmt.Sprintf("field %s must be of type %s", field, te.Type.String())
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too soon"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// checkKeys walks the JSON tokens and refuses duplicate keys (compared
// case-insensitively), keys with upper-case letters, and deep nesting.
func checkKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // the next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errors.New(jsonMessage(err))
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if key, ok := tok.(string); ok {
				lk := strings.ToLower(key)
				if lk != key {
					return fmt.Errorf("field names are lower-case: %q", key)
				}
				if top.keys[lk] {
					return fmt.Errorf("duplicate field %q", key)
				}
				top.keys[lk] = true
				top.expect = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return errors.New("JSON nested too deeply")
			}
			if top != nil && top.object {
				top.expect = true
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), keys: map[string]bool{}, expect: tok == json.Delim('{')})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.object {
				top.expect = true
			}
		}
	}
}

// pageLimit reads the limit parameter of a listing: def when it is
// absent, else an integer from 1 to allowlist.MaxPage. EMALFORMED.
func pageLimit(c echo.Context, def int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > allowlist.MaxPage {
		return 0, allowlist.Errorf(allowlist.EMALFORMED, "limit must be an integer from 1 to %d", allowlist.MaxPage)
	}
	return n, nil
}

// invalid is a convenience for handler-level validation failures.
func invalid(field, msg string) error {
	return allowlist.Invalid(allowlist.FieldError{Field: field, Message: msg})
}
