package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
)

// TestNewestAudit finds the newest audit entry of a real store from any
// older one, as the count grows past several powers of two.
func TestNewestAudit(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	newest := func() int64 { // the slow way: every entry
		var last int64
		for {
			e, err := db.FindAudit(ctx, last, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(e) == 0 {
				return last
			}
			last = e[len(e)-1].Seq
		}
	}
	for i := 0; i < 70; i++ {
		want := newest()
		for _, from := range []int64{0, want / 3, max(0, want-1), want} {
			if got, err := newestAudit(ctx, db, from); err != nil || got != want {
				t.Fatalf("after %d changes, from %d: got %d, %v; want %d", i, from, got, err, want)
			}
		}
		if _, err := db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: fmt.Sprintf("dept-%d", i), Name: "D", Kind: "other"}); err != nil {
			t.Fatal(err)
		}
	}
}
