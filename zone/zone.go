// Package zone serves every scope's list as a DNS response policy zone by
// zone transfer, for departments whose own DNS servers (BIND, Unbound,
// PowerDNS Recursor, ...) take policy feeds as RPZ secondaries: AXFR and
// IXFR (RFC 1995) over TCP, SOA over UDP and TCP, TSIG (HMAC-SHA256) on
// every transfer, and NOTIFY (RFC 1996) to configured targets when a
// scope's version moves on.
//
// The zone SCOPE.SUFFIX holds exactly the rpz-passthru names that the
// list's ?format=rpz rendering holds (allowlist.RPZOwners), with the
// version as SOA serial. It knows the registry only through Source.
package zone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/singleflight"
)

// Source is what the zone server reads from the registry.
type Source interface {
	FindScopes(ctx context.Context) ([]allowlist.ScopeInfo, error)
	FindVersion(ctx context.Context, scope string, version int64) (allowlist.Version, error)
	FindTSIGSecrets(ctx context.Context) ([]allowlist.TSIGSecret, error)
	AuditTransferRefused(ctx context.Context, key, remote, scope, reason string) error
}

// DefaultSuffix is the name below which scopes' zones live.
const DefaultSuffix = "rpz.allowlist."

// Target is where NOTIFY messages go: host:port, for the scopes named, or
// for every scope when Scopes is empty.
type Target struct {
	Addr   string   `yaml:"target"`
	Scopes []string `yaml:"scopes"`
}

// Config configures the server.
type Config struct {
	// Listen is the host:port for UDP and TCP.
	Listen string
	// Suffix is the zones' parent name (default DefaultSuffix).
	Suffix string
	Notify []Target
	Logger *slog.Logger
	// RefreshEvery is how often versions published by other processes
	// are looked for (default 2 s).
	RefreshEvery time.Duration
	// UnsignedFrom lets clients in these networks transfer every scope
	// without a TSIG key, for DNS servers that cannot sign a transfer
	// (Unbound before 1.19). Empty by default.
	UnsignedFrom []netip.Prefix
	// CacheBytes bounds the zones held in memory, by the size of their
	// list bodies (default 1 GiB); the current version of a scope that is
	// being transferred is always held.
	CacheBytes int
}

// Server is the zone-transfer server.
type Server struct {
	src     Source
	cfg     Config
	log     *slog.Logger
	keys    *keyring
	metrics *metrics

	mu       sync.Mutex
	versions map[string]int64
	cache    map[zoneKey]*zoneData
	used     int64 // clock for least-recently-used eviction
	flight   singleflight.Group

	notifier *notifier
	refused  *refusals
	udp, tcp *dns.Server
}

type zoneKey struct {
	scope   string
	version int64
}

// zoneData is one version of a zone: its owner names sorted, and the
// list's entries (sorted by pattern), from which the next version's zone
// is built. Both point into the list body they were decoded from, which
// they keep in memory; size is that body's length, for the cache bound.
type zoneData struct {
	names   []string
	entries []allowlist.Entry
	size    int
	used    int64
}

func (z *zoneData) bytes() int { return z.size + 16*len(z.names) + 48*len(z.entries) }

// New checks the configuration and builds a server; Start runs it.
func New(src Source, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Suffix == "" {
		cfg.Suffix = DefaultSuffix
	}
	cfg.Suffix = dns.CanonicalName(cfg.Suffix)
	if _, ok := dns.IsDomainName(cfg.Suffix); !ok || cfg.Suffix == "." {
		return nil, fmt.Errorf("zone suffix %q is not a domain name", cfg.Suffix)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("dns_listen: %q is not host:port", cfg.Listen)
	}
	for i, t := range cfg.Notify {
		if _, _, err := net.SplitHostPort(t.Addr); err != nil {
			return nil, fmt.Errorf("notify[%d]: %q is not host:port", i, t.Addr)
		}
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 2 * time.Second
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 1 << 30
	}
	s := &Server{src: src, cfg: cfg, log: cfg.Logger, metrics: newMetrics(),
		versions: map[string]int64{}, cache: map[zoneKey]*zoneData{}}
	s.keys = &keyring{src: src, log: cfg.Logger}
	s.notifier = newNotifier(s)
	s.refused = &refusals{seen: map[string]time.Time{}}
	return s, nil
}

