package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/data"
	"github.com/cross-gov/allowlist/notify"
	"github.com/cross-gov/allowlist/web"
	"github.com/cross-gov/allowlist/zone"
	"golang.org/x/net/netutil"
)

// ServeConfig is the registry's configuration file.
type ServeConfig struct {
	Listen            string `yaml:"listen"`
	DB                string `yaml:"db"`
	Quorum            int    `yaml:"quorum"`
	PublicLists       bool   `yaml:"public_lists"`
	SigningKey        string `yaml:"signing_key"`
	LogLevel          string `yaml:"log_level"`
	Seed              bool   `yaml:"seed"`
	RequestsPerMinute int    `yaml:"requests_per_minute"`
	// UsageK is the least number of distinct clients a refused domain
	// needs in a usage report and in public totals (docs/privacy.md).
	UsageK int `yaml:"usage_k"`
	// MaxConnections caps open client connections (0: what the process's
	// file limit allows, less a reserve for the database and logs), and
	// WatchesPerAddress the watches one client address may hold.
	MaxConnections    int `yaml:"max_connections"`
	WatchesPerAddress int `yaml:"watches_per_address"`
	// PublicURL is the address people use, such as https://allowlist.example.gov.uk
	// behind a TLS proxy: with https, cookies are Secure and pages send HSTS.
	PublicURL string `yaml:"public_url"`
	// TLSCert and TLSKey (PEM files) make the registry serve https
	// itself; both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TimestampInterval is how often each scope's freshness timestamp is
	// signed again.
	TimestampInterval time.Duration `yaml:"timestamp_interval"`
	// Governance and Notifications: see docs/operations.md.
	Governance    GovernanceConfig    `yaml:"governance"`
	Notifications NotificationsConfig `yaml:"notifications"`
	ZoneConfig    `yaml:",inline"`
}

// DefaultServeConfig is what a missing file or key means.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{Listen: "127.0.0.1:8080", DB: "var/registry.db", Quorum: allowlist.DefaultQuorum, PublicLists: true, LogLevel: "info",
		RequestsPerMinute: api.DefaultRequestsPerMinute, UsageK: allowlist.UsageDefaultK, TimestampInterval: api.DefaultTimestampEvery}
}

