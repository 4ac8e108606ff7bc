package allowlist

import (
	"errors"
	"fmt"
)

// Error codes: every failure a caller can act on has one. The api package
// alone turns them into HTTP statuses (its status table, which the pages
// use too); the CLI turns them into exit codes and messages.
const (
	EINVALID        = "invalid"         // a value breaks a rule (422)
	EMALFORMED      = "malformed"       // input could not be read: bad JSON, unknown fields, a parameter not of its form (400)
	ENOTFOUND       = "not_found"       // no such object, or no such path (404)
	ECONFLICT       = "conflict"        // duplicate id, or a domain held by another site (409)
	EUNAUTHORIZED   = "unauthorized"    // missing or bad credentials (401)
	EFORBIDDEN      = "forbidden"       // credentials fine, action not allowed (403)
	ENOTALLOWED     = "not_allowed"     // a method the path does not take (405)
	ETOOLARGE       = "too_large"       // a body over the size accepted (413)
	EUNSUPPORTED    = "unsupported"     // a body in a media type or charset not accepted (415)
	ETOOMANY        = "too_many"        // too many requests from one address; wait and retry (429)
	ENOTIMPLEMENTED = "not_implemented" // this registry's store does not have the feature (501)
	EUNAVAILABLE    = "unavailable"     // not ready: the database is not usable, or versions not loaded yet (503)
	EINTERNAL       = "internal"        // a bug or an outage; details are logged, not shown
)

// FieldError names one field that failed validation and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error a caller can act on: its Message is safe to show to the
// user who sent the request.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string {
	s := e.Message
	for _, f := range e.Fields {
		// Invalid puts a single field in the message already: say it once.
		if item := f.Field + ": " + f.Message; item != s {
			s += "; " + item
		}
	}
	return s
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming the fields at fault.
func Invalid(fields ...FieldError) *Error {
	msg := "invalid input"
	if len(fields) == 1 {
		msg = fields[0].Field + ": " + fields[0].Message
	}
	return &Error{Code: EINVALID, Message: msg, Fields: fields}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EINTERNAL otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err, or a generic text for
// internal errors so that no SQL or file path ever reaches a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
