package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/zone"
	"gopkg.in/yaml.v3"
)

// ZoneConfig is the zone-transfer part of the registry's configuration.
type ZoneConfig struct {
	// DNSListen, when set, serves every scope as an RPZ zone by AXFR/IXFR.
	DNSListen string `yaml:"dns_listen"`
	// RPZSuffix is the zones' parent name (default rpz.allowlist.).
	RPZSuffix string `yaml:"rpz_suffix"`
	// Notify lists the DNS servers told of each new version.
	Notify []notifyTarget `yaml:"notify"`
	// XFRUnsignedFrom lists networks (CIDR) that may transfer every scope
	// without a TSIG key: for DNS servers that cannot sign transfers.
	XFRUnsignedFrom []string `yaml:"xfr_unsigned_from"`
}

// notifyTarget is "host:port" (every scope) or {target: host:port,
// scopes: [...]}.
type notifyTarget zone.Target

func (t *notifyTarget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Addr = n.Value
		return nil
	}
	var full struct {
		Target string   `yaml:"target"`
		Scopes []string `yaml:"scopes"`
	}
	if err := n.Decode(&full); err != nil {
		return err
	}
	if full.Target == "" {
		return fmt.Errorf("line %d: a notify entry needs target: host:port", n.Line)
	}
	t.Addr, t.Scopes = full.Target, full.Scopes
	return nil
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// startZone starts the zone-transfer server the config asks for (on
// c.DNSListen) and subscribes it to the store's new versions.
func startZone(ctx context.Context, c ZoneConfig, store *sqlite.DB, srv *api.Server, log *slog.Logger) error {
	targets := make([]zone.Target, len(c.Notify))
	for i, t := range c.Notify {
		targets[i] = zone.Target(t)
	}
	var unsigned []netip.Prefix
	for i, n := range c.XFRUnsignedFrom {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return fmt.Errorf("config: xfr_unsigned_from[%d]: %q is not a network such as 192.0.2.53/32", i, n)
		}
		unsigned = append(unsigned, p.Masked())
	}
	zs, err := zone.New(store, zone.Config{Listen: c.DNSListen, Suffix: c.RPZSuffix, Notify: targets, UnsignedFrom: unsigned, Logger: log})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := srv.RegisterMetrics(zs.Collectors()...); err != nil {
		return err
	}
	if err := zs.Start(ctx); err != nil {
		return err
	}
	store.Subscribe(zs.Published)
	return nil
}

func runTSIGCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsig create", "tsig create --db PATH --name NAME [--scope SCOPE]...", stderr)
	db := fs.String("db", "", "database path (created if missing)")
	name := fs.String("name", "", "the key's name, a DNS name such as dept-a-xfr")
	var scopes stringList
	fs.Var(&scopes, "scope", "a scope the key may transfer (repeat; default every scope)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *db == "" {
		return errors.New("--db is required")
	}
	store, undo, fresh, err := openOrCreate(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	k, secret, err := store.CreateTSIGKey(context.Background(), allowlist.System, *name, scopes)
	if err != nil {
		undo()
		return err
	}
	which := "every scope"
	if len(k.Scopes) > 0 {
		which = "scopes " + strings.Join(k.Scopes, ", ")
	}
	if fresh {
		noteNewDatabase(stderr, *db)
	}
	fmt.Fprintf(stderr, "created TSIG key %d (%s, hmac-sha256) for %s; the secret is shown once:\n", k.ID, k.Name, which)
	fmt.Fprintf(stdout, "%s:%s\n", k.Name, base64.StdEncoding.EncodeToString(secret))
	return nil
}

func runTSIGList(args []string, stdout, stderr io.Writer) error {
	return withStore("tsig list", "tsig list --db PATH", "", args, stderr, func(store *sqlite.DB) error {
		keys, err := store.FindTSIGKeys(context.Background())
		if err != nil {
			return err
		}
		for _, k := range keys {
			state := "active"
			if k.RevokedAt != nil {
				state = "revoked " + k.RevokedAt.Format("2006-01-02T15:04:05Z")
			}
			scopes := "*"
			if len(k.Scopes) > 0 {
				scopes = strings.Join(k.Scopes, ",")
			}
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\n", k.ID, k.Name, scopes, state)
		}
		return nil
	})
}

func runTSIGRevoke(args []string, stdout, stderr io.Writer) error {
	return runRevoke("tsig revoke", "TSIG key", args, stdout, stderr, func(ctx context.Context, db *sqlite.DB, id int64) error {
		return db.RevokeTSIGKey(ctx, allowlist.System, id)
	})
}
