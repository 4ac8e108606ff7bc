package resolver

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// BenchmarkLoadList measures verifying and compiling a signed list of 1k,
// 100k and 1M entries (a reload), and the heap the installed policy keeps.
func BenchmarkLoadList(b *testing.B) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		entries := make([]allowlist.Entry, n)
		for i := range entries {
			p := fmt.Sprintf("*.tool%d-%x.example.net", i, i*7919)
			if i%3 == 0 {
				p = fmt.Sprintf("app.tool%d-%x.example.org", i, i*7919)
			}
			entries[i] = allowlist.Entry{Pattern: p, Site: fmt.Sprintf("site-%d", i), Category: "other"}
		}
		_, body := allowlist.NewList("common", 1, time.Now(), entries)
		sig := allowlist.SignList(key, body)
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
