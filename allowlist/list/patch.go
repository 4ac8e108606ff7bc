package list

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"unsafe"
)

// Patched is what Patch learns while it writes a list's next version.
type Patched struct {
	Old   Header // the version patched, as its body says
	Stats Stats  // of the new version
	// Add and Remove are the changes to the set of patterns (as entries
	// write them, "*." and all), for a matcher's Patch: an entry whose
	// site or category changed leaves the patterns as they were.
	Add, Remove []string
}

// Patch writes to w the body of version next of a list, from old (the
// body of an earlier version, in the form Encode, AppendHead and Tail make) and the entries
// added and removed between the two (as the registry's diff gives them),
// so that a resolver that holds one version can take the next without
// fetching the whole list. Both bodies are streamed: neither is held.
// check decides which added patterns are in normal form (see Check).
//
// The result is only as good as what it is checked against: the caller
// must verify the signature of next over exactly the bytes written (a
// Verifier beside w). Patch itself refuses changes that do not fit
// old (removing an entry old lacks, adding a pattern old has), patterns
// not in normal form, and a result whose entries do not hash to
// next.SHA256. old is read in the form Read reads, but its own hash is
// not checked: any byte of it that is wrong either leaves with a removed
// entry or fails the new version's hash and signature.
func Patch(old io.Reader, next Header, added, removed []Entry, check Check, w io.Writer) (Patched, error) {
	added, removed = sortedCopy(added), sortedCopy(removed)
	if err := checkChanges(added, removed, check); err != nil {
		return Patched{}, err
	}
	p := &patcher{w: w, sum: sha256.New(), added: added, removed: removed, first: true}
	head := next
	head.GeneratedAt = head.GeneratedAt.UTC()
	p.chunk = AppendHead(make([]byte, 0, 80<<10), head)
	p.flush(false)
	p.chunk = append(p.chunk, '[')
	hdr, err := newStreamReader(old, true).read(p.held)
	if err != nil {
		return p.res, err
	}
	p.res.Old = hdr
	if p.ri < len(removed) {
		return p.res, fmt.Errorf("patch: removes %q, which version %d does not hold", removed[p.ri].Pattern, hdr.Version)
	}
	for ; p.ai < len(added); p.ai++ {
		p.add(added[p.ai], false)
	}
	p.chunk = append(p.chunk, ']')
	p.flush(true)
	p.chunk = append(p.chunk, Tail...)
	if p.flush(false); p.werr != nil {
		return p.res, p.werr
	}
	if got := hex.EncodeToString(p.sum.Sum(nil)); got != next.SHA256 {
		return p.res, fmt.Errorf("patch: version %d with these changes hashes to %s, not to %s as announced", hdr.Version, got, next.SHA256)
	}
	return p.res, nil
}

// checkChanges refuses changes that no version could take: a pattern
// added or removed twice, or an added entry that is not in normal form.
func checkChanges(added, removed []Entry, check Check) error {
	for i, e := range added {
		if i > 0 && added[i-1].Pattern == e.Pattern {
			return fmt.Errorf("patch: %q is added twice", e.Pattern)
		}
		if _, _, ok := check(e.Pattern); !ok {
			return fmt.Errorf("patch: added entry %q is not a normalised pattern", e.Pattern)
		}
		for _, s := range []string{e.Pattern, e.Site, e.Category} {
			if !plainString(s) {
				return fmt.Errorf("patch: added entry %q: %w: %q needs escaping", e.Pattern, errNotCanonical, s)
			}
		}
	}
	for i := 1; i < len(removed); i++ {
		if removed[i-1].Pattern == removed[i].Pattern {
			return fmt.Errorf("patch: %q is removed twice", removed[i].Pattern)
		}
	}
	return nil
}

// patcher merges the held body's entries with the changes, in order, and
// writes the new body in chunks; those inside the entries array are
// hashed too.
type patcher struct {
	w              io.Writer
	werr           error
	sum            hash.Hash
	chunk, scratch []byte
	first          bool // no entry written yet

	added, removed []Entry
	ai, ri         int // the next added and removed entries
	res            Patched
}

func (p *patcher) flush(hashed bool) {
	if hashed {
		p.sum.Write(p.chunk)
	}
	if p.werr == nil {
		_, p.werr = p.w.Write(p.chunk)
	}
	p.chunk = p.chunk[:0]
}

// emit writes one entry's JSON and counts its pattern.
func (p *patcher) emit(b []byte, pattern string) {
	if !p.first {
		p.chunk = append(p.chunk, ',')
	}
	p.first = false
	p.chunk = append(p.chunk, b...)
	if len(p.chunk) >= 64<<10 {
		p.flush(true)
	}
	name, _ := CutWildcard(pattern)
	p.res.Stats.count(name, 1)
}

// add writes an added entry; unless it replaces a held entry of the same
// pattern, its pattern is new.
func (p *patcher) add(e Entry, replaces bool) {
	p.scratch = appendEntry(p.scratch[:0], e)
	p.emit(p.scratch, e.Pattern)
	if !replaces {
		p.res.Add = append(p.res.Add, e.Pattern)
	}
}

// held takes one entry of the held body: the added entries before it are
// written first, then it is dropped, replaced or copied as read.
func (p *patcher) held(pb, site, category []byte) error {
	pattern := unsafe.String(unsafe.SliceData(pb), len(pb))
	for p.ai < len(p.added) && p.added[p.ai].Pattern < pattern {
		p.add(p.added[p.ai], false)
		p.ai++
	}
	if p.ri < len(p.removed) && p.removed[p.ri].Pattern < pattern {
		return fmt.Errorf("patch: removes %q, which the held version does not hold", p.removed[p.ri].Pattern)
	}
	replaced := p.ai < len(p.added) && p.added[p.ai].Pattern == pattern
	if p.ri < len(p.removed) && p.removed[p.ri].Pattern == pattern {
		if r := p.removed[p.ri]; r.Site != string(site) || r.Category != string(category) {
			return fmt.Errorf("patch: removes %q for site %q, which the held version holds for site %q", pattern, r.Site, site)
		}
		p.ri++
		if replaced {
			p.add(p.added[p.ai], true)
			p.ai++
		} else {
			p.res.Remove = append(p.res.Remove, strings.Clone(pattern))
		}
		return nil
	}
	if replaced {
		return fmt.Errorf("patch: adds %q, which the held version holds already", pattern)
	}
	// Copied as read: a reader's strings need no escaping.
	b := append(p.scratch[:0], `{"pattern":"`...)
	b = append(b, pb...)
	b = append(b, `","site":"`...)
	b = append(b, site...)
	b = append(b, `","category":"`...)
	b = append(b, category...)
	p.scratch = append(b, `"}`...)
	p.emit(p.scratch, pattern)
	return nil
}

func sortedCopy(entries []Entry) []Entry {
	out := slices.Clone(entries)
	slices.SortFunc(out, Compare)
	return out
}
