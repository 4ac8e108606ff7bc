package api_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/api"
)

// TestLoadDuringSignoffs holds a steady read load on the registry (list
// polls with If-None-Match, full fetches, checks, site reads) while owners
// sign off, for a bounded time: no request may fail, and the p99 is
// reported.
func TestLoadDuringSignoffs(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	e := newEnv(t, api.Config{PublicLists: true})
	for i := 0; i < 20; i++ {
		e.do("POST", "/v1/sites", e.tok["a"], map[string]any{"id": fmt.Sprintf("site-%d", i), "name": "S", "category": "wiki",
			"domains": []string{fmt.Sprintf("*.s%d.example.org", i)}, "owner": map[string]string{"name": "x"}}).want(201)
	}
	etag := e.do("GET", "/v1/lists/common", "", nil).want(200).h.Get("ETag")
	paths := []string{"/v1/lists/common", "/v1/lists/common?format=squid", "/v1/check?domain=x.s3.example.org", "/v1/sites/site-1", "/v1/lists"}
	const duration = 2 * time.Second
	stop := time.Now().Add(duration)
	var mu sync.Mutex
	var latencies []time.Duration
	failures := 0
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond) // about 500 requests/s per worker at most
			defer tick.Stop()
			for i := 0; time.Now().Before(stop); i++ {
				<-tick.C
				req, _ := http.NewRequest("GET", e.url+paths[(w+i)%len(paths)], nil)
				if i%2 == 0 {
					req.Header.Set("If-None-Match", etag)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				ok := err == nil && (resp.StatusCode == 200 || resp.StatusCode == 304)
				if err == nil {
					resp.Body.Close()
				}
				mu.Lock()
				latencies = append(latencies, d)
				if !ok {
					failures++
				}
				mu.Unlock()
			}
		}(w)
	}
	signoffs := 0
	for i := 0; time.Now().Before(stop); i++ {
		dept := []string{"a", "b", "c"}[i%3]
		decision := []string{"approve", "object"}[(i/3)%2]
		e.do("PUT", fmt.Sprintf("/v1/sites/site-%d/signoffs/dept-%s", i%20, dept), e.tok[dept], map[string]string{"decision": decision}).want(200)
		signoffs++
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p := func(q float64) time.Duration { return latencies[int(float64(len(latencies)-1)*q)] }
	t.Logf("%d reads in %v during %d sign-offs: %d failed, p50 %v, p99 %v", len(latencies), duration, signoffs, failures, p(0.5), p(0.99))
	if failures != 0 {
		t.Errorf("%d reads failed", failures)
	}
}
