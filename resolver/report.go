package resolver

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/publicsuffix"
)

// Usage reports (report: in the config). For each period the resolver
// counts, on the path every query takes (decide):
//
//   - how often each list entry allowed a name: an atomic add into a table
//     indexed by the matcher's pattern index;
//   - each name the list does not allow, aggregated to its registrable
//     domain (example.com for a.b.example.com), with the number of queries
//     and the number of distinct clients that asked.
//
// Distinct clients are counted as 32-bit keyed hashes of their addresses
// (hash/maphash) under a seed made afresh for each period and dropped with
// it, at most maxClientHashes per domain. The addresses themselves are
// never kept, written or sent; the hashes live in memory for one period
// and cannot be compared across periods. At the end of a period the
// counters are swapped for fresh ones (the queries never wait for it) and
// turned into an allowlist.UsageReport, which report_send.go posts to the
// registry.

// ReportOptions configure usage reports. Every 0 is off (the default).
type ReportOptions struct {
	// Every is the period length and the send interval.
	Every time.Duration
	// K is the number of distinct clients a refused domain needs in a
	// period to be reported.
	K int
	// Department is the department the token belongs to, which the
	// report names. Empty: the scope, when the scope is a department's.
	Department string
}

const (
	// MinReportEvery is the shortest period report.every may set.
	MinReportEvery = time.Minute
	// maxClientHashes bounds the distinct clients counted per domain: a
	// domain asked by more is reported as asked by 60 or more (the count
	// is rounded down to a multiple of 5).
	maxClientHashes = 64
	// domainSlots is the size of a period's table of refused domains;
	// maxDomains of them may be taken (half), after which new domains go
	// uncounted until the period ends (usage_domains_untracked_total).
	domainSlots = 1 << 15
	maxDomains  = domainSlots / 2
	maxProbe    = 64
	// memoSlots is the size of the table that remembers where a name's
	// registrable domain starts (publicsuffix costs far more than a query),
	// and of each period's table from names to their domain's counter.
	memoSlots = 1 << 16
	// memoNone marks a name with no registrable domain to count.
	memoNone = 0xFFFF
	// memoWays is the bucket size of a period's names (8 entries, 32
	// bytes: one cache line); the remembered cuts have buckets of 4.
	memoWays = 8
)

// usage is the reporting state of a resolver; nil when reporting is off.
type usage struct {
	r          *Resolver
	every      time.Duration
	k          int
	department string

	cur atomic.Pointer[period]
	mu  sync.Mutex // serialises period swaps and list changes (not queries)

	memoSeed maphash.Seed
	memo     []atomic.Uint64

	untracked prometheus.Counter
	sender
}

// period holds one period's counters.
type period struct {
	start time.Time
	// seed keys the client hashes; it exists only as long as the period.
	seed    maphash.Seed
	hits    atomic.Pointer[hitTable]
	domains []atomic.Pointer[refusedDomain]
	n       atomic.Int32
	// names maps a name seen in the period to its domain's slot in
	// domains, in buckets of memoWays: 16 bits of the name's hash, and the
	// slot plus one (memoNone: nothing to count), so that a name asked
	// again costs one hash and two reads. Four bytes an entry keep the
	// table (256 KiB) in a core's cache.
	names []atomic.Uint32
	// folded holds the hits of entries counted under a list that was
	// replaced during the period (under usage.mu).
	folded map[string]int64
}

// hitTable counts hits for one compiled list, by pattern index.
type hitTable struct {
	m      *allowlist.Matcher
	counts []atomic.Uint64
}

// refusedDomain is one registrable domain the list did not allow.
type refusedDomain struct {
	hash    uint64
	name    string
	queries atomic.Uint64
	full    atomic.Bool // maxClientHashes held: no more to look at
	clients [maxClientHashes]atomic.Uint32
}

func newUsage(r *Resolver, o ReportOptions) (*usage, error) {
	switch {
	case o.Every < MinReportEvery:
		return nil, fmt.Errorf("report.every: %v is less than the minimum, %v", o.Every, MinReportEvery)
	case o.Every > allowlist.UsageMaxPeriod:
		return nil, fmt.Errorf("report.every: %v is more than %v (a report covers at most a day)", o.Every, allowlist.UsageMaxPeriod)
	case o.K < allowlist.UsageMinK:
		return nil, fmt.Errorf("report.k: %d is less than %d", o.K, allowlist.UsageMinK)
	case r.opt.Token == "":
		return nil, fmt.Errorf("report: needs token (a reader token of the department the reports are for)")
	}
	dept := o.Department
	if dept == "" && r.opt.Scope != allowlist.ScopeCommon {
		dept = r.opt.Scope
	}
	if !allowlist.ValidDepartmentID(dept) {
		return nil, fmt.Errorf("report.department: %q is not a department id; with scope common, give the department the token belongs to", dept)
	}
	if r.opt.Scope != allowlist.ScopeCommon && r.opt.Scope != dept {
		return nil, fmt.Errorf("report.department: %q, but the scope is department %q's list", dept, r.opt.Scope)
	}
	u := &usage{r: r, every: o.Every, k: o.K, department: dept, memoSeed: maphash.MakeSeed(), memo: make([]atomic.Uint64, memoSlots)}
	u.cur.Store(u.newPeriod(time.Now(), nil))
	u.untracked = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "resolver", Name: "usage_domains_untracked_total",
		Help: "Refused queries not counted for the usage report because the period already held the most domains it may."})
	u.initSender(r)
	r.m.reg.MustRegister(u.untracked, u.sent, u.dropped)
	return u, nil
}

