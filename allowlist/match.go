package allowlist

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Matcher is an immutable compiled set of patterns answering "which pattern
// allows this name?". It is built once for each list version and then read
// by any number of goroutines without locks.
//
// A lookup hashes the name once, right to left, and probes the table at each
// label boundary, so its cost is proportional to the number of labels, and
// it allocates nothing. The table is a tree of labels kept in one
// open-addressed array: each slot holds one label (in the slot itself when
// it has at most 16 bytes, as nearly all do) and the index of its parent's
// slot, so confirming a suffix reads one slot and nothing else (before,
// the slot and then the name's bytes elsewhere). Slots of 32 bytes put
// the heap near 80 bytes per pattern (see BenchmarkMatcher).
type Matcher struct {
	slots []slot
	// arena holds the labels longer than a slot holds.
	// filter says for certain when a name is in no slot: two bits per key
	// in one 64-bit word. It is a few bits per key, small enough to stay
	// in the processor's cache where the table does not, so a name that
	// is not listed usually costs no read of the table at all. Small
	// tables, which stay in cache themselves, have none.
	filter []uint64
	arena  string
	n      int
	keys   int // slots in use
	next   int // the index the next pattern added gets
	stale  int // patterns removed by Patch whose slots and names remain
}

// slot is one open-addressing bucket for one suffix of a name: its first
// label under its parent suffix. tag holds 24 bits of the whole suffix's
// hash and, in its low byte, the label's length (never 0, so an empty slot
// has tag 0). link is the index plus one of the parent's slot (0 for a
// top-level label); its top bit says that some pattern lies below this
// suffix, so a lookup must go on to longer ones. exact and wild are the
// indexes plus one of the patterns "exactly this name" and "this name and
// below" (0: none). label is the label in lower case when it has at most
// 16 bytes; otherwise its first 4 bytes are the label's offset in the
// arena. A slot is 32 bytes, so it never straddles a cache line.
type slot struct {
	tag   uint32
	link  uint32
	exact uint32
	wild  uint32
	label [inlineLabel]byte
}

// inlineLabel is the longest label held in the slot itself.
const inlineLabel = 16

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	interior  = 1 << 31
)

// mix is the 64-bit finaliser from MurmurHash3: it spreads the FNV state so
// that both the table index (high bits) and the tag (low bits) are uniform.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// nameHash is the hash a lookup builds up label by label (Match, Add),
// taken over a whole name at once.
func nameHash[T string | []byte](name T) uint64 {
	var h uint64 = fnvOffset
	for j := len(name) - 1; j >= 0; j-- {
		h = (h ^ uint64(lower(name[j]))) * fnvPrime
	}
	return h
}

// tagOf keeps the length in the low byte, which is never 0 for a real name,
// so a zero tag marks an empty slot.
func tagOf(k uint64, n int) uint32 { return uint32(k)&^0xff | uint32(n) }

// Compile builds a Matcher for the patterns. Lookups return indexes into
// patterns. When the same pattern occurs twice, the first one wins.
// Names longer than 255 octets are skipped (ParsePattern never yields them).
func Compile(patterns []Pattern) *Matcher {
	total, expect := 0, 0
	for _, p := range patterns {
		total += len(p.Name)
		expect += list.KeyEstimate(p.Name)
	}
	b := NewBuilder(len(patterns), total, expect)
	for _, p := range patterns {
		b.Add(p.Name, p.Wildcard)
	}
	return b.Matcher()
}

// Builder compiles patterns one at a time, for a list read as a stream
// (ReadList) rather than held as a slice. The sizes are those list.Stats
// gives from a first pass; with them the table is allocated once.
type Builder struct {
	m     *Matcher
	arena []byte
	keys  int
	i     int
}

// NewBuilder sizes a Builder for patterns whose names total nameBytes and
// which are expected to add keys table keys. Larger inputs still work:
// the table grows.
func NewBuilder(patterns, nameBytes, keys int) *Builder {
	// A load factor of at most 0.7 keeps linear probe chains short. The
	// estimate leaves out the parents that names share (com, gov.uk,
	// ...): a little room for them saves rehashing a million keys.
	keys += keys/32 + 64
	_ = nameBytes // labels live in the slots; only long ones in the arena
	return &Builder{m: &Matcher{slots: make([]slot, keys*10/7+1), filter: newFilter(keys)}}
}

