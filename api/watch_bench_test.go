package api_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/allowlist/storetest"
	"github.com/cross-gov/allowlist/api"
)

// BenchmarkWatchers holds WATCHERS (default 10,000) watches of common open
// on one registry over loopback HTTP, then brings a site to quorum and
// times until every watcher has its answer. It reports the memory the
// waiting watches take (client and server share the process: an upper
// bound for the server's share) and the time to wake them all. Run it
// with -benchtime 1x.
func BenchmarkWatchers(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("WATCHERS")); err == nil && v > 0 {
		n = v
	}
	// Go raises the soft limit on open files to the hard one; the server
	// holds a socket per watch.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < uint64(n)+512 {
		b.Fatalf("%d watches need more open files than the hard limit (%d) allows: raise it (ulimit -Hn) or set WATCHERS", n, lim.Max)
	}
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "registry.db"), sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	srv := api.New(db, api.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicLists: true, RequestsPerMinute: 1 << 30,
		WatchesPerAddress: 1 << 20}) // every watcher comes from 127.0.0.1
	db.Subscribe(srv.Published)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := srv.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	storetest.Seed(b, db, "dept-a", "dept-b")
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("site-%d", i)
		storetest.Must[allowlist.Site](b)(db.CreateSite(ctx, storetest.Owner("dept-a"), allowlist.SiteInput{ID: id, Name: "S", Category: "other",
			Domains: []string{id + ".example.org"}, Owner: allowlist.Owner{Name: "x"}}))
		storetest.Must[allowlist.Site](b)(db.SetSignoff(ctx, storetest.Owner("dept-a"), id, "dept-a", "approve", ""))
		cur := storetest.Must[allowlist.Version](b)(db.FindVersion(ctx, "common", allowlist.Latest)).Version
		runtime.GC()
		var before, waiting runtime.MemStats
		runtime.ReadMemStats(&before)
		// The watches come from other processes (this one's file limit
		// holds the server's side), each printing when its last answer
		// came.
		const procs = 4
		var outs []*bufio.Reader
		for p := range procs {
			cmd := exec.Command(os.Args[0], "-test.run=^TestWatchClient$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("WATCH_CLIENT=%s/v1/lists/common/watch?after=%d&timeout=300s", hs.URL, cur),
				fmt.Sprintf("WATCH_CLIENT_N=%d", n/procs+min(1, max(0, n%procs-p))))
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			outs = append(outs, bufio.NewReader(out))
		}
		for deadline := time.Now().Add(300 * time.Second); watching(b, hs.URL) < n; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d watches waiting", watching(b, hs.URL), n)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&waiting)
		t0 := time.Now()
		storetest.Must[allowlist.Site](b)(db.SetSignoff(ctx, storetest.Owner("dept-b"), id, "dept-b", "approve", ""))
		var last time.Time
		for _, out := range outs {
			line, err := out.ReadString('\n')
			at, ok := strings.CutPrefix(strings.TrimSpace(line), "done ")
			ns, perr := strconv.ParseInt(at, 10, 64)
			if err != nil || !ok || perr != nil {
				b.Fatalf("watch client: %q %v", line, err)
			}
			if t := time.Unix(0, ns); t.After(last) {
				last = t
			}
		}
		b.ReportMetric(float64(last.Sub(t0).Milliseconds()), "ms-to-wake-all")
		b.ReportMetric(float64(int64(waiting.HeapInuse+waiting.StackInuse)-int64(before.HeapInuse+before.StackInuse))/float64(n)/1024, "server-KiB/watcher")
		b.ReportMetric(float64(n), "watchers")
	}
}

// TestWatchClient is BenchmarkWatchers' client process: it holds
// WATCH_CLIENT_N watches on WATCH_CLIENT and prints "done UNIXNANO" when
// the last has its answer (a 200). It does nothing in a normal run.
func TestWatchClient(t *testing.T) {
	url := os.Getenv("WATCH_CLIENT")
	n, _ := strconv.Atoi(os.Getenv("WATCH_CLIENT_N"))
	if url == "" {
		t.Skip("BenchmarkWatchers runs it")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	for range n {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("watch answered %d", resp.StatusCode)
			}
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("done %d\n", last.UnixNano())
}

// watching reads the registry's allowlist_watchers gauge.
func watching(b *testing.B, url string) int {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "allowlist_watchers "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}
