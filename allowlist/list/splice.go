package list

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// A Splice makes the entries array of a list's next version from the
// array of an earlier one and the entries added and removed between them,
// without decoding or encoding the entries that stay: it finds where each
// change goes by bisecting the old array's bytes (entries are sorted by
// pattern, and no string in a canonical body holds an unescaped quote, so
// `{"pattern":"` starts an entry and nothing else), then copies the runs
// of old bytes between the changes. At a million entries that is a few
// dozen small reads and one copy, where encoding the entries again takes
// half a second and reading them (Patch) a quarter.
//
// The bytes it writes are EncodeArray's for the new entries
// (TestSpliceIsEncode, FuzzSplice) when old is EncodeArray's for the old
// ones; a caller that cannot vouch for old checks the result against a
// hash or signature, as Patch's callers do.
type Splice struct {
	parts []splicePart
	// Size is the length of the new array, in bytes.
	Size int64
	// Add and Remove are the patterns whose entries the splice adds and
	// removes, as Patched's are (a pattern whose site or category changed
	// is in neither).
	Add, Remove []string
}

// splicePart is a run of old bytes (off, n) or an entry to write (add).
type splicePart struct {
	off, n int64
	add    []byte
}

const entryStart = `{"pattern":"`

// errSplice marks changes that do not fit the old array.
var errSplice = errors.New("splice")

// PlanSplice works out the splice of old's entries array, the n bytes of
// old from off ('[' to ']'), with added and removed (each sorted by
// pattern, as Diff gives them; a pattern both removed and added is an
// entry that changed). It fails when the changes do not fit old (removing
// an entry it lacks, adding a pattern it has), when an added string would
// need escaping, or when old is not an array of entries as EncodeArray
// writes them.
func PlanSplice(old io.ReaderAt, off, n int64, added, removed []Entry) (Splice, error) {
	var sp Splice
	a := arrayReader{r: old, lo: off + 1, hi: off + n - 1}
	if n < 2 || a.byteAt(off) != '[' || a.byteAt(a.hi) != ']' {
		return sp, fmt.Errorf("%w: not a JSON array", errSplice)
	}
	if a.err != nil {
		return sp, a.err
	}
	for i, e := range added {
		if i > 0 && added[i-1].Pattern >= e.Pattern {
			return sp, fmt.Errorf("%w: added entries out of order at %q", errSplice, e.Pattern)
		}
		for _, s := range []string{e.Pattern, e.Site, e.Category} {
			if !plainString(s) {
				return sp, fmt.Errorf("%w: added entry %q: %w: %q needs escaping", errSplice, e.Pattern, errNotCanonical, s)
			}
		}
	}
	for i := 1; i < len(removed); i++ {
		if removed[i-1].Pattern >= removed[i].Pattern {
			return sp, fmt.Errorf("%w: removed entries out of order at %q", errSplice, removed[i].Pattern)
		}
	}
	cursor := a.lo // the next old byte not yet taken: an entry's start, or hi
	keep := func(to int64) {
		if to > cursor {
			end := to
			if to < a.hi {
				end-- // the comma before the entry at to
			}
			sp.parts = append(sp.parts, splicePart{off: cursor, n: end - cursor})
		}
		cursor = to
	}
	ai, ri := 0, 0
	for ai < len(added) || ri < len(removed) {
		if ai < len(added) && (ri == len(removed) || added[ai].Pattern <= removed[ri].Pattern) {
			e := added[ai]
			at, pattern := a.find(cursor, e.Pattern)
			if at < a.hi && pattern == e.Pattern && (ri == len(removed) || removed[ri].Pattern != e.Pattern) {
				return sp, fmt.Errorf("%w: adds %q, which the old list holds already", errSplice, e.Pattern)
			}
			keep(at)
			sp.parts = append(sp.parts, splicePart{add: appendEntry(nil, e)})
			if ri == len(removed) || removed[ri].Pattern != e.Pattern {
				sp.Add = append(sp.Add, e.Pattern)
			}
			ai++
			continue
		}
		e := removed[ri]
		at, pattern := a.find(cursor, e.Pattern)
		if at == a.hi || pattern != e.Pattern {
			return sp, fmt.Errorf("%w: removes %q, which the old list does not hold", errSplice, e.Pattern)
		}
		next := a.nextStart(at + 1)
		end := next
		if next < a.hi {
			end-- // the comma
		}
		want := appendEntry(nil, e)
		if end-at != int64(len(want)) || !a.holds(at, want) {
			return sp, fmt.Errorf("%w: removes %q for site %q, which the old list holds otherwise", errSplice, e.Pattern, e.Site)
		}
		keep(at)
		cursor = next
		if ai == 0 || added[ai-1].Pattern != e.Pattern { // else it changed site or category
			sp.Remove = append(sp.Remove, e.Pattern)
		}
		ri++
	}
	keep(a.hi)
	if a.err != nil {
		return Splice{}, a.err
	}
	sp.Size = 2
	for i, p := range sp.parts {
		if i > 0 {
			sp.Size++
		}
		sp.Size += p.n + int64(len(p.add))
	}
	return sp, nil
}

