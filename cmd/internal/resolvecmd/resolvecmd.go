// Package resolvecmd runs the DNS resolver from its YAML config file: the
// one implementation behind `allowlist resolve` and the resolver-only
// executable `allowlist-resolver`. It never imports the registry's store,
// HTTP framework or pages, so a main that uses it alone stays small.
package resolvecmd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cross-gov/allowlist/resolver"
	"gopkg.in/yaml.v3"
)

// Config is the resolver's YAML configuration (docs/contract.md, plus
// optional tuning keys).
type Config struct {
	Listen            string   `yaml:"listen"`
	Registry          string   `yaml:"registry"`
	Scope             string   `yaml:"scope"`
	Token             string   `yaml:"token"`
	PublicKey         string   `yaml:"public_key"`
	CacheDir          string   `yaml:"cache_dir"`
	Mode              string   `yaml:"mode"`
	Upstreams         []string `yaml:"upstreams"`
	FilteredUpstreams []string `yaml:"filtered_upstreams"`
	Block             string   `yaml:"block"`
	MetricsListen     string   `yaml:"metrics_listen"`

	SinkholeIPv4    string        `yaml:"sinkhole_ipv4"`
	SinkholeIPv6    string        `yaml:"sinkhole_ipv6"`
	RequestURL      string        `yaml:"request_url"`
	MaxListAge      time.Duration `yaml:"max_list_age"`
	ListExpiry      time.Duration `yaml:"list_expiry"`
	OnExpiry        string        `yaml:"on_expiry"`
	CAFile          string        `yaml:"ca_file"`
	WatchTimeout    time.Duration `yaml:"watch_timeout"`
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	CacheSize       int           `yaml:"cache_size"`
	CacheBytes      int64         `yaml:"cache_bytes"`
	PollInterval    time.Duration `yaml:"poll_interval"`
	LogLevel        string        `yaml:"log_level"`
	// Report turns on usage reports to the registry (absent: off).
	Report *ReportConfig `yaml:"report"`
}

// ReportConfig is the report: section. A key left out (or 0) takes its
// default: every 15m, k 5, department the scope's.
type ReportConfig struct {
	Every      time.Duration `yaml:"every"`
	K          int           `yaml:"k"`
	Department string        `yaml:"department"`
}

// Default is what a missing key means.
func Default() Config {
	return Config{Listen: "127.0.0.1:5353", Registry: "http://127.0.0.1:8080", Scope: "common", CacheDir: "./var/resolver",
		Mode: resolver.ModeEnforce, Upstreams: []string{"127.0.0.1:53"}, Block: resolver.BlockNXDOMAIN, MetricsListen: "127.0.0.1:9153",
		SinkholeIPv4: "0.0.0.0", SinkholeIPv6: "::", MaxListAge: 24 * time.Hour, ListExpiry: 7 * 24 * time.Hour, OnExpiry: resolver.OnExpiryServe,
		WatchTimeout: 30 * time.Second, UpstreamTimeout: 2 * time.Second,
		CacheSize: resolver.DefaultCacheSize, CacheBytes: resolver.DefaultCacheBytes, PollInterval: 30 * time.Second, LogLevel: "info"}
}

// options turns the file into resolver options, naming the key at fault.
func (c Config) options(log *slog.Logger) (resolver.Options, error) {
	key, err := base64.StdEncoding.DecodeString(c.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return resolver.Options{}, errors.New("public_key: give the registry's base64 Ed25519 key (allowlist keygen, or GET /v1/keys)")
	}
	if c.CacheBytes < 1<<20 {
		return resolver.Options{}, fmt.Errorf("cache_bytes: %d is less than 1 MiB (1048576); the default is %d", c.CacheBytes, resolver.DefaultCacheBytes)
	}
	v4, v6 := net.ParseIP(c.SinkholeIPv4), net.ParseIP(c.SinkholeIPv6)
	if v4 == nil || v4.To4() == nil {
		return resolver.Options{}, fmt.Errorf("sinkhole_ipv4: %q is not an IPv4 address", c.SinkholeIPv4)
	}
	if v6 == nil {
		return resolver.Options{}, fmt.Errorf("sinkhole_ipv6: %q is not an IPv6 address", c.SinkholeIPv6)
	}
	if c.WatchTimeout < time.Second || c.WatchTimeout > 5*time.Minute {
		return resolver.Options{}, fmt.Errorf("watch_timeout: %v is not between 1s and 5m (the registry's limit)", c.WatchTimeout)
	}
	var report resolver.ReportOptions
	if c.Report != nil {
		report = resolver.ReportOptions{Every: c.Report.Every, K: c.Report.K, Department: c.Report.Department}
		if report.Every == 0 {
			report.Every = 15 * time.Minute
		}
		if report.K == 0 {
			report.K = 5
		}
	}
	return resolver.Options{Report: report, Listen: c.Listen, Registry: c.Registry, Scope: c.Scope, Token: c.Token, PublicKey: key,
		CacheDir: c.CacheDir, Mode: c.Mode, Upstreams: c.Upstreams, FilteredUpstreams: c.FilteredUpstreams, Block: c.Block,
		SinkholeV4: v4.To4(), SinkholeV6: v6, MetricsListen: c.MetricsListen, RequestURL: c.RequestURL, MaxListAge: c.MaxListAge,
		ListExpiry: c.ListExpiry, OnExpiry: c.OnExpiry, CAFile: c.CAFile, WatchTimeout: c.WatchTimeout,
		UpstreamTimeout: c.UpstreamTimeout, CacheSize: c.CacheSize, CacheBytes: c.CacheBytes, PollInterval: c.PollInterval, Logger: log}, nil
}

// ParseLevel reads a log_level key.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log_level: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// LoadYAML decodes a config file strictly over defaults.
func LoadYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Run runs the resolver from the config file at configPath (listen, if
// not empty, overrides its listen key) until SIGINT or SIGTERM. It prints
// one line to stdout once it listens and logs JSON to stderr. SIGUSR1
// sends the usage report now.
func Run(configPath, listen string, stdout, stderr io.Writer) error {
	cfg := Default()
	if configPath == "" {
		return errors.New("--config is required")
	}
	if err := LoadYAML(configPath, &cfg); err != nil {
		return err
	}
	if listen != "" {
		cfg.Listen = listen
	}
	level, err := ParseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts, err := cfg.options(log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	r, err := resolver.New(opts)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if os.Getenv("GOGC") == "" {
		// Most of a resolver's heap is its list and its answer cache, both
		// long-lived: collecting at 25% growth instead of Go's default 100%
		// keeps its memory near what they take (cache_bytes bounds the
		// cache) for a little more collection work on cache misses.
		debug.SetGCPercent(25)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := r.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resolver listening on %s (udp) %s (tcp), metrics on %s, mode %s, scope %s\n",
		r.Addr("udp"), r.Addr("tcp"), r.Addr("metrics"), cfg.Mode, cfg.Scope)
	// SIGUSR1: end the usage report's period now and send it.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			r.ReportNow()
		}
	}()
	<-ctx.Done()
	log.Info("shutting down")
	r.Shutdown()
	r.Wait() // a cache file being written is finished, not left half-done
	return nil
}
