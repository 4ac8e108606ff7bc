package storetest

import (
	"sync"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// testSubscribers: every subscriber hears each version a commit
// published, with the bytes the store then serves; a refused change
// publishes nothing and tells nobody.
func testSubscribers(t *testing.T, b Backend) {
	db := b.open(t, 2)
	Seed(t, db, "dept-a", "dept-b")
	var mu sync.Mutex
	heard := map[int][]allowlist.Version{}
	for i := range 2 {
		db.Subscribe(func(v allowlist.Version) {
			mu.Lock()
			heard[i] = append(heard[i], v)
			mu.Unlock()
		})
	}
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{
		ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
	if _, err := db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "maybe", ""); allowlist.ErrorCode(err) != allowlist.EINVALID {
		t.Fatalf("a decision that is not one: %v", err)
	}
	mu.Lock()
	if len(heard[0])+len(heard[1]) != 0 {
		t.Errorf("heard %v before any list changed", heard)
	}
	mu.Unlock()
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	want := Must[allowlist.Version](t)(db.FindVersion(ctx, "dept-a", allowlist.Latest))
	mu.Lock()
	defer mu.Unlock()
	for i := range 2 {
		if len(heard[i]) != 1 {
			t.Fatalf("subscriber %d heard %d versions, want dept-a's new one", i, len(heard[i]))
		}
		v := heard[i][0]
		if v.Scope != "dept-a" || v.Version != want.Version || v.SHA256 != want.SHA256 || string(v.Whole()) != string(want.Body) || v.Signature != want.Signature {
			t.Errorf("subscriber %d heard %s/%d %s, the store serves %d %s", i, v.Scope, v.Version, v.SHA256, want.Version, want.SHA256)
		}
	}
}
