package api

import (
	"encoding/json"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// TestDiffBodyMatchesEncodingJSON: the diff assembled around recorded
// changes is byte for byte what encoding/json writes for the computed one.
func TestDiffBodyMatchesEncodingJSON(t *testing.T) {
	for _, c := range []struct {
		scope          string
		added, removed []allowlist.Entry
	}{
		{"common", []allowlist.Entry{}, []allowlist.Entry{}},
		{"dept-a", []allowlist.Entry{{Pattern: "*.a.example.org", Site: "a", Category: "wiki"}}, []allowlist.Entry{}},
		{"x<&>\u2028", []allowlist.Entry{{Pattern: "b.example.org", Site: "s<i>t&e", Category: "caf\u00e9"}},
			[]allowlist.Entry{{Pattern: "a.example.org", Site: "q\"uote\\", Category: "\u2029"}, {Pattern: "z.example.org", Site: "z", Category: "other"}}},
	} {
		want, err := json.Marshal(diffJSON{Added: c.added, From: 6, Removed: c.removed, Scope: c.scope, To: 7})
		if err != nil {
			t.Fatal(err)
		}
		got := diffBody(c.scope, 6, 7, allowlist.Changes{Added: list.EncodeArray(c.added), Removed: list.EncodeArray(c.removed)})
		if string(got) != string(want)+"\n" {
			t.Errorf("diffBody:\n%s\nencoding/json:\n%s", got, want)
		}
	}
	// With endpoint changes, each field present or not.
	teams := []allowlist.Endpoint{{Site: "teams", Category: "video-conferencing", Networks: []allowlist.Network{{Prefix: "52.112.0.0/14", Protocol: "udp", Ports: "3478-3481"}},
		Handling: allowlist.Handling{TLSInspection: "bypass", Proxy: "direct"}}}
	narrower := []allowlist.Endpoint{{Site: "teams", Category: "video-conferencing", Networks: []allowlist.Network{{Prefix: "52.112.0.0/14", Protocol: "udp", Ports: "3478"}},
		Handling: allowlist.Handling{TLSInspection: "allow", Proxy: "direct"}}}
	for _, pair := range [][2][]allowlist.Endpoint{{nil, teams}, {teams, nil}, {teams, narrower}} {
		ec := allowlist.DiffEndpoints(pair[0], pair[1])
		want, _ := json.Marshal(diffJSON{Added: []allowlist.Entry{}, From: 6, Removed: []allowlist.Entry{}, Scope: "common", To: 7,
			HandlingChanged: ec.HandlingChanged, NetworksAdded: ec.NetworksAdded, NetworksRemoved: ec.NetworksRemoved})
		a, _ := json.Marshal(pair[0])
		b, _ := json.Marshal(pair[1])
		enc, err := allowlist.EncodeEndpointChanges(a, b)
		if err != nil || enc == nil {
			t.Fatalf("no endpoint changes: %v", err)
		}
		got := diffBody("common", 6, 7, allowlist.Changes{Added: []byte("[]"), Removed: []byte("[]"), Endpoints: enc})
		if string(got) != string(want)+"\n" {
			t.Errorf("diffBody:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}

// TestRenderedCacheIsBoundedInBytes: versions that are no longer current
// leave the cache once it holds maxRenderedBytes, whatever their number;
// the current one stays.
func TestRenderedCacheIsBoundedInBytes(t *testing.T) {
	h := newHub(nil)
	big := make([]byte, 85<<20) // a million-entry list
	for v := int64(1); v <= 20; v++ {
		h.notify("common", v)
		h.prime(allowlist.Version{Scope: "common", Version: v, SHA256: "0123456789abcdef0123", Signature: "sig", Body: big,
			Changes: &allowlist.Changes{Added: []byte("[]"), Removed: []byte("[]")}})
		if h.renderedBytes > maxRenderedBytes {
			t.Fatalf("after version %d the cache holds %d MB", v, h.renderedBytes>>20)
		}
	}
	if _, ok := h.rendered[renderKey{"common", 20, "json"}]; !ok {
		t.Error("the current version left the cache")
	}
	if _, ok := h.diffs[diffKey{"common", 19, 20}]; !ok {
		t.Error("the diff to the current version was not kept")
	}
}

// diffJSON is the diff endpoint's body as encoding/json writes it, fields in the order encoding/json
// gives a map's keys (which is how it was first written).
type diffJSON struct {
	Added []allowlist.Entry `json:"added"`
	From  int64             `json:"from"`
	// What changed in the endpoints, when anything did.
	HandlingChanged []allowlist.HandlingChange `json:"handling_changed,omitempty"`
	NetworksAdded   []allowlist.SiteNetwork    `json:"networks_added,omitempty"`
	NetworksRemoved []allowlist.SiteNetwork    `json:"networks_removed,omitempty"`
	Removed         []allowlist.Entry          `json:"removed"`
	Scope           string                     `json:"scope"`
	To              int64                      `json:"to"`
}
