package allowlist

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist/list"
)

func TestTimestampSignsAndVerifies(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, body := NewList("common", 7, time.Now(), []Entry{{Pattern: "*.zoom.us", Site: "zoom", Category: "other"}})
	l, err := DecodeList(body)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 7, 50, 0, 0, time.UTC)
	ts := Timestamp{Scope: "common", Version: 7, SHA256: l.SHA256, Time: at}
	sig, err := SignTimestamp(key, ts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseTimestamp(pub, "common", "7", l.SHA256, "2026-12-03T07:50:00Z", sig)
	if err != nil || got != ts {
		t.Fatalf("ParseTimestamp: %+v, %v", got, err)
	}
	// Any field changed, or another key: refused.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	bad := map[string][]string{
		"scope":     {"dept-a", "7", l.SHA256, "2026-12-03T07:50:00Z", sig},
		"version":   {"common", "8", l.SHA256, "2026-12-03T07:50:00Z", sig},
		"sha256":    {"common", "7", strings.Repeat("0", 64), "2026-12-03T07:50:00Z", sig},
		"time":      {"common", "7", l.SHA256, "2026-12-03T07:50:01Z", sig},
		"time form": {"common", "7", l.SHA256, "2026-12-03T07:50:00.000Z", sig},
		"zone":      {"common", "7", l.SHA256, "2026-12-03T08:50:00+01:00", sig},
		"no sig":    {"common", "7", l.SHA256, "2026-12-03T07:50:00Z", ""},
		"upper hex": {"common", "7", strings.ToUpper(l.SHA256), "2026-12-03T07:50:00Z", sig},
		"newline":   {"common\nversion: 9", "7", l.SHA256, "2026-12-03T07:50:00Z", sig},
	}
	for name, f := range bad {
		if _, err := ParseTimestamp(pub, f[0], f[1], f[2], f[3], f[4]); err == nil {
			t.Errorf("%s changed: accepted", name)
		}
	}
	if _, err := ParseTimestamp(other, "common", "7", l.SHA256, "2026-12-03T07:50:00Z", sig); err == nil {
		t.Error("another key: accepted")
	}
	if _, err := SignTimestamp(key, Timestamp{Scope: "common", Version: 1, SHA256: "abc"}); err == nil {
		t.Error("a short sha256 was signed")
	}
}

// TestTimestampCannotPassForAList: the same key signs lists and
// timestamps, so neither signature may be usable as the other. A list
// signature never verifies a timestamp, and a timestamp's signed bytes are
// never a list.
func TestTimestampCannotPassForAList(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	l, body := NewList("common", 3, time.Now(), nil)
	listSig := list.Sign(key, body)
	at := l.GeneratedAt.UTC().Truncate(time.Second)
	if _, err := ParseTimestamp(pub, "common", "3", l.SHA256, at.Format(TimestampFormat), listSig); err == nil {
		t.Fatal("a list signature passed as a timestamp's")
	}
	ts := Timestamp{Scope: "common", Version: 3, SHA256: l.SHA256, Time: at}
	tsSig, _ := SignTimestamp(key, ts)
	if err := list.Verify(pub, body, tsSig); err == nil {
		t.Fatal("a timestamp signature verified a list")
	}
	msg := ts.Message()
	if _, err := DecodeList(msg); err == nil {
		t.Fatal("a timestamp's signed bytes decode as a list")
	}
	if !strings.HasPrefix(string(msg), "allowlist timestamp v1\nscope: common\nversion: "+strconv.Itoa(3)+"\n") {
		t.Fatalf("message %q", msg)
	}
}

// BenchmarkSignTimestamp is the registry's cost per scope per
// timestamp_interval; BenchmarkParseTimestamp a resolver's per answer.
func BenchmarkSignTimestamp(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ts := Timestamp{Scope: "common", Version: 42, SHA256: strings.Repeat("ab", 32), Time: time.Now()}
	for b.Loop() {
		SignTimestamp(key, ts)
	}
}

func BenchmarkParseTimestamp(b *testing.B) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	at := time.Now().UTC().Truncate(time.Second)
	sha := strings.Repeat("ab", 32)
	sig, _ := SignTimestamp(key, Timestamp{Scope: "common", Version: 42, SHA256: sha, Time: at})
	for b.Loop() {
		if _, err := ParseTimestamp(pub, "common", "42", sha, at.Format(TimestampFormat), sig); err != nil {
			b.Fatal(err)
		}
	}
}
