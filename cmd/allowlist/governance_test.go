package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/notify/notifytest"
)

// hookReceiver is a department's webhook endpoint: it checks each
// delivery's HMAC-SHA256 signature itself, with the secret the registry
// gave when the webhook was set.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	got    []string // event names of deliveries whose signature verified
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	ts, mac, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("X-Allowlist-Signature"), "t="), ",sha256=")
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	sent, _ := strconv.ParseInt(ts, 10, 64)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(mac)) || time.Since(time.Unix(sent, 0)).Abs() > 5*time.Minute {
		h.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct{ Event string }
	json.Unmarshal(body, &p)
	if p.Event != r.Header.Get("X-Allowlist-Event") {
		h.bad++
	}
	h.got = append(h.got, p.Event)
}

func (h *hookReceiver) has(event string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.got {
		if e == event {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestGovernanceEndToEnd runs the real binary with lazy consensus on and
// its clock moved by a file: a member of staff asks for a tool (the
// department's webhook hears of it, signed, and its filtering owner gets
// an e-mail through a real Exim); the owner links the request to a site
// another department proposed and sponsors; fourteen days later on the
// registry's clock, with no objection, the site joins common in a new
// version, and the request's status page says allowed.
func TestGovernanceEndToEnd(t *testing.T) {
	exim := notifytest.StartExim(t)
	hook := &hookReceiver{}
	recv := httptest.NewServer(hook)
	defer recv.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "registry.db")
	clock := filepath.Join(dir, "clock")
	os.WriteFile(clock, []byte("0s\n"), 0o644)
	conf := filepath.Join(dir, "registry.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`public_url: https://registry.example.org
governance:
  lazy_consensus: {sponsors: 1, days: 14}
  decision_sla_days: 5
notifications:
  interval: 200ms
  backoff: 1s
  allow_private_webhooks: true
  smtp:
    addr: %s
    from: registry@allowlist.test
`, exim.Addr)), 0o644)
	r := startRegistry(t, db, "--seed", "--config", conf, "--clock-offset-file", clock)
	// A second registry process on the same database runs the same timers
	// and outbox: each due time and each delivery must still happen once.
	startRegistry(t, db, "--config", conf, "--clock-offset-file", clock)
	token := func(dept string) string {
		out, _, code := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", dept, "--name", "owner-"+dept)
		if code != 0 {
			t.Fatalf("token for %s", dept)
		}
		return lastLine(out)
	}
	dsit, hmrc := token("dsit"), token("hmrc")
	call := func(method, path, tok, body string, want int) []byte {
		t.Helper()
		code, b := r.call(t, method, path, tok, body)
		if code != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
		}
		return b
	}
	var hookSet struct{ Secret string }
	json.Unmarshal(call("PUT", "/v1/departments/hmrc/webhook", hmrc, `{"url":"`+recv.URL+`/allowlist"}`, 200), &hookSet)
	hook.mu.Lock()
	hook.secret = hookSet.Secret
	hook.mu.Unlock()

	// A member of staff at HMRC asks for Excalidraw.
	var req struct {
		ID        int64
		Reference string
		Status    string
		StatusURL string `json:"status_url"`
	}
	json.Unmarshal(call("POST", "/v1/requests", "", `{"tool":"Excalidraw","url":"https://excalidraw.com","reason":"sketching with suppliers","department":"hmrc","email":"staff.member@hmrc.example.org"}`, 201), &req)
	if req.ID == 0 || !strings.HasPrefix(req.Reference, "req_") || req.Status != "received" || req.StatusURL != "https://registry.example.org/requests/"+req.Reference {
		t.Fatalf("request answer %+v", req)
	}
	eventually(t, "the signed webhook for the request", 15*time.Second, func() bool { return hook.has("request.received") })
	exim.WaitFor(t, 15*time.Second, "Envelope-to: filtering.hmrc@example.org", "Subject: A member of staff asks for Excalidraw")

	out, _, code := cli(t, "check", "excalidraw.com", "--department", "hmrc", "--registry", r.url)
	if code != 1 || !strings.Contains(out, "why not: This tool is not in the catalogue") || !strings.Contains(out, "https://registry.example.org/request") {
		t.Fatalf("check before the proposal: %d\n%s", code, out)
	}

	// DSIT proposes and sponsors it; HMRC's owner links the request.
	call("POST", "/v1/sites", dsit, `{"id":"excalidraw","name":"Excalidraw","category":"other","domains":["excalidraw.com"],"owner":{"name":"Excalidraw team"}}`, 201)
	call("PUT", "/v1/sites/excalidraw/signoffs/dsit", dsit, `{"decision":"approve"}`, 200)
	call("POST", fmt.Sprintf("/v1/requests/%d/answer", req.ID), dsit, `{"site":"excalidraw"}`, 403)
	call("POST", fmt.Sprintf("/v1/requests/%d/answer", req.ID), hmrc, `{"site":"excalidraw","answer":"DSIT proposed it; it joins the list if nobody objects."}`, 200)
	if _, page := r.call(t, "GET", "/requests/"+req.Reference, "", ""); !strings.Contains(string(page), `id="status">in review<`) {
		t.Fatalf("status page before consensus:\n%s", page)
	}
	out, _, _ = cli(t, "check", "excalidraw.com", "--department", "hmrc", "--registry", r.url)
	if !strings.Contains(out, "why not: Excalidraw is proposed, approved by dsit; it needs 1 approval more") {
		t.Fatalf("check while proposed:\n%s", out)
	}
	var before struct{ Version int64 }
	json.Unmarshal(call("GET", "/v1/lists/common", "", "", 200), &before)

	// Fourteen days and an hour later, on the registry's clock.
	os.WriteFile(clock, []byte("337h\n"), 0o644)
	moved := time.Now()
	var after struct {
		Version int64
		Entries []struct{ Pattern string }
	}
	// (The seed's other sites with one sponsor and no objection join too,
	// each in a version of its own.)
	defer func() {
		if t.Failed() {
			sdb, _ := sql.Open("sqlite3", db)
			rows, _ := sdb.Query("SELECT kind, subject, due_at, coalesce(done_at,''), result FROM jobs")
			for rows != nil && rows.Next() {
				var a, b, c, d, e string
				rows.Scan(&a, &b, &c, &d, &e)
				t.Logf("job %s %s %s %s %s", a, b, c, d, e)
			}
			t.Logf("now %s", time.Now().UTC())
		}
	}()
	eventually(t, "a common version with excalidraw.com", 20*time.Second, func() bool {
		json.Unmarshal(call("GET", "/v1/lists/common", "", "", 200), &after)
		return strings.Contains(fmt.Sprint(after.Entries), "excalidraw.com")
	})
	if after.Version <= before.Version {
		t.Fatalf("common went from %d to %d", before.Version, after.Version)
	}
	eventually(t, "the request to be allowed", 20*time.Second, func() bool {
		return strings.Contains(string(call("GET", "/v1/requests/"+req.Reference, "", "", 200)), `"status":"allowed"`)
	})
	t.Logf("from moving the clock to the request showing allowed: %s (common %d -> %d)", time.Since(moved).Round(time.Millisecond), before.Version, after.Version)
	_, page := r.call(t, "GET", "/requests/"+req.Reference, "", "")
	if !strings.Contains(string(page), `id="status">allowed<`) || strings.Contains(string(page), "staff.member@hmrc.example.org") {
		t.Fatalf("status page after consensus:\n%s", page)
	}
	out, _, code = cli(t, "check", "excalidraw.com", "--department", "hmrc", "--registry", r.url)
	if code != 0 {
		t.Fatalf("check after consensus: %d\n%s", code, out)
	}

	// The audit names the rule; HMRC heard of it; its delivery log shows
	// what was sent, to its owners only.
	audit := string(call("GET", "/v1/audit", r.admin, "", 200))
	if !strings.Contains(audit, `"action":"site.consensus"`) || !strings.Contains(audit, `\"rule\":\"lazy-consensus\"`) || !strings.Contains(audit, `"actor":"registry:governance"`) {
		t.Fatalf("audit lacks the lazy consensus entry:\n%s", audit)
	}
	eventually(t, "the consensus webhook", 15*time.Second, func() bool { return hook.has("site.lazy-consensus") })
	call("GET", "/v1/departments/hmrc/deliveries", dsit, "", 403)
	log := string(call("GET", "/v1/departments/hmrc/deliveries", hmrc, "", 200))
	for _, want := range []string{`"channel":"webhook"`, `"channel":"email"`, `"status":"delivered"`} {
		if !strings.Contains(log, want) {
			t.Errorf("delivery log lacks %s:\n%s", want, log)
		}
	}
	hook.mu.Lock()
	if hook.bad > 0 {
		t.Errorf("%d deliveries with a bad signature", hook.bad)
	}
	counts := map[string]int{}
	for _, e := range hook.got {
		counts[e]++
	}
	hook.mu.Unlock()
	if counts["request.received"] != 1 {
		t.Errorf("the request's webhook came %d times with two registry processes, want once", counts["request.received"])
	}
	if n := strings.Count(audit, `"object":"site/excalidraw","detail":"{\"no_objection_for_days\"`); n != 1 {
		t.Errorf("%d lazy consensus entries for excalidraw with two registry processes, want 1", n)
	}
	if box := exim.WaitFor(t, 5*time.Second, "Subject: A member of staff asks for Excalidraw"); strings.Count(box, "Subject: A member of staff asks for Excalidraw") != 1 {
		t.Errorf("the request's e-mail arrived %d times", strings.Count(box, "Subject: A member of staff asks for Excalidraw"))
	}
	_, metrics := r.call(t, "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), `allowlist_decisions_waiting{department="hmrc"}`) || !strings.Contains(string(metrics), `allowlist_decisions_overdue{department="hmrc"}`) {
		t.Errorf("metrics lack the queue gauges")
	}
}