// filterFrom is the table size (in slots) from which a Matcher keeps a
// filter: 16 MiB of slots, about 700,000 patterns. Below it, table and
// names mostly stay in the processor's caches (32 MiB of L3 here), where
// the filter's extra read costs more than it saves (BenchmarkMatcher at
// 100k patterns).
var filterFrom = 1 << 20

// newFilter makes a filter for about keys keys (none for few): near 16
// bits per key, a power of two words, so about 1% of names absent from
// the table pass it.
func newFilter(keys int) []uint64 {
	if keys*10/7 < filterFrom {
		return nil
	}
	words := 1
	for words*64 < keys*16 {
		words *= 2
	}
	return make([]uint64, words)
}

// filterBits is the word and the two bits in it that stand for the mixed
// hash k. They come from bits of k that neither the slot index (the high
// bits) nor the tag (bits 8 to 31) use.
func filterBits(k uint64, words int) (int, uint64) {
	return int(k>>32) & (words - 1), 1<<(k&63) | 1<<((k>>52)&63)
}

// mayHold is false when no key has the mixed hash k.
func (m *Matcher) mayHold(k uint64) bool {
	if m.filter == nil {
		return true
	}
	w, bits := filterBits(k, len(m.filter))
	return m.filter[w]&bits == bits
}

func (m *Matcher) remember(k uint64) {
	if m.filter != nil {
		w, bits := filterBits(k, len(m.filter))
		m.filter[w] |= bits
	}
}

// Add adds the next pattern: its name without "*." and whether it is a
// wildcard. Its index for Match is the number of Add calls before it. The
// name is copied.
func (b *Builder) Add(name string, wildcard bool) {
	i := b.i
	b.i++
	if len(name) == 0 || len(name) > 255 || i >= interior-1 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return
	}
	m := b.m
	// Room for every label first: growing moves slots, and with them the
	// parent indexes this walk holds.
	for (b.keys+strings.Count(name, ".")+1)*10 > len(m.slots)*7 {
		m.grow(b.arena)
	}
	var h uint64 = fnvOffset
	parent := uint32(0)
	end := len(name)
	for j := len(name) - 1; j >= 0; j-- {
		h = (h ^ uint64(lower(name[j]))) * fnvPrime
		if j > 0 && name[j-1] != '.' {
			continue
		}
		s, idx, fresh := m.insert(&b.arena, name[j:end], h, parent)
		if fresh {
			b.keys++
		}
		if j > 0 {
			s.link |= interior
			parent, end = idx+1, j-1
			continue
		}
		ref := &s.exact
		if wildcard {
			ref = &s.wild
		}
		if *ref == 0 { // a duplicate keeps the first
			*ref = uint32(i + 1)
			m.n++
		}
	}
}

// Matcher returns the compiled Matcher. The Builder must not be used after.
func (b *Builder) Matcher() *Matcher {
	m := b.m
	m.keys, m.next = b.keys, b.i
	if len(b.arena) > 0 {
		// The arena is never written again: share its bytes instead of
		// copying them into a string.
		m.arena = unsafe.String(&b.arena[0], len(b.arena))
	}
	b.m, b.arena = nil, nil
	return m
}

// Patch returns a new Matcher: m without the patterns in remove, plus
// those in add, which get the indexes from m's next one on (the number of
// patterns m was built from, then counting up). m itself is unchanged and
// stays usable. It costs a copy of m's memory and the work for the changed
// patterns alone, where Compile costs work for every pattern: a resolver
// takes a small change to a large list this way. A removed pattern leaves
// its name and slot behind (as a node that allows nothing) until the next
// Compile; Stale counts them.
func (m *Matcher) Patch(remove, add []Pattern) *Matcher {
	extra := 0
	for _, p := range add {
		extra += len(p.Name)
	}
	arena := make([]byte, len(m.arena), len(m.arena)+extra)
	copy(arena, m.arena)
	c := &Matcher{slots: make([]slot, len(m.slots)), n: m.n, stale: m.stale}
	copy(c.slots, m.slots)
	if m.filter != nil {
		c.filter = append([]uint64(nil), m.filter...)
	}
	c.arena = unsafe.String(unsafe.SliceData(arena), len(arena)) // for lookup
	for _, p := range remove {
		name := p.Name
		if len(name) == 0 || len(name) > 255 {
			continue
		}
		s := c.slotOf(name)
		if s == nil {
			continue
		}
		ref := &s.exact
		if p.Wildcard {
			ref = &s.wild
		}
		if *ref != 0 {
			*ref = 0
			c.n--
			c.stale++
		}
	}
	b := &Builder{m: c, arena: arena, keys: m.keys, i: m.next}
	for _, p := range add {
		b.Add(p.Name, p.Wildcard)
	}
	return b.Matcher()
}