// Origin is the zone name of a scope.
func (s *Server) Origin(scope string) string { return scope + "." + s.cfg.Suffix }

// Start loads the scopes' versions, listens on UDP and TCP, and keeps the
// versions fresh until ctx ends. It returns once both listeners are open.
// MaxTCPConnections bounds the listener's simultaneous TCP connections:
// secondaries transfer one zone at a time, and a few hundred departments'
// servers are far more than any one registry serves at once.
const MaxTCPConnections = 256

func (s *Server) Start(ctx context.Context) error {
	if err := s.refresh(ctx, false); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dns_listen: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns_listen: %w", err)
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: s, TsigProvider: s.keys}
	// A bounded number of TCP clients at once, each with 3 s to send its
	// query: idle connections cannot take the process's file descriptors
	// (which the HTTP API needs too).
	ln = netutil.LimitListener(ln, MaxTCPConnections)
	s.tcp = &dns.Server{Listener: ln, Handler: s, TsigProvider: s.keys, WriteTimeout: 30 * time.Second, ReadTimeout: 3 * time.Second}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				s.log.Error("zone transfer listener stopped", "err", err)
			}
		}()
	}
	go func() {
		t := time.NewTicker(s.cfg.RefreshEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.Close()
				return
			case <-t.C:
				if err := s.refresh(ctx, true); err != nil && ctx.Err() == nil {
					s.log.Warn("zone versions", "err", err)
				}
			}
		}
	}()
	// A restarted primary tells its secondaries to look (RFC 1996 3.7).
	s.mu.Lock()
	for scope, v := range s.versions {
		s.notifier.send(scope, v)
	}
	s.mu.Unlock()
	s.log.Info("zone transfer listening", "udp", pc.LocalAddr().String(), "tcp", ln.Addr().String(), "suffix", s.cfg.Suffix, "notify", len(s.cfg.Notify))
	return nil
}

// Addr is the TCP address the server listens on (the UDP one has the same
// port when Listen names one).
func (s *Server) Addr() string { return s.tcp.Listener.Addr().String() }

// UDPAddr is the UDP address the server listens on.
func (s *Server) UDPAddr() string { return s.udp.PacketConn.LocalAddr().String() }

// Close stops the listeners and pending NOTIFYs.
func (s *Server) Close() {
	s.notifier.stop()
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv != nil {
			srv.Shutdown()
		}
	}
}

// Published tells the server about a version the store has just
// committed: its secondaries are notified at once and, for a scope that
// has been transferred before, the zone is built from the bytes already
// in memory while they ask for it.
func (s *Server) Published(v allowlist.Version) {
	if !s.setVersion(v.Scope, v.Version) {
		return
	}
	s.notifier.send(v.Scope, v.Version)
	if !s.transferred(v.Scope) {
		return // built when first asked for
	}
	go func() {
		build := func() (*zoneData, error) {
			if z, ok := s.next(v); ok {
				return z, nil
			}
			return buildZone(v.Scope, v.Version, v.Whole())
		}
		if _, err := s.zone(context.Background(), v.Scope, v.Version, build); err != nil {
			s.log.Warn("build zone", "scope", v.Scope, "version", v.Version, "err", err)
		}
	}()
}

// next builds v's zone from the previous version's, when that is held
// and v's changes are known.
func (s *Server) next(v allowlist.Version) (*zoneData, bool) {
	if v.Changes == nil {
		return nil, false
	}
	s.mu.Lock()
	prev, ok := s.cache[zoneKey{v.Scope, v.Version - 1}]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	var added, removed []allowlist.Entry
	if json.Unmarshal(v.Changes.Added, &added) != nil || json.Unmarshal(v.Changes.Removed, &removed) != nil {
		return nil, false
	}
	z, ok := nextZone(prev, added, removed, v.Entries)
	if !ok {
		s.log.Warn("zone: changes do not fit the previous version; building in full", "scope", v.Scope, "version", v.Version)
	}
	return z, ok
}

