package resolver

import (
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cache holds upstream answers by question for as long as their TTLs say
// (RFC 2308 for negative answers), up to a fixed number of entries.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	name   string
	qtype  uint16
	class  uint16
	do     bool
	routed bool // answers from filtered_upstreams are kept apart
}

type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// Cached TTLs are bounded: upstreams sometimes send days.
const (
	maxTTL    = 24 * time.Hour
	maxNegTTL = time.Hour
)

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[cacheKey]cacheEntry, min(max, 1<<16))}
}

func keyOf(q dns.Question, do, routed bool) cacheKey {
	return cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, class: q.Qclass, do: do, routed: routed}
}

func (c *cache) len() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return float64(len(c.entries))
}

// get returns a copy of a fresh answer with its TTLs reduced by the time it
// has spent in the cache.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

// put stores an answer if it may be cached: NOERROR with answers (TTL: the
// smallest in the answer), or NXDOMAIN/NODATA with a SOA (TTL: the smaller
// of the SOA's TTL and its MINIMUM, RFC 2308 §5). Truncated answers and
// failures are not cached.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	ttl := answerTTL(m)
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Evict about an eighth: expired ones first, then whatever the
		// map's random order gives.
		drop := max(1, c.max/8)
		for key, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, key)
				drop--
			}
		}
		for key := range c.entries {
			if drop <= 0 {
				break
			}
			delete(c.entries, key)
			drop--
		}
	}
	c.entries[k] = cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(ttl)}
}

// answerTTL is how long an answer may be kept: for NOERROR with answers,
// the smallest TTL in the answer; for NXDOMAIN or NODATA, the smaller of
// the SOA's TTL and its MINIMUM (RFC 2308 §5). Truncated answers,
// failures and negative answers without a SOA get 0: not cached.
func answerTTL(m *dns.Msg) time.Duration {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		min := ^uint32(0)
		for _, rr := range m.Answer {
			min = minU32(min, rr.Header().Ttl)
		}
		return min2(time.Duration(min)*time.Second, maxTTL)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min2(time.Duration(minU32(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxNegTTL)
		}
	}
	return 0
}

func minU32(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
}

func min2(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
