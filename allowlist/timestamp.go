package allowlist

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Timestamp is the registry's signed statement that, at Time, Version
// (with entries hashing to SHA256) was the current version of Scope. It is
// what TUF calls the timestamp role's metadata: a list signature proves a
// version is genuine but not that it is still current, so a network
// attacker could otherwise hold a resolver on an old version for as long
// as it liked. The registry signs a new one every few seconds; a resolver
// measures its list's age from the newest Time it holds.
type Timestamp struct {
	Scope   string
	Version int64
	SHA256  string
	Time    time.Time
}

// timestampDomain starts every timestamp message. A list body starts with
// "{", so no list signature can be taken for a timestamp's, nor a
// timestamp's for a list's.
const timestampDomain = "allowlist timestamp v1\n"

// TimestampFormat is how a timestamp's time is written, in its message and
// in the X-Allowlist-Timestamp header: RFC 3339 in UTC, whole seconds.
const TimestampFormat = "2006-01-02T15:04:05Z"

// Message returns the exact bytes a timestamp's signature covers:
//
//	allowlist timestamp v1
//	scope: SCOPE
//	version: N
//	sha256: HEX
//	time: 2006-01-02T15:04:05Z
func (t Timestamp) Message() []byte {
	b := make([]byte, 0, 160)
	b = append(b, timestampDomain...)
	b = append(b, "scope: "...)
	b = append(b, t.Scope...)
	b = append(b, "\nversion: "...)
	b = strconv.AppendInt(b, t.Version, 10)
	b = append(b, "\nsha256: "...)
	b = append(b, t.SHA256...)
	b = append(b, "\ntime: "...)
	b = append(b, t.Time.UTC().Format(TimestampFormat)...)
	return append(b, '\n')
}

// check refuses fields that would make the message ambiguous.
func (t Timestamp) check() error {
	if !departmentID.MatchString(t.Scope) { // "common" or a department id
		return fmt.Errorf("timestamp scope %q is not a scope id", t.Scope)
	}
	if t.Version < 0 {
		return fmt.Errorf("timestamp version %d is negative", t.Version)
	}
	if len(t.SHA256) != 64 {
		return errors.New("timestamp sha256 is not 64 hex digits")
	}
	for _, c := range t.SHA256 {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("timestamp sha256 is not 64 lower-case hex digits")
		}
	}
	return nil
}

// SignTimestamp returns the base64 Ed25519 signature of t's message, made
// with the list key. t's time is taken to the second.
func SignTimestamp(key ed25519.PrivateKey, t Timestamp) (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, t.Message())), nil
}

// ParseTimestamp reads a timestamp from the registry's headers: the scope
// the client asked for, and the values of X-Allowlist-Version,
// X-Allowlist-SHA256, X-Allowlist-Timestamp and
// X-Allowlist-Timestamp-Signature, and checks the signature. A time not
// written in TimestampFormat is refused, so that one statement has one
// form.
func ParseTimestamp(pub ed25519.PublicKey, scope, version, sha, at, signature string) (Timestamp, error) {
	var t Timestamp
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return t, fmt.Errorf("timestamp version %q is not a number", version)
	}
	when, err := time.Parse(TimestampFormat, at)
	if err != nil || when.Format(TimestampFormat) != at { // Parse takes fractions too
		return t, fmt.Errorf("timestamp time %q is not of the form %s", at, TimestampFormat)
	}
	t = Timestamp{Scope: scope, Version: v, SHA256: sha, Time: when}
	if err := t.check(); err != nil {
		return Timestamp{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		!ed25519.Verify(pub, t.Message(), sig) {
		return Timestamp{}, errBadTimestamp
	}
	return t, nil
}

var errBadTimestamp = errors.New("timestamp signature does not verify")