// WriteTo writes the new array to w, copying the old runs from old.
func (sp Splice) WriteTo(old io.ReaderAt, w io.Writer) (int64, error) {
	var total int64
	var buf []byte
	put := func(b []byte) error {
		n, err := w.Write(b)
		total += int64(n)
		return err
	}
	if err := put([]byte{'['}); err != nil {
		return total, err
	}
	for i, p := range sp.parts {
		if i > 0 {
			if err := put([]byte{','}); err != nil {
				return total, err
			}
		}
		if p.add != nil {
			if err := put(p.add); err != nil {
				return total, err
			}
			continue
		}
		if buf == nil {
			buf = make([]byte, 256<<10)
		}
		n, err := io.CopyBuffer(w, io.NewSectionReader(old, p.off, p.n), buf)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, put([]byte{']'})
}

// Bytes returns the new array, with the old runs taken from old, the
// bytes PlanSplice read through a bytes.Reader.
func (sp Splice) Bytes(old []byte) []byte {
	b := append(make([]byte, 0, sp.Size), '[')
	for i, p := range sp.parts {
		if i > 0 {
			b = append(b, ',')
		}
		if p.add != nil {
			b = append(b, p.add...)
		} else {
			b = append(b, old[p.off:p.off+p.n]...)
		}
	}
	return append(b, ']')
}

// SpliceArray is PlanSplice and Bytes over an array held in memory.
func SpliceArray(old []byte, added, removed []Entry) ([]byte, error) {
	sp, err := PlanSplice(bytes.NewReader(old), 0, int64(len(old)), added, removed)
	if err != nil {
		return nil, err
	}
	return sp.Bytes(old), nil
}

// arrayReader reads the entries of an array between lo (after '[') and
// hi (at ']'), in small windows. The first read error sticks in err, and
// every read after it returns nothing.
type arrayReader struct {
	r      io.ReaderAt
	lo, hi int64
	buf    [1024]byte
	err    error
}

// read returns up to n bytes from off (fewer at hi).
func (a *arrayReader) read(off int64, n int) []byte {
	n = int(min(int64(min(n, len(a.buf))), a.hi+1-off))
	if a.err != nil || n <= 0 {
		return nil
	}
	got, err := a.r.ReadAt(a.buf[:n], off)
	if got < n && err != nil {
		a.err = fmt.Errorf("read the old list at %d: %w", off, err)
		return nil
	}
	return a.buf[:n]
}

// holds reports whether the bytes at off are want.
func (a *arrayReader) holds(off int64, want []byte) bool {
	got := make([]byte, len(want))
	n, err := a.r.ReadAt(got, off)
	if n < len(got) && err != nil {
		a.err = fmt.Errorf("read the old list at %d: %w", off, err)
		return false
	}
	return bytes.Equal(got, want)
}

func (a *arrayReader) byteAt(off int64) byte {
	if b := a.read(off, 1); len(b) == 1 {
		return b[0]
	}
	return 0
}

// nextStart returns where the first entry at or after from starts, or hi.
func (a *arrayReader) nextStart(from int64) int64 {
	for from < a.hi {
		w := a.read(from, len(a.buf))
		if len(w) == 0 {
			return a.hi
		}
		if i := bytes.Index(w, []byte(entryStart)); i >= 0 {
			return from + int64(i)
		}
		if from+int64(len(w)) > a.hi {
			return a.hi
		}
		from += int64(len(w) - len(entryStart) + 1)
	}
	return a.hi
}

// pattern returns the pattern of the entry that starts at off. One that
// is not written as itself (escaped, or not there) sets err, which ends
// every search: bytes of it would not sort as its pattern does.
func (a *arrayReader) pattern(off int64) string {
	w := a.read(off, len(a.buf))
	if !bytes.HasPrefix(w, []byte(entryStart)) {
		a.fail(off)
		return ""
	}
	w = w[len(entryStart):]
	i := bytes.IndexByte(w, '"')
	if i < 0 || bytes.IndexByte(w[:i], '\\') >= 0 {
		a.fail(off)
		return ""
	}
	return string(w[:i])
}

func (a *arrayReader) fail(off int64) {
	if a.err == nil {
		a.err = fmt.Errorf("%w: the old list has no entry as written canonically at byte %d", errSplice, off)
	}
}

// find returns the start of the first entry at or after from (an entry's
// start, or hi) whose pattern is not below p, and that pattern; hi and ""
// when there is none. It bisects the bytes: each step finds the first
// entry start after a midpoint.
func (a *arrayReader) find(from int64, p string) (int64, string) {
	lo, hi := from, a.hi
	// Every entry that starts before lo has a pattern below p; the one at
	// hi, if any, has one not below p.
	for lo < hi && a.err == nil {
		s := a.nextStart(lo + (hi-lo)/2)
		if s >= hi {
			// No entry starts in the upper half: step from lo, over
			// at most two entries' length.
			s = lo
		}
		if a.pattern(s) < p {
			lo = a.nextStart(s + 1)
		} else {
			hi = s
		}
	}
	if hi == a.hi {
		return hi, ""
	}
	return hi, a.pattern(hi)
}

// PatchAt is Patch for an old body that can be read at any offset, the n
// bytes of old from off (a resolver's cache file), whose Stats are
// oldStats. Where Patch reads every entry of old, PatchAt reads its head
// and the few entries around each change (PlanSplice) and copies the rest:
// at a million entries it saves reading 85 MB entry by entry. Its checks
// and its result are Patch's, the new Stats worked out from oldStats and
// the patterns added and removed. A body it cannot splice (one not
// written canonically) is an error: the caller takes the list whole.
func PatchAt(old io.ReaderAt, off, n int64, oldStats Stats, next Header, added, removed []Entry, check Check, w io.Writer) (Patched, error) {
	var res Patched
	added, removed = sortedCopy(added), sortedCopy(removed)
	if err := checkChanges(added, removed, check); err != nil {
		return res, err
	}
	// The head: the old version's identity, and where its array starts.
	head := make([]byte, min(n, 4096))
	if _, err := old.ReadAt(head, off); err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("patch: read the held version: %w", err)
	}
	lr := &reader{buf: head, eof: true, held: true}
	hdr, err := lr.head()
	if err != nil {
		return res, fmt.Errorf("patch: the held version: %w", err)
	}
	res.Old = hdr
	tail := make([]byte, len(Tail))
	if n < int64(lr.pos+len(Tail)) {
		return res, errors.New("patch: the held version is truncated")
	}
	if _, err := old.ReadAt(tail, off+n-int64(len(Tail))); err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("patch: read the held version: %w", err)
	}
	if string(tail) != Tail {
		return res, errors.New("patch: the held version does not end as a list body does")
	}
	arrayAt := off + int64(lr.pos)
	sp, err := PlanSplice(old, arrayAt, off+n-int64(len(Tail))-arrayAt, added, removed)
	if err != nil {
		return res, fmt.Errorf("patch: %w", err)
	}
	res.Add, res.Remove = sp.Add, sp.Remove
	res.Stats = oldStats
	for _, p := range sp.Add {
		name, _ := CutWildcard(p)
		res.Stats.count(name, 1)
	}
	for _, p := range sp.Remove {
		name, _ := CutWildcard(p)
		res.Stats.count(name, -1)
	}
	next.GeneratedAt = next.GeneratedAt.UTC()
	if _, err := w.Write(AppendHead(nil, next)); err != nil {
		return res, err
	}
	sum := sha256.New()
	if _, err := sp.WriteTo(old, io.MultiWriter(w, sum)); err != nil {
		return res, err
	}
	if _, err := io.WriteString(w, Tail); err != nil {
		return res, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != next.SHA256 {
		return res, fmt.Errorf("patch: version %d with these changes hashes to %s, not to %s as announced", hdr.Version, got, next.SHA256)
	}
	return res, nil
}
