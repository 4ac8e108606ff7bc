package allowlist

import (
	"context"
	"strings"
	"time"
)

// TSIGKey is a shared secret (HMAC-SHA256, RFC 8945) with which a
// department's DNS server signs its zone transfers. The secret is shown
// once, when the key is made, and never listed.
type TSIGKey struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Scopes the key may transfer; empty means every scope.
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// TSIGSecret is a usable key with its secret, for the zone-transfer
// server alone.
type TSIGSecret struct {
	ID     int64 // the key's number, which names it in public metrics
	Name   string
	Scopes []string
	Secret []byte
}

// Allows reports whether a key limited to scopes may transfer scope.
func (k TSIGSecret) Allows(scope string) bool {
	if len(k.Scopes) == 0 {
		return true
	}
	for _, s := range k.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// TSIGStore keeps zone-transfer keys. A store may implement it beside
// Registry; the API and the zone-transfer server use it when it does.
type TSIGStore interface {
	// CreateTSIGKey makes a key with a new random secret and returns the
	// secret once. EINVALID, ECONFLICT (name in use), ENOTFOUND (scope).
	CreateTSIGKey(ctx context.Context, a Actor, name string, scopes []string) (TSIGKey, []byte, error)
	// FindTSIGKeys lists keys, never their secrets.
	FindTSIGKeys(ctx context.Context) ([]TSIGKey, error)
	// RevokeTSIGKey makes a key unusable. ENOTFOUND.
	RevokeTSIGKey(ctx context.Context, a Actor, id int64) error
	// FindTSIGSecrets returns every key that is not revoked, with its
	// secret.
	FindTSIGSecrets(ctx context.Context) ([]TSIGSecret, error)
	// AuditTransferRefused records a zone transfer refused for a bad,
	// unknown or wrongly scoped key, or none.
	AuditTransferRefused(ctx context.Context, key, remote, scope, reason string) error
}

// ValidateTSIGKeyName checks a key's name: a DNS name of letters, digits
// and hyphens in dot-separated labels, as BIND, Unbound and PowerDNS write
// it in their configuration, lower case.
func ValidateTSIGKeyName(name string) error {
	var c checker
	name = strings.TrimSuffix(name, ".")
	switch {
	case name == "":
		c.add("name", "is required")
	case len(name) > 200:
		c.add("name", "is longer than 200 characters")
	default:
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				c.add("name", "must be a lower-case DNS name: labels of a-z, 0-9 and inner hyphens, separated by dots")
				break
			}
		}
	}
	return c.err()
}
