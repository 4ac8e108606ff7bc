// Package resolver is the DNS resolver a department runs at its network
// edge. It pulls its scope's list from the registry, verifies the
// signature, keeps the last good copy on disk, and applies it to queries:
// enforce (answer blocked names locally), route (send them to other
// upstreams) or monitor (count what enforce would block).
//
// It depends on the published list format (allowlist.List) only: never on
// the registry's store, so it builds without cgo.
package resolver

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Modes.
const (
	ModeEnforce = "enforce"
	ModeRoute   = "route"
	ModeMonitor = "monitor"
)

// Block answers in enforce mode.
const (
	BlockNXDOMAIN = "nxdomain"
	BlockRefused  = "refused"
	BlockSinkhole = "sinkhole"
)

// DefaultCacheBytes bounds the answer cache when cache_bytes is not set:
// 8 MiB, about 28,000 typical answers. It is what Unbound gives its two
// caches by default (msg-cache-size 4m plus rrset-cache-size 4m).
const DefaultCacheBytes = 8 << 20

// DefaultCacheSize bounds the answer cache in answers when cache_size is
// not set.
const DefaultCacheSize = 100_000

// Options configure a Resolver. cmd/allowlist maps its YAML config here.
type Options struct {
	Listen            string
	Registry          string
	Scope             string
	Token             string
	PublicKey         ed25519.PublicKey
	CacheDir          string
	Mode              string
	Upstreams         []string
	FilteredUpstreams []string
	Block             string
	SinkholeV4        net.IP
	SinkholeV6        net.IP
	MetricsListen     string
	// RequestURL is where staff ask for a tool; it goes in the blocked
	// answer's Extended DNS Error text. Left empty, the text links to the
	// registry's check page for the blocked name instead, which says why
	// it is not on the list and how to ask for it.
	RequestURL string
	// MaxListAge: warn when the registry has not vouched (signed) that
	// the list held is current for this long.
	MaxListAge time.Duration
	// ListExpiry: past this age, OnExpiry decides: OnExpiryServe keeps
	// enforcing the list (loudly), OnExpiryFail answers as with no list.
	ListExpiry time.Duration
	OnExpiry   string
	// CAFile: PEM certificates that an https registry's must chain to,
	// instead of the system's roots.
	CAFile          string
	UpstreamTimeout time.Duration
	// CacheSize and CacheBytes bound the answer cache, in answers and in
	// bytes (answers plus a fixed cost per entry).
	CacheSize  int
	CacheBytes int64
	// WatchTimeout is how long one watch long-poll waits.
	WatchTimeout time.Duration
	// PollInterval is the wait between plain fetches when watch fails.
	PollInterval time.Duration
	// Report: usage reports to the registry (report.go); off when Every is 0.
	Report ReportOptions
	Logger *slog.Logger
}

// Resolver is the DNS resolver.
type Resolver struct {
	opt   Options
	log   *slog.Logger
	m     *metrics
	cache *cache
	fetch *fetcher

	fwd       *forwarder
	checkURL  string // the registry's check page, ending "&q=", for blocked answers; "" with a request_url of its own
	tail      atomic.Pointer[blockedTail]
	policy    atomic.Pointer[policy]
	freshness ageState // the list's signed age (freshness.go)
	usage     *usage   // usage counters and reports (report.go); nil: off
	// spoolInMemory is set once the cache directory could not take a
	// spooled list: later lists load in memory.
	spoolInMemory atomic.Bool
	// noHead is set once the registry showed it does not answer HEAD on
	// a watch: lists are then always taken whole.
	noHead atomic.Bool

	syncing sync.WaitGroup

	ln listeners
}

// listeners is what Start opened and Shutdown closes.
type listeners struct {
	mu       sync.Mutex
	udp      []*net.UDPConn
	tcp      net.Listener
	tcpConns map[net.Conn]struct{}
	httpSrv  *http.Server
	addrs    map[string]string
}