func (u *usage) newPeriod(now time.Time, p *policy) *period {
	per := &period{start: now, seed: maphash.MakeSeed(), domains: make([]atomic.Pointer[refusedDomain], domainSlots),
		names: make([]atomic.Uint32, memoSlots), folded: map[string]int64{}}
	if p != nil {
		per.hits.Store(newHitTable(p.matcher))
	}
	return per
}

func newHitTable(m *allowlist.Matcher) *hitTable {
	return &hitTable{m: m, counts: make([]atomic.Uint64, m.Span())}
}

// count records one decided query: the entry that allowed it (i >= 0) or
// the name the list does not allow. A zero client means the query was
// counted already (the fast path decided it before handing it on).
func (u *usage) count(p *policy, i int, name string, client netip.Addr) {
	if u == nil || !client.IsValid() {
		return
	}
	per := u.cur.Load()
	if i >= 0 {
		// A table for another list: the query raced a list change, whose
		// counts are being folded; it goes uncounted.
		if t := per.hits.Load(); t != nil && t.m == p.matcher && i < len(t.counts) {
			t.counts[i].Add(1)
		}
		return
	}
	h := maphash.String(u.memoSeed, name)
	tag, g := uint32(h>>48)<<16, int(h%memoSlots)&^(memoWays-1)
	free := -1
	var d *refusedDomain
	for j := g; j < g+memoWays; j++ {
		v := per.names[j].Load()
		if v == 0 {
			free = j // entries fill a bucket from its start and stay
			break
		}
		if v&^0xFFFF == tag {
			d, free = per.named(v), -2
			break
		}
	}
	if free != -2 {
		v := tag | memoNone
		if cut := u.registrable(name, h); cut >= 0 {
			slot := per.domain(name[cut:])
			if slot < 0 {
				u.untracked.Inc()
				return
			}
			v = tag | uint32(slot+1)
		}
		if free < 0 {
			free = g + int(h>>20)%memoWays // a full bucket: replace one
		}
		per.names[free].Store(v)
		d = per.named(v)
	}
	if d == nil {
		return
	}
	d.queries.Add(1)
	if d.full.Load() {
		return
	}
	a := client.As16() // an IPv4 address and its IPv4-mapped form alike
	c := uint32(maphash.Bytes(per.seed, a[:]))
	if c == 0 {
		c = 1 // 0 marks a free slot
	}
	for j := range d.clients {
		s := &d.clients[j]
		v := s.Load()
		if v == 0 {
			if s.CompareAndSwap(0, c) {
				return
			}
			v = s.Load()
		}
		if v == c {
			return
		}
	}
	d.full.Store(true) // reported as maxClientHashes
}

// named is the counter an entry of per.names points to; nil for memoNone.
func (per *period) named(v uint32) *refusedDomain {
	if v&0xFFFF == memoNone {
		return nil
	}
	return per.domains[v&0xFFFF-1].Load()
}

// registrable returns where the registrable domain of name starts, or -1
// when the name has none to count (a public suffix itself, a name under
// arpa, anything that is not a host name). h is the name's hash under
// memoSeed. The answer is remembered, in buckets of 4 (picked by other
// bits of h than a period's names, so names that crowd a bucket there do
// not crowd one here too).
func (u *usage) registrable(name string, h uint64) int {
	tag, g := h&^0xFFFF, int((h>>16)%memoSlots)&^(memoWays/2-1)
	free := g + int(h>>40)%(memoWays/2)
	for j := g; j < g+memoWays/2; j++ {
		e := u.memo[j].Load()
		if e == 0 {
			free = j
			break
		}
		if e&^0xFFFF == tag {
			if v := int(e & 0xFFFF); v != memoNone {
				return v - 1
			}
			return -1
		}
	}
	cut := registrableCut(name)
	v := uint64(memoNone)
	if cut >= 0 {
		v = uint64(cut + 1)
	}
	u.memo[free].Store(tag | v)
	return cut
}

