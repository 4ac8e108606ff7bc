package api_test

import (
	"context"
	"net/http"
	"strconv"
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

// TestIPv6ClientsCountByNetwork: the staff-request allowance counts an
// IPv6 client by its /64, so walking through one's own /64 does not escape
// it (from a trusted loopback proxy's X-Forwarded-For).
func TestIPv6ClientsCountByNetwork(t *testing.T) {
	e := newEnv(t, api.Config{PublicLists: true, RequestsPerMinute: 3})
	codes := map[int]int{}
	for i := 1; i <= 6; i++ {
		r := e.do("POST", "/v1/requests", "", map[string]string{"tool": "T", "reason": "r", "department": "dept-a"},
			"X-Forwarded-For", "2a00:1450:4009:81f::"+strconv.Itoa(i))
		codes[r.code]++
	}
	if codes[201] != 3 || codes[429] != 3 {
		t.Errorf("six addresses of one /64: %v", codes)
	}
	if r := e.do("POST", "/v1/requests", "", map[string]string{"tool": "T", "reason": "r", "department": "dept-a"},
		"X-Forwarded-For", "2a00:1450:4009:820::1"); r.code != 201 {
		t.Errorf("another /64: %d", r.code)
	}
}
