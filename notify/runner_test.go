package notify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/notify"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func owner(d string) allowlist.Actor {
	return allowlist.Actor{Role: allowlist.RoleOwner, Department: d, Name: "o"}
}
func verify(secret, header string, body []byte) bool {
	ts, mac, ok := strings.Cut(strings.TrimPrefix(header, "t="), ",sha256=")
	if !ok {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(mac))
}

func TestWebhookSignedRetriedLogged(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Quorum: 2, Key: key, Now: c.Now})
	must(t, err)
	defer db.Close()
	for _, d := range []string{"dept-a", "dept-b"} {
		_, err := db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: d, Kind: "other"})
		must(t, err)
	}
	var mu sync.Mutex
	var got []string
	fail := 1
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !verify(secret, r.Header.Get("X-Allowlist-Signature"), body) {
			t.Errorf("bad signature %q on %s", r.Header.Get("X-Allowlist-Signature"), body)
		}
		if fail > 0 {
			fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		got = append(got, r.Header.Get("X-Allowlist-Event")+" "+string(body))
	}))
	defer recv.Close()
	_, secret, err = db.SetWebhook(ctx, owner("dept-a"), "dept-a", recv.URL+"/hook")
	must(t, err)
	r := notify.New(db, notify.Config{AllowPrivateWebhooks: true, Backoff: time.Minute, MaxAttempts: 3, BaseURL: "https://registry.example.org"})
	must(t, r.Tick(ctx)) // starts the event cursor
	_, err = db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "Miro", URL: "https://miro.com", Reason: "workshops", Department: "dept-a", Email: "staff@example.org"})
	must(t, err)
	must(t, r.Tick(ctx)) // queued, tried, refused with 503
	ds, _ := db.FindDeliveries(ctx, "dept-a", 10)
	if len(ds) != 1 || ds[0].Status != "pending" || ds[0].Attempts != 1 || !strings.Contains(ds[0].LastError, "503") {
		t.Fatalf("after a refusal: %+v", ds)
	}
	must(t, r.Tick(ctx)) // not yet due again
	c.Add(61 * time.Second)
	must(t, r.Tick(ctx))
	ds, _ = db.FindDeliveries(ctx, "dept-a", 10)
	if len(ds) != 1 || ds[0].Status != "delivered" || ds[0].Attempts != 2 {
		t.Fatalf("after the retry: %+v", ds)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], allowlist.EventRequest+" ") {
		t.Fatalf("received %q", got)
	}
	var payload map[string]any
	must(t, json.Unmarshal([]byte(strings.SplitN(got[0], " ", 2)[1]), &payload))
	if payload["department"] != "dept-a" || strings.Contains(got[0], "staff@example.org") {
		t.Errorf("payload %v", payload)
	}
	if ds, _ := db.FindDeliveries(ctx, "dept-b", 10); len(ds) != 0 {
		t.Errorf("dept-b, without a webhook, got deliveries %+v", ds)
	}
}

func TestWebhookRefusesPrivateAddresses(t *testing.T) {
	ctx := context.Background()
	db := openStore(t, "dept-a")
	var err error
	hit := false
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer recv.Close()
	_, _, err = db.SetWebhook(ctx, owner("dept-a"), "dept-a", recv.URL)
	must(t, err)
	r := notify.New(db, notify.Config{MaxAttempts: 1})
	must(t, r.Tick(ctx))
	_, err = db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "x"}})
	must(t, err)
	must(t, r.Tick(ctx))
	ds, _ := db.FindDeliveries(ctx, "dept-a", 10)
	if hit || len(ds) != 1 || ds[0].Status != "failed" || !strings.Contains(ds[0].LastError, "not public") {
		t.Fatalf("hit=%v deliveries %+v", hit, ds)
	}
}

// openStore opens a registry in a temporary file with departments.
func openStore(t *testing.T, depts ...string) *sqlite.DB {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Quorum: 2, Key: key})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	for _, d := range depts {
		_, err := db.CreateDepartment(context.Background(), allowlist.System, allowlist.Department{ID: d, Name: d, Kind: "other"})
		must(t, err)
	}
	return db
}

// TestSilentWebhookHoldsUpOnlyItself: a department whose webhook accepts
// connections but never answers costs one timeout for its own deliveries;
// another department's are delivered in the same round, and the silent
// target's other deliveries are recorded as not tried instead of waiting
// a timeout each.
func TestSilentWebhookHoldsUpOnlyItself(t *testing.T) {
	ctx := context.Background()
	db := openStore(t, "dept-a", "dept-b")
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts in the kernel, never answers
	must(t, err)
	defer silent.Close()
	var delivered atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { delivered.Add(1) }))
	defer recv.Close()
	_, _, err = db.SetWebhook(ctx, owner("dept-a"), "dept-a", "http://"+silent.Addr().String()+"/hook")
	must(t, err)
	_, _, err = db.SetWebhook(ctx, owner("dept-b"), "dept-b", recv.URL+"/hook")
	must(t, err)
	r := notify.New(db, notify.Config{AllowPrivateWebhooks: true, WebhookTimeout: 500 * time.Millisecond, Backoff: time.Minute, MaxAttempts: 3})
	must(t, r.Tick(ctx))
	for _, d := range []string{"dept-a", "dept-a", "dept-a", "dept-b"} {
		_, err := db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "Miro", Reason: "workshops", Department: d})
		must(t, err)
	}
	must(t, r.Tick(ctx))
	if delivered.Load() != 1 {
		t.Errorf("dept-b received %d deliveries, want 1", delivered.Load())
	}
	ds, _ := db.FindDeliveries(ctx, "dept-a", 10)
	tried, skipped := 0, 0
	for _, d := range ds {
		switch {
		case strings.HasPrefix(d.LastError, "not tried"):
			skipped++
		case d.LastError != "":
			tried++
		}
	}
	if len(ds) != 3 || tried != 1 || skipped != 2 {
		t.Errorf("dept-a: %d deliveries, %d tried, %d not tried; want 3, 1 and 2 (one timeout, not three)", len(ds), tried, skipped)
	}
}
