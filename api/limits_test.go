package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/api"
)

// TestWatchesPerAddress: one address cannot hold more than its share of
// watches open; the next gets 429 at once, and a slot comes back when a
// watch ends.
func TestWatchesPerAddress(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, WatchesPerAddress: 3})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/lists/common/watch?after=99&timeout=60s", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(metricsText(t, e), "allowlist_watchers 3") {
		if time.Now().After(deadline) {
			t.Fatal("three watches did not open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := e.do("GET", "/v1/lists/common/watch?after=99&timeout=60s", "", nil)
	if r.code != http.StatusTooManyRequests || r.h.Get("Retry-After") == "" {
		t.Errorf("fourth watch from one address: %d", r.code)
	}
	cancel()
	wg.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for e.do("GET", "/v1/lists/common/watch?after=0&timeout=0s", "", nil).code == http.StatusTooManyRequests {
		if time.Now().After(deadline) {
			t.Fatal("slots did not come back after the watches ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInventedMethodsDoNotGrowMetrics: a method nobody defined is counted
// as OTHER, not as a new label value.
func TestInventedMethodsDoNotGrowMetrics(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true})
	for _, m := range []string{"FOOBAR", "X" + strings.Repeat("A", 1000)} {
		req, _ := http.NewRequest(m, e.url+"/nope", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	m := metricsText(t, e)
	if strings.Contains(m, "FOOBAR") || strings.Contains(m, "XAAAA") || !strings.Contains(m, `method="OTHER"`) {
		t.Error("an invented method became a label value")
	}
}
