package zone_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"github.com/cross-gov/allowlist/zone"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

var ctx = context.Background()

// env is a registry on a real SQLite file with the zone-transfer server in
// front of it, on loopback.
type env struct {
	t   testing.TB
	db  *sqlite.DB
	zs  *zone.Server
	dir string
	// key is a TSIG key for every scope: name and base64 secret.
	keyName, keySecret string
}

type envOptions struct {
	notify       []zone.Target
	unsignedFrom []netip.Prefix
}

func owner(dept string) allowlist.Actor {
	return allowlist.Actor{Role: allowlist.RoleOwner, Department: dept, Name: "owner-" + dept}
}

// newEnv opens a registry with departments dept-a and dept-b (quorum 2)
// and two sites both approved: video (video.example.com) and docs
// (*.docs.example.org).
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	db, err := sqlite.Open(filepath.Join(e.dir, "registry.db"), sqlite.Options{Quorum: 2, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	for _, d := range []string{"dept-a", "dept-b"} {
		if _, err := db.CreateDepartment(ctx, allowlist.System, allowlist.Department{ID: d, Name: "Dept " + d, Kind: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	e.approve("video", "video.example.com")
	e.approve("docs", "*.docs.example.org")
	k, secret, err := db.CreateTSIGKey(ctx, allowlist.System, "xfr-all", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.keyName, e.keySecret = k.Name, base64.StdEncoding.EncodeToString(secret)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ZONE_TEST_LOGS") != "" {
		log = slog.Default()
	}
	zs, err := zone.New(db, zone.Config{Listen: realproc.FreeAddr(t), Notify: o.notify, UnsignedFrom: o.unsignedFrom, RefreshEvery: 500 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.zs = zs
	db.Subscribe(zs.Published)
	runCtx, cancel := context.WithCancel(ctx)
	if err := zs.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		zs.Close()
		db.Close()
	})
	return e
}

// approve proposes a site and has both departments approve it.
func (e *env) approve(id string, domains ...string) {
	e.t.Helper()
	if _, err := e.db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: id, Name: "Site " + id, Category: "other", Domains: domains,
		Owner: allowlist.Owner{Name: "Ops", Email: "ops@example.org"}}); err != nil {
		e.t.Fatal(err)
	}
	for _, d := range []string{"dept-a", "dept-b"} {
		if _, err := e.db.SetSignoff(ctx, owner(d), id, d, "approve", ""); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) suspend(id string) {
	e.t.Helper()
	if _, err := e.db.SuspendSite(ctx, allowlist.System, id, "test"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) version(scope string) int64 {
	e.t.Helper()
	v, err := e.db.FindVersion(ctx, scope, allowlist.Latest)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Version
}

// port returns the zone server's port (UDP and TCP).
func (e *env) port() string {
	_, p, _ := net.SplitHostPort(e.zs.Addr())
	return p
}

// proc is a server process started by a test, stopped by its PID.
type proc struct {
	cmd *exec.Cmd
	log *realproc.Buffer
}

func start(t *testing.T, dir string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), log: &realproc.Buffer{}}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() || os.Getenv("ZONE_TEST_LOGS") != "" {
			t.Logf("%s output:\n%s", filepath.Base(name), p.log.String())
		}
	})
	return p
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// query asks a DNS server over UDP and returns the answer's rcode and A
// addresses.
func query(server, name string) (int, []string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return 0, nil, err
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return r.Rcode, ips, nil
}

// allowed reports whether a consumer resolves name (to the test
// authority's address) rather than answering NXDOMAIN.
func allowed(t *testing.T, server, name string) (bool, error) {
	rcode, ips, err := query(server, name)
	if err != nil {
		return false, err
	}
	switch {
	case rcode == dns.RcodeSuccess && len(ips) == 1 && ips[0] == "192.0.2.1":
		return true, nil
	case rcode == dns.RcodeNameError:
		return false, nil
	}
	return false, fmt.Errorf("%s: rcode %s, addresses %v", name, dns.RcodeToString[rcode], ips)
}

// waitFor polls cond every 20 ms until it holds or the time is up, and
// returns how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < within {
		ok, err := cond()
		if ok {
			return time.Since(start)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last error: %v)", what, within, last)
	return 0
}

// authority starts a real BIND as the authoritative server for
// example.com and example.org, where every name has address 192.0.2.1:
// the names the consumers resolve when their policy lets them.
func authority(t *testing.T) string {
	named := realproc.Need(t, "named")
	dir := t.TempDir()
	addr := realproc.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	zone := "$TTL 60\n@ SOA ns.invalid. h.invalid. 1 60 60 600 60\n@ NS ns.invalid.\n@ A 192.0.2.1\n* A 192.0.2.1\n"
	write(t, filepath.Join(dir, "db.zone"), zone)
	write(t, filepath.Join(dir, "named.conf"), fmt.Sprintf(`options {
	directory "%s";
	pid-file "%s/named.pid";
	listen-on port %s { %s; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
};
controls { };
zone "example.com" { type primary; file "db.zone"; };
zone "example.org" { type primary; file "db.zone"; };
`, dir, dir, port, host))
	p := start(t, dir, named, "-g", "-c", filepath.Join(dir, "named.conf"))
	waitReady(t, p, addr, "example.com")
	return addr
}

// waitReady waits until a DNS server answers a query for name.
func waitReady(t *testing.T, p *proc, addr, name string) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		if p.cmd.ProcessState != nil {
			break
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeSOA)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode != dns.RcodeServerFailure {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer on %s:\n%s", p.cmd.Path, addr, p.log.String())
}

func transfers(e *env, kind, result string) prometheus.Counter {
	return e.zs.Metric("transfers", kind, result)
}

func notifies(e *env, result string) prometheus.Counter { return e.zs.Metric("notifies", result) }
