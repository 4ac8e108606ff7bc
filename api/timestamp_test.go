package api_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
)

// stampOf checks that an answer carries a timestamp for the scope's
// version and hash, signed with the list key, and returns its time.
func (e *env) stampOf(r *response, version string) time.Time {
	e.t.Helper()
	var keys struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		}
	}
	e.do("GET", "/v1/keys", "", nil).want(200).decode(&keys)
	pub, _ := base64.StdEncoding.DecodeString(keys.Keys[0].PublicKey)
	h := r.h
	if h.Get("X-Allowlist-Version") != version || len(h.Get("X-Allowlist-SHA256")) != 64 {
		e.t.Fatalf("%s: version %q, sha256 %q", r.req, h.Get("X-Allowlist-Version"), h.Get("X-Allowlist-SHA256"))
	}
	ts, err := allowlist.ParseTimestamp(pub, "common", h.Get("X-Allowlist-Version"), h.Get("X-Allowlist-SHA256"),
		h.Get("X-Allowlist-Timestamp"), h.Get("X-Allowlist-Timestamp-Signature"))
	if err != nil {
		e.t.Fatalf("%s: timestamp %q: %v", r.req, h.Get("X-Allowlist-Timestamp"), err)
	}
	if age := time.Since(ts.Time); age < -time.Second || age > 3*time.Second {
		e.t.Fatalf("%s: timestamp %v is %v old", r.req, ts.Time, age)
	}
	return ts.Time
}

// TestTimestampOnEveryAnswerAboutTheCurrentVersion: the latest list, its
// 304, the watch's 200 and its 304 at the timeout (GET and HEAD) all carry
// a signed timestamp of the current version; a numbered old version does
// not. The contract's headers stay as they were.
func TestTimestampOnEveryAnswerAboutTheCurrentVersion(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, TimestampEvery: time.Second})
	v0 := e.do("GET", "/v1/lists/common", "", nil).want(200)
	first := e.stampOf(v0, "0")
	e.stampOf(e.do("GET", "/v1/lists/common", "", nil, "If-None-Match", v0.h.Get("ETag")).want(304), "0")
	e.stampOf(e.do("HEAD", "/v1/lists/common", "", nil).want(200), "0")
	e.stampOf(e.do("GET", "/v1/lists/common?format=squid", "", nil).want(200), "0")
	w := e.do("GET", "/v1/lists/common/watch?after=0&timeout=1500ms", "", nil).want(304)
	if later := e.stampOf(w, "0"); !later.After(first) {
		t.Errorf("a watch 1.5 s later carries the timestamp %v, not a newer one than %v", later, first)
	}
	if w.h.Get("X-Allowlist-SHA256") != v0.h.Get("X-Allowlist-SHA256") || w.h.Get("X-Allowlist-Scope") != "common" {
		t.Errorf("watch 304 names %s %s", w.h.Get("X-Allowlist-Scope"), w.h.Get("X-Allowlist-SHA256"))
	}
	e.stampOf(e.do("HEAD", "/v1/lists/common/watch?after=0&timeout=100ms", "", nil).want(304), "0")

	e.do("POST", "/v1/sites", e.tok["a"], zoom()).want(201)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-a", e.tok["a"], map[string]string{"decision": "approve"}).want(200)
	e.do("PUT", "/v1/sites/zoom/signoffs/dept-b", e.tok["b"], map[string]string{"decision": "approve"}).want(200)
	e.stampOf(e.do("GET", "/v1/lists/common/watch?after=0&timeout=5s", "", nil).want(200), "1")
	e.stampOf(e.do("HEAD", "/v1/lists/common/watch?after=0&timeout=5s", "", nil).want(200), "1")
	e.stampOf(e.do("GET", "/v1/lists/common/watch?after=1&timeout=100ms", "", nil).want(304), "1")
	old := e.do("GET", "/v1/lists/common/versions/0", "", nil).want(200)
	if old.h.Get("X-Allowlist-Timestamp") != "" || old.h.Get("X-Allowlist-Timestamp-Signature") != "" {
		t.Errorf("an old version carries a timestamp: %q", old.h.Get("X-Allowlist-Timestamp"))
	}
	if old.h.Get("X-Allowlist-Signature") != v0.h.Get("X-Allowlist-Signature") {
		t.Error("version 0's list signature changed")
	}
}
