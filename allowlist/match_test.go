package allowlist

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMatcher(t *testing.T) {
	pats := []Pattern{
		mustParsePattern("*.example.org"),
		mustParsePattern("meet.example.org"),
		mustParsePattern("*.deep.docs.example.net"),
		mustParsePattern("host.example.net"),
		mustParsePattern("*.example.org"), // duplicate: the first wins
		mustParsePattern("example.com"),
		mustParsePattern("*.example.com"),
	}
	m := Compile(pats)
	if m.Len() != 6 {
		t.Errorf("Len = %d, want 6", m.Len())
	}
	for _, tt := range []struct {
		name string
		want int
	}{
		{"example.org", 0},
		{"a.example.org", 0},
		{"meet.example.org", 1}, // exact beats the wildcard
		{"x.meet.example.org", 0},
		{"MEET.Example.ORG.", 1},
		{"deep.docs.example.net", 2},
		{"a.b.deep.docs.example.net", 2},
		{"docs.example.net", -1},
		{"host.example.net", 3},
		{"a.host.example.net", -1},
		{"example.net", -1},
		{"example.com", 5}, // exact beats the wildcard on the same name
		{"www.example.com", 6},
		{"badexample.org", -1},
		{"org", -1},
		{"", -1},
		{".", -1},
		{"example.org.evil.example.net", -1},
		{strings.Repeat("a.", 100) + "example.org", 0},
		{strings.Repeat("a", 300), -1},
	} {
		if got := m.Match(tt.name); got != tt.want {
			t.Errorf("Match(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
	// Small tables must keep empty slots, or a miss would never end.
	for n := 1; n <= 8; n++ {
		var few []Pattern
		for i := 0; i < n; i++ {
			few = append(few, Pattern{Name: fmt.Sprintf("a%d.b.example.org", i), Wildcard: i%2 == 0})
		}
		m := Compile(few)
		for _, miss := range []string{"other.example.net", "x.y.z.example.com", "org", "b.example.org"} {
			if got := m.Match(miss); got != -1 {
				t.Errorf("%d patterns: Match(%q) = %d", n, miss, got)
			}
		}
	}
	if got := Compile(nil).Match("example.org"); got != -1 {
		t.Errorf("empty matcher matched: %d", got)
	}
}

// TestMatcherAgainstReference compares the matcher with a brute-force walk
// over Pattern.Covers on random names.
func TestMatcherAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	labels := []string{"a", "b", "cc", "docs", "meet", "example", "org", "net"}
	randName := func() string {
		n := 2 + r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = labels[r.IntN(len(labels))]
		}
		return strings.Join(parts, ".")
	}
	var pats []Pattern
	for i := 0; i < 300; i++ {
		pats = append(pats, Pattern{Name: randName(), Wildcard: r.IntN(2) == 0})
	}
	m := Compile(pats)
	for i := 0; i < 20000; i++ {
		name := randName()
		got := m.Match(name)
		// Reference: exact first, then the longest covering wildcard; the
		// first pattern wins among equals.
		want, wantLen := -1, -1
		for j, p := range pats {
			if !p.Wildcard && p.Name == name {
				want = j
				break
			}
		}
		if want < 0 {
			for j, p := range pats {
				if p.Wildcard && p.Covers(name) && len(p.Name) > wantLen {
					want, wantLen = j, len(p.Name)
				}
			}
		}
		if got != want {
			t.Fatalf("Match(%q) = %d (%v), want %d (%v)", name, got, at(pats, got), want, at(pats, want))
		}
	}
}

// TestMatcherLargeAgainstMapWalk checks a table large enough to have a
// filter, built at once and grown from a small start, and after a patch,
// against the plain map walk.
func TestMatcherLargeAgainstMapWalk(t *testing.T) {
	defer func(n int) { filterFrom = n }(filterFrom)
	filterFrom = 1 << 16 // 100k patterns take about 200,000 slots
	pats, queries := benchData(100_000, 1<<15)
	// Labels longer than a slot holds, and queries in another case.
	for i := 0; i < 2000; i++ {
		long := fmt.Sprintf("a-label-longer-than-sixteen-bytes-%d.example-organisation-%d.org", i, i%7)
		pats = append(pats, Pattern{Name: long, Wildcard: i%2 == 0})
		queries = append(queries, long, "x."+long, strings.ToUpper(long), "Y."+strings.ToUpper(long), "not-"+long)
	}
	m := Compile(pats)
	if m.filter == nil {
		t.Fatal("a 100k-pattern matcher has no filter")
	}
	seen := 0
	m.Each(func(i int, name string, wild bool) {
		seen++
		if pats[i].Name != name || pats[i].Wildcard != wild {
			t.Fatalf("Each: %d is %q (wildcard %v), want %+v", i, name, wild, pats[i])
		}
	})
	if seen != m.Len() {
		t.Fatalf("Each saw %d patterns, Len is %d", seen, m.Len())
	}
	grown := NewBuilder(0, 0, 0)
	for _, p := range pats {
		grown.Add(p.Name, p.Wildcard)
	}
	g := grown.Matcher()
	ref := newMapWalk(pats)
	for _, q := range queries {
		want := ref.Match(strings.ToLower(q)) // the map walk minds case
		if got := m.Match(q); got != want {
			t.Fatalf("Match(%q) = %d, want %d", q, got, want)
		}
		if got := g.Match(q); got != want {
			t.Fatalf("grown: Match(%q) = %d, want %d", q, got, want)
		}
	}
	// Patch: remove the first 1,000 patterns and the last 10 (long
	// labels), add 1,000 new ones.
	var add []Pattern
	for i := 0; i < 1000; i++ {
		add = append(add, Pattern{Name: fmt.Sprintf("new%d.example.org", i), Wildcard: i%2 == 0})
	}
	last := len(pats) - 10
	p := m.Patch(append(pats[:1000:1000], pats[last:]...), add)
	ref = newMapWalk(append(append([]Pattern(nil), pats[1000:last]...), add...))
	for _, q := range append(queries, "new7.example.org", "x.new8.example.org", "x.new9.example.org") {
		if got, want := p.Match(q) >= 0, ref.Match(strings.ToLower(q)) >= 0; got != want {
			t.Fatalf("patched: Match(%q) allows %v, want %v", q, got, want)
		}
	}
}

func at(p []Pattern, i int) any {
	if i < 0 {
		return nil
	}
	return p[i]
}

func TestMatcherConcurrentReaders(t *testing.T) {
	pats, queries := benchData(10000, 1000)
	m := Compile(pats)
	want := make([]int, len(queries))
	for i, q := range queries {
		want[i] = m.Match(q)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, q := range queries {
				if got := m.Match(q); got != want[i] {
					t.Errorf("Match(%q) = %d, want %d", q, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMatcherZeroAllocs(t *testing.T) {
	pats, queries := benchData(1000, 100)
	m := Compile(pats)
	allocs := testing.AllocsPerRun(100, func() {
		for _, q := range queries {
			m.Match(q)
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %.1f times per run", allocs)
	}
}

// benchData makes n patterns shaped like real ones (a third exact hosts, the
// rest wildcards over organisation names) and a query set of which about
// half match: exact hosts, names below wildcards, and near misses.
func benchData(n, nq int) ([]Pattern, []string) {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	tlds := []string{"com", "org", "net", "io", "co.uk", "gov.uk", "de", "example"}
	pats := make([]Pattern, n)
	for i := range pats {
		org := fmt.Sprintf("tool%d-%x.%s", i, r.Uint32()&0xffff, tlds[r.IntN(len(tlds))])
		if i%3 == 0 {
			pats[i] = Pattern{Name: "app." + org}
		} else {
			pats[i] = Pattern{Name: org, Wildcard: true}
		}
	}
	queries := make([]string, nq)
	for i := range queries {
		p := pats[r.IntN(n)]
		switch i % 4 {
		case 0:
			queries[i] = p.Name
		case 1:
			queries[i] = "cdn.eu-west." + p.Name
		case 2:
			queries[i] = "www.not-" + p.Name
		default:
			queries[i] = fmt.Sprintf("host%d.unlisted%d.example.net", i, r.Uint32())
		}
	}
	return pats, queries
}

// mapWalk is the peer the matcher is measured against: two plain Go maps and
// a walk over the name's suffixes.
type mapWalk struct {
	exact, wild map[string]int32
}

func newMapWalk(pats []Pattern) *mapWalk {
	m := &mapWalk{exact: map[string]int32{}, wild: map[string]int32{}}
	for i, p := range pats {
		t := m.exact
		if p.Wildcard {
			t = m.wild
		}
		if _, dup := t[p.Name]; !dup {
			t[p.Name] = int32(i)
		}
	}
	return m
}

func (m *mapWalk) Match(name string) int {
	name = strings.TrimSuffix(name, ".")
	if i, ok := m.exact[name]; ok {
		return int(i)
	}
	for s := name; ; {
		if i, ok := m.wild[s]; ok {
			return int(i)
		}
		dot := strings.IndexByte(s, '.')
		if dot < 0 {
			return -1
		}
		s = s[dot+1:]
	}
}

var sink int

// heapOf reports the live heap bytes that build() adds.
func heapOf(build func() any) (any, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return v, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkMatcher measures lookups at 1k, 100k and 1M patterns for the
// compiled matcher and, in the same run, for a plain map walk. It reports
// heap bytes per pattern and, for the matcher, the build time.
func BenchmarkMatcher(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		pats, queries := benchData(n, 1<<16)
		b.Run(fmt.Sprintf("impl=matcher/patterns=%d", n), func(b *testing.B) {
			start := time.Now()
			v, heap := heapOf(func() any { return Compile(pats) })
			build := time.Since(start)
			m := v.(*Matcher)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sink += m.Match(queries[i&(len(queries)-1)])
			}
			b.ReportMetric(float64(heap)/float64(n), "heapB/pattern")
			b.ReportMetric(build.Seconds(), "build-s")
		})
		b.Run(fmt.Sprintf("impl=mapwalk/patterns=%d", n), func(b *testing.B) {
			v, heap := heapOf(func() any { return newMapWalk(pats) })
			m := v.(*mapWalk)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sink += m.Match(queries[i&(len(queries)-1)])
			}
			b.ReportMetric(float64(heap)/float64(n), "heapB/pattern")
		})
	}
}

// BenchmarkCompile measures building a matcher of 1M patterns.
func BenchmarkCompile(b *testing.B) {
	pats, _ := benchData(1_000_000, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Compile(pats)
	}
}

// Each names every pattern with the index Match gives it, after Compile
// and after Patch; Span bounds those indexes.
func TestMatcherEachAndSpan(t *testing.T) {
	pats := []Pattern{{Name: "example.org"}, {Name: "example.org", Wildcard: true}, {Name: "a.b.example.net"}, {Name: "gov.uk", Wildcard: true}}
	check := func(m *Matcher, want map[string]int, span int) {
		t.Helper()
		got := map[string]int{}
		m.Each(func(i int, name string, wild bool) {
			p := Pattern{Name: name, Wildcard: wild}
			got[p.String()] = i
			probe := name
			if wild {
				probe = "x." + name
			}
			if m.Match(probe) != i {
				t.Errorf("Each gave %s index %d, Match(%q) = %d", p, i, probe, m.Match(probe))
			}
			if i >= m.Span() {
				t.Errorf("index %d of %s is not below Span %d", i, p, m.Span())
			}
		})
		if fmt.Sprint(got) != fmt.Sprint(want) || m.Span() != span {
			t.Errorf("Each = %v, Span = %d; want %v, %d", got, m.Span(), want, span)
		}
	}
	m := Compile(pats)
	check(m, map[string]int{"example.org": 0, "*.example.org": 1, "a.b.example.net": 2, "*.gov.uk": 3}, 4)
	p := m.Patch([]Pattern{{Name: "a.b.example.net"}}, []Pattern{{Name: "b.example.net"}})
	check(p, map[string]int{"example.org": 0, "*.example.org": 1, "b.example.net": 4, "*.gov.uk": 3}, 5)
}
