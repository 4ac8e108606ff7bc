package resolver

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// BenchmarkLoadList measures verifying and compiling a signed list of 1k,
// 100k and 1M entries (a reload), and the heap the installed policy keeps.
func BenchmarkLoadList(b *testing.B) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		entries := benchEntries(n)
		_, body := allowlist.NewList("common", 1, time.Now(), entries)
		sig := list.Sign(key, body)
		entries = nil
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var kept int
			for i := 0; i < b.N; i++ {
				p, err := verify(pub, "common", 0, body, sig)
				if err != nil {
					b.Fatal(err)
				}
				// The installed policy keeps only the matcher.
				kept = p.matcher.Bytes()
			}
			b.ReportMetric(float64(kept)/float64(n), "keptB/entry")
			b.ReportMetric(float64(kept)/(1<<20), "keptMiB")
			b.ReportMetric(float64(len(body))/(1<<20), "bodyMiB")
		})
	}
}

// BenchmarkPatchList measures taking the next version of a 1M-entry list
// as a patch, as Resolver.patch does it (the diff already fetched): the
// held version read from its cache file, the new one written to a spool
// file in the same directory while its signature is checked, the matcher
// patched. Its peer in the same run is BenchmarkLoadList/entries=1000000.
func BenchmarkPatchList(b *testing.B) {
	const n = 1_000_000
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	entries := benchEntries(n)
	at := time.Now()
	_, body := allowlist.NewList("common", 1, at, entries)
	added := []allowlist.Entry{{Pattern: "meet.reload.example.org", Site: "reload", Category: "video-conferencing"}}
	l, next := allowlist.NewList("common", 2, at, append(entries, added...))
	sig := list.Sign(key, next)
	entries = nil
	dir := b.TempDir()
	if err := writeCache(dir, body, list.Sign(key, body)); err != nil {
		b.Fatal(err)
	}
	held, err := verify(pub, "common", 0, body, list.Sign(key, body))
	if err != nil {
		b.Fatal(err)
	}
	hdr := list.Header{Scope: "common", Version: 2, GeneratedAt: l.GeneratedAt, SHA256: l.SHA256}
	b.SetBytes(int64(len(next)))
	for b.Loop() {
		f, _, off, size, err := openCache(dir)
		if err != nil {
			b.Fatal(err)
		}
		v, _ := list.NewVerifier(pub, sig)
		sp := newSpool(dir, sig, false)
		res, err := allowlist.PatchList(io.NewSectionReader(f, off, size), hdr, added, nil, io.MultiWriter(sp, v))
		if err != nil || v.Verify() != nil {
			b.Fatal(err, v.Verify())
		}
		held.matcher.Patch(res.Remove, res.Add)
		sp.close()
		f.Close()
	}
}

// benchEntries is a list of n entries, two wildcards in three.
func benchEntries(n int) []allowlist.Entry {
	entries := make([]allowlist.Entry, n)
	for i := range entries {
		p := fmt.Sprintf("*.tool%d-%x.example.net", i, i*7919)
		if i%3 == 0 {
			p = fmt.Sprintf("app.tool%d-%x.example.org", i, i*7919)
		}
		entries[i] = allowlist.Entry{Pattern: p, Site: fmt.Sprintf("site-%d", i), Category: "other"}
	}
	return entries
}
