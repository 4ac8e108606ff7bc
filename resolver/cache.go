package resolver

import (
	"encoding/binary"
	"sync"
	"time"
)

// cache is the one answer cache of both paths: whole answers kept packed,
// keyed by question, for as long as wireTTL allows, and bounded both in
// entries and in bytes. The fast path keeps the answers it sent (a hit
// costs a copy, a new ID and the TTLs lowered by the time spent here);
// the ordinary path keeps the upstream's answer after scrubbing
// (packedUpstream), and unpacks it on a hit.
type cache struct {
	mu         sync.RWMutex
	maxEntries int
	maxBytes   int64
	bytes      int64
	entries    map[packedKey]*packedEntry
}

type packedKey struct {
	name  string // lower case, no final dot
	qtype uint16
	flags uint8 // packedEDNS, packedDO, packedRouted, packedUpstream
}

const (
	packedEDNS = 1 << iota
	packedDO
	packedRouted
	packedUpstream // the ordinary path's upstream answer, not a client's
)

type packedEntry struct {
	wire    []byte   // the answer, ID and TTLs to patch
	ttls    []uint16 // offsets of every TTL field (not the OPT's)
	qend    int      // end of the question section
	stored  time.Time
	expires time.Time
}

// Cached TTLs are bounded: upstreams sometimes send days.
const (
	maxTTL    = 24 * time.Hour
	maxNegTTL = time.Hour
)

// entryOverhead is what an entry costs besides its bytes: the map slot,
// the key and entry structs and the slice headers (an estimate, a little
// over what they take on 64-bit platforms).
const entryOverhead = 160

func (k packedKey) cost(e *packedEntry) int64 {
	return int64(len(k.name)+cap(e.wire)+2*cap(e.ttls)) + entryOverhead
}

func newCache(maxEntries int, maxBytes int64) *cache {
	return &cache{maxEntries: maxEntries, maxBytes: maxBytes, entries: map[packedKey]*packedEntry{}}
}

func (c *cache) len() float64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return float64(len(c.entries))
}

func (c *cache) size() float64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return float64(c.bytes)
}

func (c *cache) get(k packedKey) *packedEntry {
	c.mu.RLock()
	e := c.entries[k]
	c.mu.RUnlock()
	return e
}

// put stores an entry. Past either bound, about an eighth of the cache
// goes: expired answers first, then whatever the map's random order
// gives.
func (c *cache) put(k packedKey, e *packedEntry) {
	cost := k.cost(e)
	if cost > c.maxBytes/8 {
		return // one answer may not push out an eighth of the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[k]; old != nil {
		c.bytes -= k.cost(old)
	}
	if len(c.entries) >= c.maxEntries || c.bytes+cost > c.maxBytes {
		now := time.Now()
		wantN, wantB := c.maxEntries-max(1, c.maxEntries/8), c.maxBytes-c.maxBytes/8
		for key, old := range c.entries {
			if !now.Before(old.expires) {
				c.bytes -= key.cost(old)
				delete(c.entries, key)
			}
		}
		for key, old := range c.entries {
			if len(c.entries) <= wantN && c.bytes+cost <= wantB {
				break
			}
			c.bytes -= key.cost(old)
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
	c.bytes += cost
}

// store makes an entry of an answer packed for the cache, if wireTTL
// lets it be kept.
func (c *cache) store(k packedKey, wire []byte, now time.Time) {
	ttls, qend, ok := ttlOffsets(wire)
	if !ok {
		return
	}
	ttl := wireTTL(wire, qend)
	if ttl <= 0 {
		return
	}
	c.put(k, &packedEntry{wire: wire, ttls: ttls, qend: qend, stored: now, expires: now.Add(ttl)})
}

// appendAged appends the entry's answer to out with every TTL lowered by
// the time it has spent in the cache.
func (e *packedEntry) appendAged(out []byte, now time.Time) []byte {
	at := len(out)
	out = append(out, e.wire...)
	age := uint32(now.Sub(e.stored) / time.Second)
	if age == 0 {
		return out
	}
	for _, off := range e.ttls {
		p := out[at+int(off):]
		ttl := binary.BigEndian.Uint32(p)
		if ttl > age {
			ttl -= age
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(p, ttl)
	}
	return out
}