// registrableCut finds the registrable domain of name (the public suffix
// list's eTLD+1) without allocating where it can: where it starts in
// name, or -1.
func registrableCut(name string) int {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return -1 // an escaped or unusual label: no host name
		}
	}
	if name == "arpa" || strings.HasSuffix(name, ".arpa") {
		return -1
	}
	ps, _ := publicsuffix.PublicSuffix(name)
	if len(ps) >= len(name) {
		return -1
	}
	dot := len(name) - len(ps) - 1
	if name[dot] != '.' {
		return -1
	}
	cut := strings.LastIndexByte(name[:dot], '.') + 1
	if cut == dot || strings.IndexByte(name[cut:dot], '_') >= 0 {
		return -1
	}
	return cut
}

// domain finds or adds the counter of a registrable domain, and returns
// its slot in per.domains; -1 when the period's table is full.
func (per *period) domain(name string) int {
	h := maphash.String(per.seed, name)
	i := int(h % domainSlots)
	for range maxProbe {
		d := per.domains[i].Load()
		if d == nil {
			if per.n.Load() >= maxDomains {
				return -1
			}
			nd := &refusedDomain{hash: h, name: strings.Clone(name)}
			if per.domains[i].CompareAndSwap(nil, nd) {
				per.n.Add(1)
				return i
			}
			d = per.domains[i].Load()
		}
		if d.hash == h && d.name == name {
			return i
		}
		i = (i + 1) % domainSlots
	}
	return -1
}

// listInstalled gives the current period a counter table for a new list;
// the old table's counts are kept by pattern.
func (u *usage) listInstalled(p *policy) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	per := u.cur.Load()
	old := per.hits.Swap(newHitTable(p.matcher))
	old.fold(per.folded)
}

// fold adds the table's non-zero counts to hits, by pattern in list form.
func (t *hitTable) fold(hits map[string]int64) {
	if t == nil {
		return
	}
	seen := false
	for i := range t.counts {
		if t.counts[i].Load() != 0 {
			seen = true
			break
		}
	}
	if !seen {
		return
	}
	t.m.Each(func(i int, name string, wild bool) {
		if n := int64(t.counts[i].Load()); n > 0 {
			hits[allowlist.Pattern{Name: name, Wildcard: wild}.String()] += n
		}
	})
}

// cut ends the current period at now, starts the next, and returns the
// ended period's report: nil when no list was enforced.
func (u *usage) cut(now time.Time) *allowlist.UsageReport {
	u.mu.Lock()
	p := u.r.policy.Load()
	old := u.cur.Swap(u.newPeriod(now, p))
	old.hits.Load().fold(old.folded)
	u.mu.Unlock()
	if p == nil {
		return nil
	}
	rep := &allowlist.UsageReport{ReportID: randomID(), Department: u.department, Scope: u.r.opt.Scope, ListVersion: p.version,
		Mode: u.r.opt.Mode, PeriodStart: old.start.UTC(), PeriodEnd: now.UTC(), K: u.k,
		Entries: []allowlist.UsageEntry{}, Refused: []allowlist.UsageRefused{}}
	// Sorted by the counts themselves, then rounded: the most hit and the
	// most asked are the ones kept when there are too many.
	type hit struct {
		pattern string
		n       int64
	}
	hits := make([]hit, 0, len(old.folded))
	for pat, n := range old.folded {
		hits = append(hits, hit{pat, n})
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.pattern, b.pattern)) })
	for _, h := range hits[:min(len(hits), allowlist.UsageMaxEntries)] {
		rep.Entries = append(rep.Entries, allowlist.UsageEntry{Pattern: h.pattern, Hits: roundUp(h.n)})
	}
	var refused []allowlist.UsageRefused // raw queries until sorted
	for i := range old.domains {
		d := old.domains[i].Load()
		// Held to k after rounding down: what is sent must meet the
		// threshold itself.
		if d == nil || clientsOf(d) < max(u.k, allowlist.UsageClientsStep) || !allowlist.RegistrableDomain(d.name) {
			continue
		}
		refused = append(refused, allowlist.UsageRefused{Domain: d.name, Queries: int64(d.queries.Load()), Clients: clientsOf(d)})
	}
	slices.SortFunc(refused, func(a, b allowlist.UsageRefused) int {
		return cmp.Or(cmp.Compare(b.Queries, a.Queries), strings.Compare(a.Domain, b.Domain))
	})
	for _, d := range refused[:min(len(refused), allowlist.UsageMaxRefused)] {
		d.Queries = roundUp(d.Queries)
		rep.Refused = append(rep.Refused, d)
	}
	return rep
}

// clientsOf is the distinct clients of a domain, rounded down to a
// multiple of 5.
func clientsOf(d *refusedDomain) int {
	n := 0
	for j := range d.clients {
		if d.clients[j].Load() != 0 {
			n++
		}
	}
	return n - n%allowlist.UsageClientsStep
}

// roundUp rounds a count up to a multiple of 10 (1..10 is 10).
func roundUp(n int64) int64 {
	s := int64(allowlist.UsageHitsStep)
	return (n + s - 1) / s * s
}

// clientAddr is the address of a DNS client, or the zero Addr.
func clientAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}
