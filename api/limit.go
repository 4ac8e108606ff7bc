package api

import (
	"net/netip"
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

// addressKey is what a per-address limit counts by: an IPv4 address, or
// an IPv6 address's /64 (one subscriber's or one site's network; counting
// each IPv6 address alone would give anyone with a /64 no limit at all).
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// blocked reports whether ip has used up its failures, and for how long.
func (f *failureLimiter) blocked(ip string) (time.Duration, bool) {
	ip = addressKey(ip)
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
	ip = addressKey(ip)
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
	ip = addressKey(ip)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[ip] >= w.max {
		return false
	}
	w.count[ip]++
	return true
}

func (w *watchLimiter) release(ip string) {
	ip = addressKey(ip)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[ip]--; w.count[ip] <= 0 {
		delete(w.count, ip)
	}
}

// tokenLimiter bounds how often one token may do something (send a usage
// report): a burst, then one every so often. Each request costs a write
// transaction and rows kept for 400 days, so one token must not be able
// to send thousands a minute.
type tokenLimiter struct {
	mu     sync.Mutex
	burst  int
	every  time.Duration
	tokens map[int64]*rate.Limiter
	swept  time.Time
}

func newTokenLimiter(burst int, every time.Duration) *tokenLimiter {
	return &tokenLimiter{burst: burst, every: every, tokens: map[int64]*rate.Limiter{}, swept: time.Now()}
}

// take spends one of token's allowance; when none is left it says how
// long until there is, and spends nothing.
func (l *tokenLimiter) take(token int64) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > 10*time.Minute {
		// Forget tokens whose allowance has refilled.
		for k, r := range l.tokens {
			if r.TokensAt(now) >= float64(l.burst) {
				delete(l.tokens, k)
			}
		}
		l.swept = now
	}
	r, ok := l.tokens[token]
	if !ok {
		r = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.tokens[token] = r
	}
	if r.AllowN(now, 1) {
		return 0, true
	}
	res := r.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	return wait, false
}