// New checks options and makes a Resolver; Start runs it.
func New(opt Options) (*Resolver, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.UpstreamTimeout <= 0 {
		opt.UpstreamTimeout = 2 * time.Second
	}
	if opt.CacheSize <= 0 {
		opt.CacheSize = DefaultCacheSize
	}
	if opt.CacheBytes <= 0 {
		opt.CacheBytes = DefaultCacheBytes
	}
	if opt.WatchTimeout <= 0 {
		opt.WatchTimeout = 30 * time.Second
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = 30 * time.Second
	}
	if opt.MaxListAge <= 0 {
		opt.MaxListAge = 24 * time.Hour
	}
	if err := checkFreshnessOptions(&opt); err != nil {
		return nil, err
	}
	if opt.Block == "" {
		opt.Block = BlockNXDOMAIN
	}
	if opt.SinkholeV4 == nil {
		opt.SinkholeV4 = net.IPv4zero
	}
	if opt.SinkholeV6 == nil {
		opt.SinkholeV6 = net.IPv6zero
	}
	checkURL := ""
	if opt.RequestURL == "" {
		// Every client that is refused a name reads this address: never
		// with the registry URL's user name or password, query or fragment.
		public := strings.TrimRight(opt.Registry, "/")
		if u, err := url.Parse(opt.Registry); err == nil {
			u.User, u.RawQuery, u.Fragment = nil, "", ""
			public = strings.TrimRight(u.String(), "/")
		}
		opt.RequestURL = public + "/"
		checkURL = opt.RequestURL + "check?department=" + url.QueryEscape(opt.Scope) + "&q="
	}
	switch {
	case len(opt.PublicKey) != ed25519.PublicKeySize:
		return nil, errors.New("public_key: an Ed25519 public key (base64) is required")
	case opt.Scope == "":
		return nil, errors.New("scope: required")
	case opt.CacheDir == "":
		return nil, errors.New("cache_dir: required")
	case len(opt.Upstreams) == 0:
		return nil, errors.New("upstreams: at least one is required")
	case opt.Mode != ModeEnforce && opt.Mode != ModeRoute && opt.Mode != ModeMonitor:
		return nil, fmt.Errorf("mode: %q is not enforce, route or monitor", opt.Mode)
	case opt.Mode == ModeRoute && len(opt.FilteredUpstreams) == 0:
		return nil, errors.New("filtered_upstreams: route mode needs at least one")
	case opt.Block != BlockNXDOMAIN && opt.Block != BlockRefused && opt.Block != BlockSinkhole:
		return nil, fmt.Errorf("block: %q is not nxdomain, refused or sinkhole", opt.Block)
	}
	for _, a := range append(append([]string{}, opt.Upstreams...), opt.FilteredUpstreams...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("upstream %q is not host:port", a)
		}
	}
	r := &Resolver{opt: opt, log: opt.Logger, cache: newCache(opt.CacheSize, opt.CacheBytes), ln: listeners{addrs: map[string]string{}}, checkURL: checkURL}
	r.m = newMetrics(r.listAge, r.cache.len, r.cache.size)
	r.registerFreshnessMetrics()
	r.fwd = newForwarder(r)
	client, err := registryClient(opt, opt.WatchTimeout+15*time.Second)
	if err != nil {
		return nil, err
	}
	r.fetch = &fetcher{base: strings.TrimRight(opt.Registry, "/"), scope: opt.Scope, token: opt.Token, client: client}
	if opt.Report.Every != 0 {
		if r.usage, err = newUsage(r, opt.Report); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Ready reports whether a verified list is being enforced.
func (r *Resolver) Ready() bool { return r.enforced() != nil }

// Version returns the version being enforced, or -1.
func (r *Resolver) Version() int64 {
	if p := r.policy.Load(); p != nil {
		return p.version
	}
	return -1
}

// Addr returns the bound address of a listener: "udp", "tcp" or "metrics".
func (r *Resolver) Addr(which string) string {
	r.ln.mu.Lock()
	defer r.ln.mu.Unlock()
	return r.ln.addrs[which]
}

// install swaps in a verified policy. Queries in flight finish with the
// policy they loaded; new ones see the new one. Nothing stalls.
func (r *Resolver) install(p *policy, from string) {
	r.policy.Store(p)
	r.installed(p)
	r.usage.listInstalled(p)
	r.m.listVersion.Set(float64(p.version))
	r.m.listEntries.Set(float64(p.entries))
	r.m.listBytes.Set(float64(p.matcher.Bytes()))
	// Verifying a list makes garbage several times its size (the body,
	// the decoded entries, the canonical form). Return it to the OS now
	// rather than whenever the scavenger gets to it: a resolver's memory
	// should be its list, not its last reload.
	debug.FreeOSMemory()
	r.log.Info("list installed", "scope", p.scope, "version", p.version, "entries", p.entries, "from", from)
}

// loadCache starts from the last good list on disk, if it verifies. A
// cache that fails is moved aside, never partly used. The file is read in
// place, twice (verify, then compile), never held whole.
func (r *Resolver) loadCache() {
	f, sig, off, n, err := openCache(r.opt.CacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var p *policy
	if err == nil {
		var info listInfo
		info, err = verifyStream(r.opt.PublicKey, r.opt.Scope, -1, io.NewSectionReader(f, off, n), sig)
		if err == nil {
			p, err = compileStream(io.NewSectionReader(f, off, n), info)
		}
		f.Close()
	}
	if err != nil {
		bad, qerr := quarantine(r.opt.CacheDir)
		r.m.syncErrors.WithLabelValues("cache_invalid").Inc()
		r.log.Error("cached list refused and set aside", "err", err, "moved_to", bad, "move_err", qerr)
		return
	}
	r.install(p, "cache")
	r.loadStamp()
}

// sync keeps the list current until ctx ends: a watch long-poll while the
// registry answers, plain fetches with backoff when it does not.
func (r *Resolver) sync(ctx context.Context) {
	go r.watchAge(ctx)
	failures := 0
	for ctx.Err() == nil {
		held := r.Version()
		began := time.Now()
		err := r.syncOnce(ctx, held, held >= 0 && failures == 0)
		if err == nil {
			failures = 0
			// A registry waits out a watch; whatever answers "nothing
			// new" at once in its name (a proxy replaying 304s) must
			// not make this loop spin.
			if wait := minSyncGap - time.Since(began); r.Version() == held && wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		reason := "fetch"
		var se *SyncError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		r.m.syncErrors.WithLabelValues(reason).Inc()
		r.log.Warn("list sync failed", "reason", reason, "err", err, "enforcing_version", held)
		r.checkAge()
		wait := backoff(failures, r.opt.PollInterval)
		failures++
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// syncOnce takes the next version: as a patch when the registry answers
// HEAD on the watch and the change applies to the held list, otherwise
// whole, from the watch (watch) or at once.
func (r *Resolver) syncOnce(ctx context.Context, held int64, watch bool) error {
	if watch && !r.noHead.Load() {
		a, stamp, err := r.fetch.head(ctx, held, r.opt.WatchTimeout)
		switch {
		case errors.Is(err, errNoHead):
			r.noHead.Store(true)
			r.log.Info("taking whole lists from now on", "why", err)
		case errors.Is(err, errHeadStatus):
			watch = false
		case err != nil:
			return err
		case a == nil:
			r.confirm()
			r.takeStamp(stamp)
			return nil
		default:
			r.confirm()
			r.takeStamp(stamp)
			err := r.patch(ctx, held, a)
			if err == nil || ctx.Err() != nil {
				return err
			}
			reason := "invalid"
			var pe *patchError
			if errors.As(err, &pe) {
				reason = pe.reason
			}
			r.m.patchFailures.WithLabelValues(reason).Inc()
			log := r.log.Warn
			if reason == "no_base" {
				log = r.log.Info
			}
			log("taking the new list whole instead of as a patch", "version", a.hdr.Version, "err", err)
			watch = false
		}
	}
	body, sig, stamp, err := r.fetch.fetch(ctx, held, watch, r.opt.WatchTimeout)
	if err != nil {
		return err
	}
	r.confirm()
	r.takeStamp(stamp)
	if body == nil {
		return nil
	}
	defer body.Close()
	return r.accept(body, sig, held)
}

// confirm records that the registry (or whatever answers in its name)
// answered. That says nothing about the list's age: see takeStamp.
func (r *Resolver) confirm() {
	r.m.lastSync.SetToCurrentTime()
}

// accept reads a fetched list as it arrives, verifies it, compiles it,
// installs it, and keeps it as the cache file. The body goes to a spool
// file while it is verified, and is compiled from there, so that a large
// list never sits in memory beside its matcher.
func (r *Resolver) accept(body io.Reader, sig string, held int64) error {
	start := time.Now()
	sp := newSpool(r.opt.CacheDir, sig, r.spoolInMemory.Load())
	defer sp.close()
	info, err := verifyStream(r.opt.PublicKey, r.opt.Scope, held, io.TeeReader(body, sp), sig)
	if err != nil {
		var se *spoolError
		if errors.As(err, &se) {
			// The disk is full or failing: load the next attempt in
			// memory; the old cache stays as it was.
			r.spoolInMemory.Store(true)
			r.log.Error("could not spool the list to the cache directory; loading in memory from now on", "err", err)
		}
		return err
	}
	if info.hdr.Version == held {
		if cur := r.policy.Load(); cur != nil && cur.sha256 != info.hdr.SHA256 {
			// Two different signed lists with one version number: the
			// registry (or its key) is misbehaving. Keep what we have.
			r.log.Error("CRITICAL: the registry signed different content under a version already held; keeping the held list",
				"version", held, "held_sha256", cur.sha256, "offered_sha256", info.hdr.SHA256)
			return syncErr("equivocation", "version %d offered with different content", held)
		}
		return nil
	}
	p, err := compileStream(sp.body(), info)
	if err != nil {
		return err
	}
	// Enforce first, then make the spool the cache: fsyncing 85 MB can
	// take longer than compiling it, and the cache only matters at the
	// next start.
	r.enforce(p, sp, "full", "registry", start)
	return nil
}

// enforce installs a new list that came from the registry (how: full or
// patch), then makes its spool the cache file. If that fails, the list is
// still good and enforced and the old cache stays intact: a patch then
// sees the cache is behind and the next version comes whole.
func (r *Resolver) enforce(p *policy, sp *spool, how, from string, start time.Time) {
	r.m.reloadSeconds.Observe(time.Since(start).Seconds())
	r.m.listUpdates.WithLabelValues(how).Inc()
	r.install(p, from)
	if err := sp.keep(); err != nil {
		r.m.syncErrors.WithLabelValues("cache_write").Inc()
		r.log.Error("could not write the list cache; the previous one stays", "err", err)
	} else if r.spoolInMemory.Swap(false) {
		r.log.Info("the cache directory takes writes again; spooling lists to it")
	}
}

// Start loads the cache, binds the DNS listeners (UDP and TCP) and the
// metrics listener, and starts syncing. It returns once listening.
func (r *Resolver) Start(ctx context.Context) error {
	r.loadCache()
	if r.opt.Listen != "" {
		conns, ln, err := bindPair(r.opt.Listen)
		if err != nil {
			return err
		}
		r.ln.mu.Lock()
		r.ln.udp = conns
		r.ln.addrs["udp"] = conns[0].LocalAddr().String()
		r.ln.mu.Unlock()
		go r.fwd.expire(min(r.opt.UpstreamTimeout/4, 100*time.Millisecond))
		for _, c := range conns {
			go r.serveUDP(c)
		}
		r.ln.mu.Lock()
		r.ln.tcp, r.ln.tcpConns = ln, map[net.Conn]struct{}{}
		r.ln.addrs["tcp"] = ln.Addr().String()
		r.ln.mu.Unlock()
		go r.serveTCP(ln)
	}
	if r.opt.MetricsListen != "" {
		ln, err := net.Listen("tcp", r.opt.MetricsListen)
		if err != nil {
			r.Shutdown()
			return fmt.Errorf("metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", r.m.handler)
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !r.Ready() {
				http.Error(w, "no verified list yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintf(w, "ready: scope %s version %d\n", r.opt.Scope, r.Version())
		})
		r.ln.mu.Lock()
		r.ln.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		r.ln.addrs["metrics"] = ln.Addr().String()
		r.ln.mu.Unlock()
		go r.ln.httpSrv.Serve(ln)
	}
	if r.usage != nil {
		go r.usage.run(ctx)
	}
	r.syncing.Add(1)
	go func() {
		defer r.syncing.Done()
		r.sync(ctx)
	}()
	return nil
}

// Wait returns once the list sync started by Start has ended (its context
// was cancelled), including any cache file write it had begun.
func (r *Resolver) Wait() { r.syncing.Wait() }

// bindPair binds the UDP sockets (SO_REUSEPORT, one per reader) and TCP on
// the same address. For port 0 it picks a port free for both, trying again
// when TCP finds the UDP port taken.
func bindPair(addr string) ([]*net.UDPConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		conns, err := listenUDP(addr, readers())
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", conns[0].LocalAddr().String())
		if err == nil {
			return conns, ln, nil
		}
		for _, c := range conns {
			c.Close()
		}
		if !strings.HasSuffix(addr, ":0") || attempt == 20 {
			return nil, nil, fmt.Errorf("listen tcp: %w", err)
		}
	}
}

// Shutdown stops the listeners.
func (r *Resolver) Shutdown() {
	r.ln.mu.Lock()
	defer r.ln.mu.Unlock()
	if r.ln.tcp != nil {
		r.ln.tcp.Close()
		for c := range r.ln.tcpConns {
			c.Close()
		}
		r.ln.tcp, r.ln.tcpConns = nil, nil
	}
	for _, c := range r.ln.udp {
		c.Close()
	}
	r.ln.udp = nil
	r.fwd.close()
	if r.ln.httpSrv != nil {
		r.ln.httpSrv.Close()
	}
}
