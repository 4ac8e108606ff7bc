package allowlist

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist/list"
)

func TestNewListIsCanonical(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := []Entry{{Pattern: "b.example.org", Site: "s1", Category: "wiki"}, {Pattern: "*.example.net", Site: "s2", Category: "other"}}
	b := []Entry{{Pattern: "*.example.net", Site: "s2", Category: "other"}, {Pattern: "b.example.org", Site: "s1", Category: "wiki"}}
	la, ba := NewList("common", 3, at, a)
	lb, bb := NewList("common", 3, at, b)
	if string(ba) != string(bb) || la.SHA256 != lb.SHA256 {
		t.Fatalf("order changed the bytes:\n%s\n%s", ba, bb)
	}
	want := `{"scope":"common","version":3,"generated_at":"2026-11-23T12:00:00Z","sha256":"` + la.SHA256 + `","entries":[{"pattern":"*.example.net","site":"s2","category":"other"},{"pattern":"b.example.org","site":"s1","category":"wiki"}]}` + "\n"
	if string(ba) != want {
		t.Errorf("body\n got %s\nwant %s", ba, want)
	}
	_, empty := NewList("dept-a", 0, at, nil)
	if !strings.Contains(string(empty), `"entries":[]`) {
		t.Errorf("empty list body %s", empty)
	}
}

func TestParseListAndSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	l, body := NewList("common", 7, time.Now(), []Entry{{Pattern: "*.example.org", Site: "s", Category: "wiki"}})
	sig := list.Sign(priv, body)
	got, err := ParseList(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != l.SHA256 || got.Version != 7 || len(got.Entries) != 1 {
		t.Errorf("ParseList = %+v", got)
	}
	if err := list.Verify(pub, body, sig); err != nil {
		t.Errorf("VerifyList: %v", err)
	}
	for name, check := range map[string]error{
		"other key":     list.Verify(otherPub, body, sig),
		"no signature":  list.Verify(pub, body, ""),
		"not base64":    list.Verify(pub, body, "!!"),
		"changed bytes": list.Verify(pub, append([]byte(" "), body...), sig),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
	tampered := strings.Replace(string(body), "*.example.org", "*.example.com", 1)
	if _, err := ParseList([]byte(tampered)); err == nil {
		t.Error("ParseList accepted entries that do not match sha256")
	}
	for _, bad := range []string{"", "{", "[]", `{"scope":"common"}`, string(body) + "{}", `{"scope":"c","version":1,"sha256":"x","entries":[],"extra":1}`} {
		if _, err := ParseList([]byte(bad)); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
	// An entry that is not in normal form is refused even with a good hash.
	entries := []Entry{{Pattern: "*.COM", Site: "s", Category: "wiki"}}
	l2 := List{Scope: "common", Version: 1, SHA256: list.EntriesSHA256(entries), Entries: entries}
	_, body2 := NewList(l2.Scope, 1, time.Now(), entries)
	if _, err := ParseList(body2); err == nil {
		t.Error("ParseList accepted a non-normal pattern")
	}
}

func TestAuditChain(t *testing.T) {
	var entries []AuditEntry
	prev := ""
	for i := 1; i <= 3; i++ {
		e := AuditEntry{Seq: int64(i), At: time.Unix(int64(i), 0), Actor: "admin", Action: "site.create", Object: "site/x", Detail: "{}", PrevHash: prev}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		entries = append(entries, e)
	}
	if seq, ok := VerifyAudit(entries, ""); !ok {
		t.Fatalf("intact chain broken at %d", seq)
	}
	entries[1].Detail = `{"x":1}`
	if seq, ok := VerifyAudit(entries, ""); ok || seq != 2 {
		t.Fatalf("VerifyAudit = %d, %v; want 2, false", seq, ok)
	}
}
