package list_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// readAll runs allowlist.ReadList and returns the patterns it reported, copied.
func readAll(r io.Reader) (list.Header, list.Stats, []allowlist.Pattern, error) {
	var got []allowlist.Pattern
	h, st, err := allowlist.ReadList(r, func(name string, wildcard bool) error {
		got = append(got, allowlist.Pattern{Name: strings.Clone(name), Wildcard: wildcard})
		return nil
	})
	return h, st, got, err
}

func sampleEntries(n int) []list.Entry {
	out := []list.Entry{{"xn--bcher-kva.example", "idn", "wiki"}, {"*.gov.uk.example.net", "w", "other"}}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("*.tool%d.example.net", i)
		if i%3 == 0 {
			p = fmt.Sprintf("app%d.example.org", i)
		}
		out = append(out, list.Entry{Pattern: p, Site: fmt.Sprintf("site-%d", i), Category: "other"})
	}
	return out
}

func TestReadListAgreesWithParseList(t *testing.T) {
	at := time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC)
	for _, n := range []int{0, 1, 50, 20_000} {
		entries := sampleEntries(n)
		if n == 0 {
			entries = nil
		}
		_, body := allowlist.NewList("dept-a", int64(n), at, entries)
		want, err := allowlist.ParseList(body)
		if err != nil {
			t.Fatal(err)
		}
		// One byte at a time exercises every buffer boundary.
		var r io.Reader = bytes.NewReader(body)
		if n <= 50 {
			r = iotest.OneByteReader(r)
		}
		h, st, got, err := readAll(r)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if h != (list.Header{want.Scope, want.Version, want.GeneratedAt, want.SHA256}) {
			t.Errorf("n=%d: header %+v, allowlist.ParseList %+v", n, h, want)
		}
		if fmt.Sprint(got) != fmt.Sprint(want.Patterns()) || st.Entries != len(want.Entries) {
			t.Errorf("n=%d: patterns differ from ParseList's", n)
		}
		// The registry's own decoder gives the same list.
		if dl, err := allowlist.DecodeList(body); err != nil || !reflect.DeepEqual(dl, want) {
			t.Errorf("n=%d: allowlist.DecodeList = %v (%v), allowlist.ParseList %v", n, len(dl.Entries), err, len(want.Entries))
		}
		names := 0
		for _, p := range want.Patterns() {
			names += len(p.Name)
		}
		if st.NameBytes != names {
			t.Errorf("n=%d: NameBytes %d, want %d", n, st.NameBytes, names)
		}
		// Compiled from the stream or from the slice: the same answers.
		b := allowlist.NewBuilder(st.Entries, st.NameBytes, st.Keys)
		for _, p := range got {
			b.Add(p.Name, p.Wildcard)
		}
		a, c := b.Matcher(), allowlist.Compile(want.Patterns())
		for _, q := range []string{"x.tool1.example.net", "app0.example.org", "app1.example.org", "xn--bcher-kva.example", "other.example"} {
			if a.Match(q) != c.Match(q) {
				t.Errorf("n=%d: Match(%q) %d from the stream, %d from Compile", n, q, a.Match(q), c.Match(q))
			}
		}
	}
}

