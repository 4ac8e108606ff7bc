package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimiter slows down token guessing: each client address may fail
// authentication a burst of times, then once every few seconds; past that
// it gets 429 before its token is even looked at. Valid clients elsewhere
// are unaffected.
type failureLimiter struct {
	mu      sync.Mutex
	clients map[string]*rate.Limiter
	swept   time.Time
}

const (
	failureBurst = 20
	failureEvery = 3 * time.Second
)

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{clients: map[string]*rate.Limiter{}, swept: time.Now()}
}

// blocked reports whether ip has used up its failures, and for how long.
func (f *failureLimiter) blocked(ip string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[ip]
	if !ok || l.Tokens() >= 1 {
		return 0, false
	}
	return failureEvery, true
}

// fail records one failed authentication from ip.
func (f *failureLimiter) fail(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.swept) > 10*time.Minute {
		// Forget addresses whose allowance has refilled.
		for k, l := range f.clients {
			if l.TokensAt(now) >= failureBurst {
				delete(f.clients, k)
			}
		}
		f.swept = now
	}
	l, ok := f.clients[ip]
	if !ok {
		l = rate.NewLimiter(rate.Every(failureEvery), failureBurst)
		f.clients[ip] = l
	}
	l.AllowN(now, 1)
}

// watchLimiter bounds the watches one client address may hold open at
// once: a watch holds a connection for minutes for one small request, so
// without a bound one client could hold every file descriptor.
type watchLimiter struct {
	mu    sync.Mutex
	max   int
	count map[string]int
}

func newWatchLimiter(max int) *watchLimiter {
	return &watchLimiter{max: max, count: map[string]int{}}
}

// take reserves a watch for ip; release gives it back.
func (w *watchLimiter) take(ip string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[ip] >= w.max {
		return false
	}
	w.count[ip]++
	return true
}

func (w *watchLimiter) release(ip string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[ip]--; w.count[ip] <= 0 {
		delete(w.count, ip)
	}
}