// Stale returns the number of patterns removed by Patch since the matcher
// was compiled; their names and slots still take memory.
func (m *Matcher) Stale() int { return m.stale }

// grow rehashes the table into one half as large again. Slots move, so
// every parent index is mapped to the parent's new slot.
func (m *Matcher) grow(arena []byte) {
	old := m.slots
	m.slots = make([]slot, len(old)*3/2+8)
	m.filter = newFilter(len(m.slots) * 7 / 10)
	hashes := make([]uint64, len(old))
	var hashOf func(i uint32) uint64
	hashOf = func(i uint32) uint64 {
		if hashes[i] != 0 {
			return hashes[i]
		}
		s := &old[i]
		var h uint64 = fnvOffset
		if p := s.link &^ interior; p != 0 {
			h = (hashOf(p-1) ^ '.') * fnvPrime
		}
		label := labelOf(s, arena)
		for j := len(label) - 1; j >= 0; j-- {
			h = (h ^ uint64(label[j])) * fnvPrime
		}
		hashes[i] = h
		return h
	}
	moved := make([]uint32, len(old))
	for i := range old {
		if old[i].tag == 0 {
			continue
		}
		k := mix(hashOf(uint32(i)))
		m.remember(k)
		idx, _ := bits.Mul64(k, uint64(len(m.slots)))
		for m.slots[idx].tag != 0 {
			if idx++; idx == uint64(len(m.slots)) {
				idx = 0
			}
		}
		m.slots[idx] = old[i]
		moved[i] = uint32(idx)
	}
	for i := range m.slots {
		s := &m.slots[i]
		if p := s.link &^ interior; s.tag != 0 && p != 0 {
			s.link = s.link&interior | (moved[p-1] + 1)
		}
	}
}

// labelOf returns the label a slot holds (not a copy: the slot's bytes or
// the arena's).
func labelOf(s *slot, arena []byte) string {
	n := s.tag & 0xff
	if n <= inlineLabel {
		return unsafe.String(&s.label[0], n)
	}
	off := binary.LittleEndian.Uint32(s.label[:])
	return unsafe.String(&arena[off], n)
}

// insert finds or adds the slot for the label under parent, h being the
// hash of the whole suffix; it returns the slot, its index and whether it
// is new. A long label is copied into the arena.
func (m *Matcher) insert(arena *[]byte, label string, h uint64, parent uint32) (*slot, uint32, bool) {
	k := mix(h)
	tag := tagOf(k, len(label))
	size := uint64(len(m.slots))
	idx, _ := bits.Mul64(k, size)
	for {
		s := &m.slots[idx]
		if s.tag == 0 {
			*s = slot{tag: tag, link: parent}
			if len(label) <= inlineLabel {
				copy(s.label[:], label)
			} else {
				binary.LittleEndian.PutUint32(s.label[:], uint32(len(*arena)))
				*arena = append(*arena, label...)
			}
			m.remember(k)
			return s, uint32(idx), true
		}
		if s.tag == tag && s.link&^interior == parent && labelOf(s, *arena) == label {
			return s, uint32(idx), false
		}
		if idx++; idx == size {
			idx = 0
		}
	}
}

// Len returns the number of distinct patterns in the matcher.
func (m *Matcher) Len() int { return m.n }