// Validate names the first bad key.
func (c ServeConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if c.DB == "" {
		return errors.New("db: a path is required")
	}
	if c.Quorum < 1 || c.Quorum > 1000 {
		return fmt.Errorf("quorum: %d is not between 1 and 1000", c.Quorum)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.RequestsPerMinute < 1 {
		return errors.New("requests_per_minute: must be at least 1")
	}
	if c.UsageK < allowlist.UsageMinK {
		return fmt.Errorf("usage_k: %d is less than %d", c.UsageK, allowlist.UsageMinK)
	}
	if c.MaxConnections < 0 || c.WatchesPerAddress < 0 {
		return errors.New("max_connections and watches_per_address: must not be negative")
	}
	if err := c.Governance.Validate(); err != nil {
		return err
	}
	if _, err := c.Notifications.runner(c.PublicURL); err != nil {
		return err
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("public_url: %q is not an http(s) address such as https://allowlist.example.gov.uk", c.PublicURL)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert, tls_key: give both (PEM files) or neither")
	}
	if c.TimestampInterval < time.Second || c.TimestampInterval > 10*time.Minute {
		return fmt.Errorf("timestamp_interval: %v is not between 1s and 10m", c.TimestampInterval)
	}
	return nil
}

func runServe(args []string, stdout, stderr io.Writer) error {
	cfg, clockFile, err := serveConfig(args, stderr)
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	var certs *certFiles
	if cfg.TLSCert != "" {
		if certs, err = newCertFiles(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}

	now := time.Now
	if clockFile != "" {
		now = (&offsetClock{path: clockFile}).Now
	}
	store, err := openDB(cfg.DB, cfg.SigningKey, sqlite.Options{Quorum: cfg.Quorum, Now: now, Policy: cfg.Governance.Policy()})
	if err != nil {
		return err
	}
	defer store.Close()
	// Each part that follows new versions subscribes to the store once it
	// exists: the log here, then the API, the timers and the zone server.
	store.Subscribe(func(v allowlist.Version) {
		log.Info("list published", "scope", v.Scope, "version", v.Version, "entries", v.Entries, "added", v.Added, "removed", v.Removed)
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Seed {
		if err := seedOnce(ctx, store, stdout, log); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	pageBase := cfg.PublicURL
	if pageBase == "" {
		pageBase = "http://" + ln.Addr().String()
		if certs != nil {
			pageBase = "https://" + ln.Addr().String()
		}
	}
	ready := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return store.Ping(ctx)
	}
	srv := api.New(store, api.Config{PublicLists: cfg.PublicLists, Quorum: store.Quorum(), RequestsPerMinute: cfg.RequestsPerMinute, UsageK: cfg.UsageK, WatchesPerAddress: cfg.WatchesPerAddress,
		TimestampEvery: cfg.TimestampInterval, Logger: log, Ready: ready, PublicURL: pageBase, Now: now})
	store.Subscribe(srv.Published)
	web.New(store, srv, webOptions(cfg, log)).Register(srv.Echo())
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startBackground(runCtx, cfg, store, srv, log); err != nil {
		return err
	}
	return serveHTTP(ctx, cancel, cfg, ln, certs, store, srv, log, stdout)
}

// serveConfig reads serve's flags over its YAML config file (flags win)
// and checks the result. It also returns --clock-offset-file, which is for
// drills and tests and has no place in the file.
func serveConfig(args []string, stderr io.Writer) (ServeConfig, string, error) {
	fs := newFlags("serve", "serve [--config FILE] [--db PATH] [--listen ADDR] [--seed] [--dns-listen ADDR [--notify HOST:PORT]...]", stderr)
	configPath := fs.String("config", "", "YAML config file (flags override it)")
	def := DefaultServeConfig()
	db := fs.String("db", def.DB, "database: SQLite path (created if missing) or postgres:// URL")
	listen := fs.String("listen", def.Listen, "address to listen on")
	quorum := fs.Int("quorum", def.Quorum, "approvals that put a site on the common list")
	publicLists := fs.Bool("public-lists", def.PublicLists, "let anyone read published lists")
	keyPath := fs.String("signing-key", "", "Ed25519 signing key (default: DB path + .key for SQLite, $ALLOWLIST_SIGNING_KEY for PostgreSQL; created if missing)")
	logLevel := fs.String("log-level", def.LogLevel, "debug, info, warn or error")
	seed := fs.Bool("seed", false, "load the built-in catalogue into an empty registry and print an admin token")
	publicURL := fs.String("public-url", "", "the address people use (https://... behind a TLS proxy: Secure cookies and HSTS)")
	tlsCert := fs.String("tls-cert", "", "serve https with this PEM certificate (chain); needs --tls-key")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	stampEvery := fs.Duration("timestamp-interval", def.TimestampInterval, "how often lists' freshness timestamps are signed again")
	clockFile := fs.String("clock-offset-file", "", "for drills and tests only: a file holding a duration (such as 336h) added to the registry's clock")
	dnsListen := fs.String("dns-listen", "", "serve every scope as an RPZ zone by zone transfer (AXFR/IXFR, TSIG) on this address")
	var notifyTo stringList
	fs.Var(&notifyTo, "notify", "send DNS NOTIFY for every scope to this host:port (repeat)")
	if _, err := parse(fs, args); err != nil {
		return def, "", err
	}
	cfg := def
	if *configPath != "" {
		if err := loadYAML(*configPath, &cfg); err != nil {
			return def, "", err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "db":
			cfg.DB = *db
		case "listen":
			cfg.Listen = *listen
		case "quorum":
			cfg.Quorum = *quorum
		case "public-lists":
			cfg.PublicLists = *publicLists
		case "signing-key":
			cfg.SigningKey = *keyPath
		case "log-level":
			cfg.LogLevel = *logLevel
		case "seed":
			cfg.Seed = *seed
		case "public-url":
			cfg.PublicURL = *publicURL
		case "tls-cert":
			cfg.TLSCert = *tlsCert
		case "tls-key":
			cfg.TLSKey = *tlsKey
		case "timestamp-interval":
			cfg.TimestampInterval = *stampEvery
		case "dns-listen":
			cfg.DNSListen = *dnsListen
		case "notify":
			cfg.Notify = nil
			for _, n := range notifyTo {
				cfg.Notify = append(cfg.Notify, notifyTarget{Addr: n})
			}
		}
	})
	if err := cfg.Validate(); err != nil {
		return def, "", fmt.Errorf("config: %w", err)
	}
	return cfg, *clockFile, nil
}

// startBackground starts what runs beside the HTTP server until runCtx
// ends: governance timers and notifications, the PostgreSQL listener for
// other instances' versions, the zone server, and the cache warm-up.
func startBackground(runCtx context.Context, cfg ServeConfig, store *sqlite.DB, srv *api.Server, log *slog.Logger) error {
	if err := srv.Start(runCtx); err != nil {
		return err
	}
	ncfg, _ := cfg.Notifications.runner(cfg.PublicURL) // validated in serveConfig
	ncfg.Logger = log
	timers := notify.New(store, ncfg)
	store.Subscribe(func(allowlist.Version) { timers.Changed() })
	if err := timers.Start(runCtx); err != nil {
		return err
	}
	if postgres.IsURL(cfg.DB) {
		// Versions other instances publish wake this one's watchers as
		// soon as they commit; after a reconnect, every scope's version is
		// read again, so that none published meanwhile is missed.
		l := &postgres.Listener{URL: cfg.DB, Version: srv.Notify, Reconcile: srv.Refresh,
			LogError: func(err error) { log.Warn("listening for other instances' versions", "err", err) }}
		go l.Listen(runCtx)
	}
	if cfg.DNSListen != "" {
		if err := startZone(runCtx, cfg.ZoneConfig, store, srv, log); err != nil {
			return err
		}
	}
	// Load what the first write would otherwise load itself (seconds at a
	// million entries); writes wait for it, reads do not.
	go func() {
		start := time.Now()
		if err := store.Warm(runCtx); err != nil {
			log.Warn("warming the registry's caches", "err", err)
			return
		}
		log.Info("registry caches warm", "took", time.Since(start).Round(time.Millisecond).String())
	}()
	return nil
}

// serveHTTP serves the API and pages on ln until ctx ends (SIGINT or
// SIGTERM), then stops background work (cancel), lets requests in flight
// finish for up to 15 seconds, and closes the database.
func serveHTTP(ctx context.Context, cancel context.CancelFunc, cfg ServeConfig, ln net.Listener, certs *certFiles, store *sqlite.DB, srv *api.Server, log *slog.Logger, stdout io.Writer) error {
	// Past this many open connections new ones wait in the kernel's
	// backlog instead of failing the process's accept with "too many open
	// files" (which would stop every page, API call and watch).
	maxConns := connectionLimit(cfg.MaxConnections)
	if cfg.DNSListen != "" && cfg.MaxConnections == 0 {
		maxConns = max(64, maxConns-zone.MaxTCPConnections) // the zone listener's share
	}
	ln = netutil.LimitListener(ln, maxConns)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	// Watch requests may legitimately wait minutes, so there is no
	// WriteTimeout; each handler bounds its own time.
	errc := make(chan error, 1)
	scheme := "http"
	if certs != nil {
		scheme = "https"
		hs.TLSConfig = certs.tlsConfig()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	log.Info("registry listening", "addr", ln.Addr().String(), "scheme", scheme, "max_connections", maxConns, "db", redact(cfg.DB), "quorum", store.Quorum(), "public_lists", cfg.PublicLists)
	fmt.Fprintf(stdout, "registry listening on %s://%s\n", scheme, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	cancel() // stop refreshing; watchers end with their clients or timeouts
	shutdown, done := context.WithTimeout(context.Background(), 15*time.Second)
	defer done()
	if err := hs.Shutdown(shutdown); err != nil {
		log.Warn("shutdown", "err", err)
		hs.Close()
	}
	if err := store.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// connectionLimit is the configured cap, or the process's open-file limit
// less 256 for the database, logs and outgoing connections.
func connectionLimit(configured int) int {
	if configured > 0 {
		return configured
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 512 {
		return 256
	}
	return int(min(rl.Cur-256, 1<<20))
}

// webOptions decides how the pages' cookies are marked. Behind https
// (public_url) they are Secure and pages send HSTS; on a loopback listener
// with no https public address (development) they cannot be Secure, or
// the browser would drop them over plain http; anywhere else they are.
func webOptions(cfg ServeConfig, log *slog.Logger) web.Options {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	https := strings.HasPrefix(cfg.PublicURL, "https://") || cfg.TLSCert != ""
	return web.Options{SecureCookies: https || !loopback, HSTS: https, Logger: log}
}

// seedOnce loads the built-in catalogue into a registry that has no
// departments and no sites yet, and prints a new admin token, once.
func seedOnce(ctx context.Context, store *sqlite.DB, stdout io.Writer, log *slog.Logger) error {
	depts, err := store.FindDepartments(ctx)
	if err != nil {
		return err
	}
	sites, err := store.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return err
	}
	if len(depts) > 0 || len(sites) > 0 {
		log.Info("registry already has data: not seeding")
		return nil
	}
	c, err := decodeCatalogue(data.Catalogue)
	if err != nil {
		return fmt.Errorf("built-in catalogue: %w", err)
	}
	if err := store.Import(ctx, allowlist.System, c); err != nil {
		return fmt.Errorf("built-in catalogue: %w", err)
	}
	_, secret, err := store.CreateToken(ctx, allowlist.System, allowlist.Token{Role: allowlist.RoleAdmin, Name: "first-admin"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d departments and %d sites\n", len(c.Departments), len(c.Sites))
	fmt.Fprintln(stdout, strings.Repeat("-", 72))
	fmt.Fprintln(stdout, "Admin token (shown once; keep it safe):")
	fmt.Fprintln(stdout, "  "+secret)
	fmt.Fprintln(stdout, strings.Repeat("-", 72))
	return nil
}