func TestReadListRefuses(t *testing.T) {
	at := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	l, body := allowlist.NewList("common", 4, at, []list.Entry{{"*.example.org", "s", "wiki"}, {"meet.example.net", "m", "other"}})
	good := string(body)
	swap := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("sample has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	// A list whose hash matches, but whose entries are out of order.
	unordered := `[{"pattern":"meet.example.net","site":"m","category":"other"},{"pattern":"*.example.org","site":"s","category":"wiki"}]`
	unorderedBody := fmt.Sprintf(`{"scope":"common","version":4,"generated_at":"2026-11-24T00:00:00Z","sha256":"%s","entries":%s}`, sha256Hex(unordered), unordered)
	dup := `[{"pattern":"a.example.org","site":"a","category":"wiki"},{"pattern":"a.example.org","site":"b","category":"wiki"}]`
	dupBody := fmt.Sprintf(`{"scope":"common","version":4,"generated_at":"2026-11-24T00:00:00Z","sha256":"%s","entries":%s}`, sha256Hex(dup), dup)
	broad := `[{"pattern":"*.co.uk","site":"a","category":"wiki"}]`
	broadBody := fmt.Sprintf(`{"scope":"common","version":4,"generated_at":"2026-11-24T00:00:00Z","sha256":"%s","entries":%s}`, sha256Hex(broad), broad)
	upper := `[{"pattern":"Meet.example.org","site":"a","category":"wiki"}]`
	upperBody := fmt.Sprintf(`{"scope":"common","version":4,"generated_at":"2026-11-24T00:00:00Z","sha256":"%s","entries":%s}`, sha256Hex(upper), upper)
	for name, b := range map[string]string{
		"empty":              "",
		"hash of other data": swap(l.SHA256, strings.Repeat("0", 64)),
		"changed entry":      swap("meet.example.net", "meat.example.net"),
		"space":              swap(`"version":4`, `"version": 4`),
		"field order":        swap(`{"scope":"common","version":4`, `{"version":4,"scope":"common"`),
		"leading zero":       swap(`"version":4`, `"version":04`),
		"negative version":   swap(`"version":4`, `"version":-4`),
		"escape":             swap(`"site":"s"`, `"site":"\u0073"`),
		"null entries":       fmt.Sprintf(`{"scope":"common","version":4,"generated_at":"2026-11-24T00:00:00Z","sha256":"%s","entries":null}`, l.SHA256),
		"no scope":           swap(`"scope":"common"`, `"scope":""`),
		"bad time":           swap(`2026-11-24T00:00:00Z`, `yesterday`),
		"trailing data":      good + "{}",
		"two newlines":       good + "\n",
		"unordered":          unorderedBody,
		"duplicate pattern":  dupBody,
		"public suffix":      broadBody,
		"upper case":         upperBody,
	} {
		if _, _, _, err := readAll(strings.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
		// allowlist.DecodeList checks form, order and hash, not the patterns.
		if _, err := allowlist.DecodeList([]byte(b)); err == nil && name != "public suffix" && name != "upper case" {
			t.Errorf("%s: allowlist.DecodeList accepted", name)
		}
	}
	// Every strict prefix of a good body is refused.
	for i := 0; i < len(body)-1; i++ {
		if _, _, _, err := readAll(bytes.NewReader(body[:i])); err == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
	}
	// Without the final newline it is still the same list.
	if _, _, _, err := readAll(bytes.NewReader(body[:len(body)-1])); err != nil {
		t.Errorf("body without its newline: %v", err)
	}
	// A read error is reported as such, not as a bad list.
	boom := errors.New("connection reset")
	_, _, _, err := readAll(io.MultiReader(bytes.NewReader(body[:40]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	// An error from the callback stops the read.
	stop := errors.New("stop")
	if _, _, err := allowlist.ReadList(bytes.NewReader(body), func(string, bool) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestVerifierAgreesWithEd25519 feeds valid and broken signatures, in
// pieces, to both the streaming verifier and crypto/ed25519.
func TestVerifierAgreesWithEd25519(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for i := 0; i < 200; i++ {
		msg := make([]byte, i*37)
		rand.Read(msg)
		sig := ed25519.Sign(key, msg)
		cases := map[string]struct {
			pub ed25519.PublicKey
			msg []byte
			sig []byte
		}{
			"good":      {pub, msg, sig},
			"other key": {otherPub, msg, sig},
			"flipped R": {pub, msg, flip(sig, i%32)},
			"flipped S": {pub, msg, flip(sig, 32+i%32)},
			"longer":    {pub, append(append([]byte(nil), msg...), 0), sig},
			"S + L":     {pub, msg, addL(sig)},
		}
		if len(msg) > 0 {
			cases["flipped message"] = struct {
				pub ed25519.PublicKey
				msg []byte
				sig []byte
			}{pub, flip(msg, i%len(msg)), sig}
		}
		for name, c := range cases {
			want := ed25519.Verify(c.pub, c.msg, c.sig)
			v, err := list.NewVerifier(c.pub, base64.StdEncoding.EncodeToString(c.sig))
			if err != nil {
				t.Fatal(err)
			}
			// Write in uneven pieces.
			for rest := c.msg; len(rest) > 0; {
				n := min(len(rest), 1+len(rest)/3)
				v.Write(rest[:n])
				rest = rest[n:]
			}
			if got := v.Verify() == nil; got != want {
				t.Fatalf("%s, %d bytes: streaming says %v, crypto/ed25519 %v", name, len(c.msg), got, want)
			}
		}
	}
	for _, s := range []string{"", "!!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := list.NewVerifier(pub, s); err == nil {
			t.Errorf("signature %q accepted", s)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

// addL returns the signature with L added to S: the same point, but a
// non-canonical scalar, which RFC 8032 verifiers must refuse.
func addL(sig []byte) []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) *big.Int {
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	s := new(big.Int).Add(le(sig[32:]), l)
	be := s.FillBytes(make([]byte, 32))
	out := append([]byte(nil), sig[:32]...)
	for i := range be {
		out = append(out, be[31-i])
	}
	return out
}

func FuzzVerifier(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := key.Public().(ed25519.PublicKey)
	f.Add([]byte("hello"), ed25519.Sign(key, []byte("hello")), uint8(0))
	f.Add([]byte(""), ed25519.Sign(key, nil), uint8(3))
	f.Fuzz(func(t *testing.T, msg, sig []byte, split uint8) {
		if len(sig) != ed25519.SignatureSize {
			return
		}
		want := ed25519.Verify(pub, msg, sig)
		v, err := list.NewVerifier(pub, base64.StdEncoding.EncodeToString(sig))
		if err != nil {
			t.Fatal(err)
		}
		n := min(int(split), len(msg))
		v.Write(msg[:n])
		v.Write(msg[n:])
		if got := v.Verify() == nil; got != want {
			t.Fatalf("streaming says %v, crypto/ed25519 %v", got, want)
		}
	})
}

// FuzzParseList feeds arbitrary bytes to the list decoder: it must never
// panic, and whatever it accepts must have a matching hash and entries in
// normal form that compile.
func FuzzParseList(f *testing.F) {
	_, body := allowlist.NewList("common", 3, time.Unix(0, 0), []list.Entry{{"*.example.org", "s", "wiki"}, {"meet.example.net", "m", "other"}})
	f.Add(body)
	f.Add([]byte(`{"scope":"common","version":0,"generated_at":"2026-01-01T00:00:00Z","sha256":"","entries":[]}`))
	f.Add([]byte(`{"entries":[{"pattern":"*.COM"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := allowlist.ParseList(b)
		// The streaming reader accepts only what ParseList accepts, and
		// reads the same list from it.
		h, _, streamed, serr := readAll(bytes.NewReader(b))
		if serr == nil {
			if err != nil {
				t.Fatalf("ReadList accepted what ParseList refuses (%v)", err)
			}
			if h != (list.Header{Scope: l.Scope, Version: l.Version, GeneratedAt: l.GeneratedAt, SHA256: l.SHA256}) || fmt.Sprint(streamed) != fmt.Sprint(l.Patterns()) {
				t.Fatalf("ReadList and ParseList disagree: %+v / %+v", h, l)
			}
		}
		if err != nil {
			return
		}
		// ...and every list in the registry's own form.
		if _, canonical := allowlist.NewList(l.Scope, l.Version, l.GeneratedAt, l.Entries); serr != nil && bytes.Equal(canonical, b) {
			t.Fatalf("ReadList refused a canonical body: %v", serr)
		}
		if list.EntriesSHA256(l.Entries) != l.SHA256 {
			t.Fatal("accepted a list whose hash does not match")
		}
		m := allowlist.Compile(l.Patterns())
		for i, e := range l.Entries {
			name, _ := list.CutWildcard(e.Pattern)
			if m.Match(name) < 0 {
				t.Fatalf("entry %d (%s) does not match its own name", i, e.Pattern)
			}
		}
	})
}
