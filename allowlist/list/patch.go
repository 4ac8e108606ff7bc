package list

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
// body of an earlier version, in the form NewList writes) and the entries
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
	var res Patched
	added = sortedCopy(added)
	removed = sortedCopy(removed)
	for i, e := range added {
		if i > 0 && added[i-1].Pattern == e.Pattern {
			return res, fmt.Errorf("patch: %q is added twice", e.Pattern)
		}
		if _, _, ok := check(e.Pattern); !ok {
			return res, fmt.Errorf("patch: added entry %q is not a normalised pattern", e.Pattern)
		}
		for _, s := range []string{e.Pattern, e.Site, e.Category} {
			if !plainString(s) {
				return res, fmt.Errorf("patch: added entry %q: %w: %q needs escaping", e.Pattern, errNotCanonical, s)
			}
		}
	}
	for i := 1; i < len(removed); i++ {
		if removed[i-1].Pattern == removed[i].Pattern {
			return res, fmt.Errorf("patch: %q is removed twice", removed[i].Pattern)
		}
	}

	// The new body is written in chunks; those inside the entries array
	// are hashed too.
	var chunk, scratch []byte
	var werr error
	sum := sha256.New()
	flush := func(hashed bool) {
		if hashed {
			sum.Write(chunk)
		}
		if werr == nil {
			_, werr = w.Write(chunk)
		}
		chunk = chunk[:0]
	}
	first := true
	emit := func(b []byte, pattern string) {
		if !first {
			chunk = append(chunk, ',')
		}
		first = false
		chunk = append(chunk, b...)
		if len(chunk) >= 64<<10 {
			flush(true)
		}
		name, _ := CutWildcard(pattern)
		res.Stats.Entries++
		res.Stats.NameBytes += len(name)
		res.Stats.Keys += KeyEstimate(name)
	}
	emitAdded := func(e Entry, replaces bool) {
		scratch = appendEntry(scratch[:0], e)
		emit(scratch, e.Pattern)
		if !replaces {
			res.Add = append(res.Add, e.Pattern)
		}
	}

	head := next
	head.GeneratedAt = head.GeneratedAt.UTC()
	chunk = AppendHead(make([]byte, 0, 80<<10), head)
	flush(false)
	chunk = append(chunk, '[')
	ai, ri := 0, 0
	lr := newStreamReader(old, true)
	hdr, err := lr.read(func(p, site, category []byte) error {
		pattern := unsafe.String(unsafe.SliceData(p), len(p))
		for ai < len(added) && added[ai].Pattern < pattern {
			emitAdded(added[ai], false)
			ai++
		}
		if ri < len(removed) && removed[ri].Pattern < pattern {
			return fmt.Errorf("patch: removes %q, which the held version does not hold", removed[ri].Pattern)
		}
		replaced := ai < len(added) && added[ai].Pattern == pattern
		if ri < len(removed) && removed[ri].Pattern == pattern {
			if r := removed[ri]; r.Site != string(site) || r.Category != string(category) {
				return fmt.Errorf("patch: removes %q for site %q, which the held version holds for site %q", pattern, r.Site, site)
			}
			ri++
			if replaced {
				emitAdded(added[ai], true)
				ai++
			} else {
				res.Remove = append(res.Remove, strings.Clone(pattern))
			}
			return nil
		}
		if replaced {
			return fmt.Errorf("patch: adds %q, which the held version holds already", pattern)
		}
		// Copied as read: a reader's strings need no escaping.
		scratch = append(scratch[:0], `{"pattern":"`...)
		scratch = append(scratch, p...)
		scratch = append(scratch, `","site":"`...)
		scratch = append(scratch, site...)
		scratch = append(scratch, `","category":"`...)
		scratch = append(scratch, category...)
		scratch = append(scratch, `"}`...)
		emit(scratch, pattern)
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Old = hdr
	if ri < len(removed) {
		return res, fmt.Errorf("patch: removes %q, which version %d does not hold", removed[ri].Pattern, hdr.Version)
	}
	for ; ai < len(added); ai++ {
		emitAdded(added[ai], false)
	}
	chunk = append(chunk, ']')
	flush(true)
	chunk = append(chunk, Tail...)
	if flush(false); werr != nil {
		return res, werr
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != next.SHA256 {
		return res, fmt.Errorf("patch: version %d with these changes hashes to %s, not to %s as announced", hdr.Version, got, next.SHA256)
	}
	return res, nil
}

func sortedCopy(entries []Entry) []Entry {
	out := slices.Clone(entries)
	slices.SortFunc(out, Compare)
	return out
}
