package list

import (
	"encoding/json"
	"strconv"
)

// The headers the registry sends with a list (GET /v1/lists/{scope}) and
// a resolver reads: the body's identity and signature, so that a client
// can check a body, or ask for a diff, before reading it.
const (
	HeaderScope       = "X-Allowlist-Scope"
	HeaderVersion     = "X-Allowlist-Version"
	HeaderSignature   = "X-Allowlist-Signature" // Sign's base64 signature of the body
	HeaderSHA256      = "X-Allowlist-SHA256"
	HeaderGeneratedAt = "X-Allowlist-Generated-At"
	// The registry's signed statement that this version is the current
	// one at a time (allowlist.Timestamp), and its signature.
	HeaderTimestamp          = "X-Allowlist-Timestamp"
	HeaderTimestampSignature = "X-Allowlist-Timestamp-Signature"
)

// DiffBody is the JSON of the changes between two versions of a scope
// (GET /v1/lists/{scope}/diff?from=&to=), as a resolver reads it to
// Patch the version it holds. When the endpoints of the scope's sites
// changed, the body also holds the fields of allowlist.EndpointChanges
// (handling_changed, networks_added, networks_removed) between "from" and
// "removed"; a resolver that reads only the entries ignores them.
type DiffBody struct {
	Scope   string  `json:"scope"`
	From    int64   `json:"from"`
	To      int64   `json:"to"`
	Added   []Entry `json:"added"`
	Removed []Entry `json:"removed"`
}

// EncodeDiff writes a DiffBody around changes already encoded: added and
// removed are EncodeArray's arrays, endpoints the JSON object of the
// endpoint changes (nil: none). The bytes are those encoding/json writes
// for the body with its keys in sorted order, and a newline.
func EncodeDiff(scope string, from, to int64, added, removed, endpoints []byte) []byte {
	q, _ := json.Marshal(scope)
	b := make([]byte, 0, len(added)+len(removed)+len(endpoints)+len(q)+80)
	b = append(b, `{"added":`...)
	b = append(b, added...)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, from, 10)
	if len(endpoints) > 0 {
		// The endpoint changes' own JSON holds the three fields, in this
		// order, each left out when empty: its object without braces.
		b = append(b, ',')
		b = append(b, endpoints[1:len(endpoints)-1]...)
	}
	b = append(b, `,"removed":`...)
	b = append(b, removed...)
	b = append(b, `,"scope":`...)
	b = append(b, q...)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, to, 10)
	return append(b, "}\n"...)
}