// buildZone builds a version's zone from its list body.
func buildZone(scope string, version int64, body []byte) (*zoneData, error) {
	l, err := allowlist.DecodeList(body)
	if err != nil {
		return nil, fmt.Errorf("stored list %s/%d: %w", scope, version, err)
	}
	if l.Scope != scope || l.Version != version {
		return nil, fmt.Errorf("stored list %s/%d says it is %s/%d", scope, version, l.Scope, l.Version)
	}
	names := allowlist.RPZOwners(l.Entries)
	slices.Sort(names)
	return &zoneData{names: names, entries: l.Entries, size: len(body)}, nil
}

// transferred reports whether some version of a scope's zone is held: a
// scope that secondaries follow, whose next version is worth building
// before they ask.
func (s *Server) transferred(scope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if k.scope == scope {
			return true
		}
	}
	return false
}

// setVersion records a scope's version; it reports whether it is newer.
func (s *Server) setVersion(scope string, v int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.versions[scope]; ok && cur >= v {
		return false
	}
	s.versions[scope] = v
	return true
}

func (s *Server) version(scope string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[scope]
	return v, ok
}

// refresh reads every scope's version; a scope that moved on (published
// by another process) is notified when notify is set.
func (s *Server) refresh(ctx context.Context, notify bool) error {
	scopes, err := s.src.FindScopes(ctx)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		if s.setVersion(sc.Scope, sc.Version) && notify {
			s.notifier.send(sc.Scope, sc.Version)
		}
	}
	return nil
}

// zone returns a version of a scope's zone, building it once however many
// ask: with build when it is not nil, else from the stored list.
func (s *Server) zone(ctx context.Context, scope string, version int64, build func() (*zoneData, error)) (*zoneData, error) {
	k := zoneKey{scope, version}
	s.mu.Lock()
	if z, ok := s.cache[k]; ok {
		s.used++
		z.used = s.used
		s.mu.Unlock()
		return z, nil
	}
	s.mu.Unlock()
	out, err, _ := s.flight.Do(fmt.Sprintf("%s/%d", scope, version), func() (any, error) {
		if build == nil {
			build = func() (*zoneData, error) {
				v, err := s.src.FindVersion(context.WithoutCancel(ctx), scope, version)
				if err != nil {
					return nil, err
				}
				return buildZone(scope, version, v.Whole())
			}
		}
		z, err := build()
		if err != nil {
			return nil, err
		}
		s.keep(k, z)
		return z, nil
	})
	if err != nil {
		return nil, err
	}
	return out.(*zoneData), nil
}

// keep caches a zone, evicting the least recently used others past the
// byte bound.
func (s *Server) keep(k zoneKey, z *zoneData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used++
	z.used = s.used
	s.cache[k] = z
	total := 0
	for _, c := range s.cache {
		total += c.bytes()
	}
	for total > s.cfg.CacheBytes && len(s.cache) > 1 {
		var oldest zoneKey
		var found *zoneData
		for ck, c := range s.cache {
			if ck != k && (found == nil || c.used < found.used) {
				oldest, found = ck, c
			}
		}
		if found == nil {
			return
		}
		delete(s.cache, oldest)
		total -= found.bytes()
	}
}

// scopeOf returns the scope whose zone is name, or false.
func (s *Server) scopeOf(name string) (string, bool) {
	scope, ok := strings.CutSuffix(dns.CanonicalName(name), "."+s.cfg.Suffix)
	if !ok || scope == "" || strings.Contains(scope, ".") {
		return "", false
	}
	_, known := s.version(scope)
	return scope, known
}

func (s *Server) soa(scope string, version int64) *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: s.Origin(scope), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: allowlist.RPZTTL},
		Ns: "localhost.", Mbox: "hostmaster.localhost.", Serial: uint32(version),
		Refresh: allowlist.RPZRefresh, Retry: allowlist.RPZRetry, Expire: allowlist.RPZExpire, Minttl: allowlist.RPZMinimum}
}

func (s *Server) ns(scope string) *dns.NS {
	return &dns.NS{Hdr: dns.RR_Header{Name: s.Origin(scope), Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: allowlist.RPZTTL}, Ns: "localhost."}
}

var errNotFound = errors.New("not found")
