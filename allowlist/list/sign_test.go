package list_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// TestSignWithNonceIsEd25519: given the message itself as the nonce
// input, as RFC 8032 does, signWithNonce must be crypto/ed25519.Sign, byte
// for byte, for any key and message. Only the nonce differs in Sign.
func TestSignWithNonceIsEd25519(t *testing.T) {
	for i := 0; i < 100; i++ {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		msg := make([]byte, i*53)
		rand.Read(msg)
		if got, want := list.SignWithNonce(key, [][]byte{msg[:len(msg)/3], msg[len(msg)/3:]}, msg), ed25519.Sign(key, msg); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: signWithNonce\n%x\ncrypto/ed25519\n%x", len(msg), got, want)
		}
	}
}

// TestSignListHedged: a list body gets a fresh nonce each time, so two
// signatures of one body differ; each one verifies with crypto/ed25519,
// Verify and Verifier, and none verifies another body (one byte
// changed, or another version's). A body without a list's layout is
// signed as RFC 8032 says.
func TestSignListHedged(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	entries := []list.Entry{{"*.example.org", "ex", "wiki"}, {"meet.example.net", "meet", "video-conferencing"}}
	_, body := allowlist.NewList("common", 7, time.Now(), entries)
	_, next := allowlist.NewList("common", 8, time.Now(), entries)
	a, b := list.Sign(key, body), list.Sign(key, body)
	if a == b {
		t.Fatalf("two signatures of a list body are equal (%s): the nonce is not fresh", a)
	}
	for _, sig := range []string{a, b} {
		raw, _ := base64.StdEncoding.DecodeString(sig)
		if !ed25519.Verify(pub, body, raw) {
			t.Fatal("crypto/ed25519 refuses the signature")
		}
		if err := list.Verify(pub, body, sig); err != nil {
			t.Fatal(err)
		}
		v, err := list.NewVerifier(pub, sig)
		if err != nil {
			t.Fatal(err)
		}
		v.Write(body)
		if err := v.Verify(); err != nil {
			t.Fatal(err)
		}
		for i := range body {
			if list.Verify(pub, flip(body, i), sig) == nil {
				t.Fatalf("the signature holds with byte %d changed", i)
			}
		}
		if list.Verify(pub, next, sig) == nil {
			t.Fatal("the signature holds for the next version")
		}
	}
	other := []byte("not a list body")
	if got, want := list.Sign(key, other), base64.StdEncoding.EncodeToString(ed25519.Sign(key, other)); got != want {
		t.Fatalf("a body that is not a list: %s, want RFC 8032's %s", got, want)
	}
}

// BenchmarkSignList compares Sign with crypto/ed25519.Sign on a list
// body of about n entries.
func BenchmarkSignList(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, n := range []int{1_000, 100_000} {
		entries := make([]list.Entry, n)
		for i := range entries {
			entries[i] = list.Entry{Pattern: fmt.Sprintf("*.svc%d.example.net", i), Site: fmt.Sprintf("site-%d", i/10), Category: "other"}
		}
		_, body := allowlist.NewList("common", 1, time.Now(), entries)
		b.Run(fmt.Sprintf("SignList/entries=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				list.Sign(key, body)
			}
		})
		b.Run(fmt.Sprintf("ed25519.Sign/entries=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				ed25519.Sign(key, body)
			}
		})
	}
}

// TestSignLists: each signature is its own body's, in order, whatever the
// number of bodies and of workers.
func TestSignLists(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, n := range []int{0, 1, 2, 7} {
		var bodies [][]byte
		for i := 0; i < n; i++ {
			_, body := allowlist.NewList(fmt.Sprintf("dept-%d", i), int64(i), time.Now(), []list.Entry{{"a.example.org", "a", "wiki"}})
			bodies = append(bodies, body)
		}
		var heads, contents [][]byte
		for _, b := range bodies {
			head, content, _ := list.Split(b)
			heads, contents = append(heads, head), append(contents, content)
		}
		sigs := list.SignAll(key, heads, contents)
		if len(sigs) != n {
			t.Fatalf("%d bodies, %d signatures", n, len(sigs))
		}
		for i, sig := range sigs {
			for j, body := range bodies {
				if ok := list.Verify(pub, body, sig) == nil; ok != (i == j) {
					t.Errorf("%d bodies: signature %d verifies body %d: %v", n, i, j, ok)
				}
			}
		}
	}
}
