package sqlite

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"gopkg.in/yaml.v3"
)

// TestEndpointsStoredAndPublished: networks, handling and notes survive
// the store, each revision's endpoints are kept for the sign-off rules, a
// widening waits for its quorum while a narrowing publishes at once, the
// version records both the schema-2 signature and the endpoint changes,
// and a catalogue with a pending widening goes through export, YAML and
// import unchanged.
func TestEndpointsStoredAndPublished(t *testing.T) {
	db := mustOpen(t, 2)
	seed(t, db, "dept-a", "dept-b")
	relaxed := allowlist.Handling{TLSInspection: "bypass", Proxy: "direct"}
	teams := []allowlist.Network{{Prefix: "52.112.0.0/14", Protocol: "udp", Ports: "3478-3481"}}
	must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: "teams", Name: "Teams", Category: "video-conferencing",
		Domains: []string{"*.teams.microsoft.com"}, Networks: teams, Handling: relaxed, Notes: "no calls", Owner: allowlist.Owner{Name: "M"}}))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "teams", "dept-a", "approve", ""))
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "teams", "dept-b", "approve", ""))
	v := must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	eps, err := allowlist.DecodeEndpoints(v.Endpoints)
	if err != nil || len(eps) != 1 || !reflect.DeepEqual(eps[0].Networks, teams) || eps[0].Handling != relaxed || eps[0].Notes != "no calls" {
		t.Fatalf("version %d endpoints %+v %v", v.Version, eps, err)
	}
	if err := allowlist.VerifyList(db.PublicKey(), bytes.Join(allowlist.WithEndpoints(v.Parts(), v.Endpoints), nil), v.EndpointsSignature); err != nil {
		t.Fatalf("schema-2 signature: %v", err)
	}
	if err := allowlist.VerifyList(db.PublicKey(), v.Whole(), v.Signature); err != nil {
		t.Fatalf("schema-1 signature: %v", err)
	}

	// Widening: a new revision, nothing new published.
	wider := append([]allowlist.Network{{Prefix: "13.107.64.0/18", Protocol: "udp", Ports: "3478-3481"}}, teams...)
	s := must[allowlist.Site](t)(db.UpdateSite(ctx, owner("dept-a"), "teams", allowlist.SitePatch{Networks: &wider}))
	if s.Revision != 2 || len(s.Networks) != 2 || len(s.PublishedEndpoints.Networks) != 1 {
		t.Fatalf("after widening: revision %d, networks %v, published %v", s.Revision, s.Networks, s.PublishedEndpoints)
	}
	if version(t, db, "common") != v.Version {
		t.Fatal("widening published a version")
	}
	// Export while the widening waits; the YAML goes back in unchanged.
	cat := must[allowlist.Catalogue](t)(db.Export(ctx))
	text, err := yaml.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	var back allowlist.Catalogue
	if err := yaml.Unmarshal(text, &back); err != nil {
		t.Fatal(err)
	}
	db2 := mustOpen(t, 2)
	if err := db2.Import(ctx, allowlist.System, back); err != nil {
		t.Fatalf("import: %v\n%s", err, text)
	}
	if again := must[allowlist.Catalogue](t)(db2.Export(ctx)); !reflect.DeepEqual(cat, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", cat, again)
	}
	s2 := must[allowlist.Site](t)(db2.FindSite(ctx, "teams"))
	if len(s2.Networks) != 2 || len(s2.PublishedEndpoints.Networks) != 1 || s2.Notes != "no calls" {
		t.Errorf("imported: %+v", s2)
	}

	// Narrowing publishes at once, and the version says what changed.
	narrow := []allowlist.Network{{Prefix: "52.112.0.0/16", Protocol: "udp", Ports: "3478"}}
	must[allowlist.Site](t)(db.UpdateSite(ctx, owner("dept-a"), "teams", allowlist.SitePatch{Networks: &narrow}))
	if n := version(t, db, "common"); n != v.Version+1 {
		t.Fatalf("narrowing: version %d, want %d", n, v.Version+1)
	}
	c, ok, err := db.FindChanges(ctx, "common", v.Version+1)
	if err != nil || !ok || !bytes.Contains(c.Endpoints, []byte(`"networks_removed":[{"site":"teams","prefix":"52.112.0.0/14"`)) ||
		!bytes.Contains(c.Endpoints, []byte(`"networks_added":[{"site":"teams","prefix":"52.112.0.0/16","protocol":"udp","ports":"3478"}]`)) {
		t.Errorf("changes %s %v %v", c.Endpoints, ok, err)
	}
	if string(c.Added) != "[]" || string(c.Removed) != "[]" {
		t.Errorf("domain changes on a network-only change: %s %s", c.Added, c.Removed)
	}

	// Suspension removes everything.
	must[allowlist.Site](t)(db.SuspendSite(ctx, allowlist.System, "teams", "test"))
	v = must[allowlist.Version](t)(db.FindVersion(ctx, "common", allowlist.Latest))
	if v.Endpoints != nil || v.EndpointsSignature != "" {
		t.Errorf("suspended: endpoints %s", v.Endpoints)
	}
}