// Match returns the index of the most specific pattern that allows name, or
// -1. A name may carry one trailing dot and any mix of case. An exact
// pattern beats a wildcard on the same name, and a longer wildcard beats a
// shorter one. Match does not allocate.
//
// It walks the name's suffixes from the top-level label down and stops as
// soon as no pattern lies below the current suffix, so a name that is not
// listed usually costs one or two table reads, whatever its length.
func (m *Matcher) Match(name string) int {
	if len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	if m.n == 0 || len(name) == 0 || len(name) > 255 {
		return -1
	}
	best := -1
	var h uint64 = fnvOffset
	parent := uint32(0)
	end := len(name)
	for j := len(name) - 1; j >= 0; j-- {
		h = (h ^ uint64(lower(name[j]))) * fnvPrime
		if j > 0 && name[j-1] != '.' {
			continue
		}
		s, idx := m.lookup(name[j:end], h, parent)
		if s == nil {
			return best
		}
		if j == 0 && s.exact != 0 {
			return int(s.exact) - 1
		}
		if s.wild != 0 {
			best = int(s.wild) - 1
		}
		if s.link&interior == 0 {
			return best
		}
		parent, end = idx+1, j-1
	}
	return best
}

// slotOf returns the slot of the whole name, or nil. (Patch uses it; it
// hashes each suffix afresh, which Match avoids.)
func (m *Matcher) slotOf(name string) *slot {
	parent := uint32(0)
	for end := len(name); ; {
		dot := strings.LastIndexByte(name[:end], '.')
		s, idx := m.lookup(name[dot+1:end], nameHash(name[dot+1:]), parent)
		if s == nil || dot < 0 {
			return s
		}
		parent, end = idx+1, dot
	}
}

// lookup finds the slot of label under parent, h being the hash of the
// whole suffix.
func (m *Matcher) lookup(label string, h uint64, parent uint32) (*slot, uint32) {
	if len(label) == 0 {
		return nil, 0
	}
	k := mix(h)
	if !m.mayHold(k) {
		return nil, 0
	}
	tag := tagOf(k, len(label))
	size := uint64(len(m.slots))
	idx, _ := bits.Mul64(k, size)
	for {
		s := &m.slots[idx]
		if s.tag == 0 {
			return nil, 0
		}
		if s.tag == tag && s.link&^interior == parent {
			if len(label) <= inlineLabel {
				if equalFold(unsafe.String(&s.label[0], len(label)), label) {
					return s, uint32(idx)
				}
			} else if off := binary.LittleEndian.Uint32(s.label[:]); equalFold(m.arena[off:off+uint32(len(label))], label) {
				return s, uint32(idx)
			}
		}
		if idx++; idx == size {
			idx = 0
		}
	}
}

// equalFold compares a lower-case stored label with one of any case.
func equalFold(stored, name string) bool {
	if string(stored) == name {
		return true
	}
	if len(stored) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if stored[i] != lower(name[i]) {
			return false
		}
	}
	return true
}

// Bytes returns the memory the matcher holds: its table and its arena.
func (m *Matcher) Bytes() int {
	return len(m.slots)*int(unsafe.Sizeof(slot{})) + 8*len(m.filter) + len(m.arena)
}

// Span returns one more than the largest index Match can return: the
// number of patterns the matcher was compiled from, plus those Patch added
// since. A table of per-pattern counters indexed by Match has this length.
func (m *Matcher) Span() int { return m.next }

// Each calls fn for every pattern the matcher holds, in no particular
// order, with the index Match returns for it, its name (without "*.") and
// whether it is a wildcard. It walks the whole table: for occasional use
// (naming the patterns a counter table saw), not per query.
func (m *Matcher) Each(fn func(index int, name string, wildcard bool)) {
	arena := unsafe.Slice(unsafe.StringData(m.arena), len(m.arena))
	var buf []byte
	for i := range m.slots {
		s := &m.slots[i]
		if s.tag == 0 || s.exact == 0 && s.wild == 0 {
			continue
		}
		// The name: this slot's label, then its parents' up to the top.
		buf = buf[:0]
		for t := s; ; {
			buf = append(buf, labelOf(t, arena)...)
			p := t.link &^ interior
			if p == 0 {
				break
			}
			buf = append(buf, '.')
			t = &m.slots[p-1]
		}
		name := string(buf)
		if s.exact != 0 {
			fn(int(s.exact)-1, name, false)
		}
		if s.wild != 0 {
			fn(int(s.wild)-1, name, true)
		}
	}
}
