package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist/postgres/pgtest"
)

var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
)

// postgresDB returns a new database on the PostgreSQL server these tests
// share (started on first use, stopped by TestMain), and a signing key
// file every process given it must use. Without PostgreSQL the test is
// skipped, and fails when CI=true.
func postgresDB(t *testing.T) (string, string) {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = pgtest.Start() })
	if pgErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(pgErr)
		}
		t.Skip(pgErr)
	}
	key := filepath.Join(t.TempDir(), "signing.key")
	t.Setenv("ALLOWLIST_SIGNING_KEY", key) // for the CLI
	return pgServer.Database(t), key
}

func stopPostgres() {
	if pgServer != nil {
		pgServer.Stop()
	}
}

// latest is the current version of scope on reg.
func latest(t *testing.T, reg *registry, scope string) int64 {
	t.Helper()
	code, body := reg.call(t, "GET", "/v1/lists", "", "")
	var scopes []struct {
		Scope   string `json:"scope"`
		Version int64  `json:"version"`
	}
	if code != 200 || json.Unmarshal(body, &scopes) != nil {
		t.Fatalf("GET /v1/lists: %d %s", code, body)
	}
	for _, s := range scopes {
		if s.Scope == scope {
			return s.Version
		}
	}
	t.Fatalf("no scope %s", scope)
	return 0
}

// watch starts a watch on reg for scope after version, and returns a
// channel that gets the version it answers with and when it answered.
func watch(reg *registry, scope string, after int64) <-chan [2]int64 {
	got := make(chan [2]int64, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/v1/lists/%s/watch?after=%d&timeout=20s", reg.url, scope, after))
		at := time.Now()
		if err != nil {
			got <- [2]int64{-1, at.UnixNano()}
			return
		}
		resp.Body.Close()
		v, _ := strconv.ParseInt(resp.Header.Get("X-Allowlist-Version"), 10, 64)
		if resp.StatusCode != 200 {
			v = -int64(resp.StatusCode)
		}
		got <- [2]int64{v, at.UnixNano()}
	}()
	return got
}

// wakeAcross signs off on a so that common moves, and returns how long a
// watcher already waiting on b took to get the new version.
func wakeAcross(t *testing.T, a, b *registry, token string, site, dept int) time.Duration {
	t.Helper()
	before := latest(t, b, "common")
	w := watch(b, "common", before)
	time.Sleep(200 * time.Millisecond) // the watch is waiting
	start := time.Now()
	code, body := a.call(t, "PUT", fmt.Sprintf("/v1/sites/site-%d/signoffs/dept-%d", site, dept), token, `{"decision":"approve"}`)
	if code != 200 {
		t.Fatalf("sign-off on A: %d %s", code, body)
	}
	select {
	case r := <-w:
		if r[0] != before+1 {
			t.Fatalf("watcher on B answered version %d, want %d", r[0], before+1)
		}
		return time.Unix(0, r[1]).Sub(start)
	case <-time.After(25 * time.Second):
		t.Fatal("watcher on B never woke")
	}
	return 0
}

// TestInstancesShareOnePostgres runs two `allowlist serve` processes on
// one PostgreSQL database. A sign-off on A wakes a watcher on B within a
// second (NOTIFY; B's own re-reading runs every 2 s). Then 8 clients sign
// off on both for a while, during which A is killed with SIGKILL and
// restarted, and PostgreSQL is stopped and started again: B's /readyz
// says 503 while the database is down and 200 once it is back, without a
// restart; no acknowledged sign-off is lost, every scope's versions run
// without gaps, and the audit chain verifies.
func TestInstancesShareOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL and two registries for 20 s")
	}
	db, key := postgresDB(t)
	const depts, sites, clients = 4, 8, 8
	tokens, admin := seedPairs(t, db, depts, sites)
	args := []string{"--quorum", "2", "--signing-key", key}
	a, b := startRegistry(t, db, args...), startRegistry(t, db, args...)

	for i, pair := range [][2]int{{0, 0}, {0, 1}, {1, 2}, {1, 3}} {
		// The first approval of each site moves only its department's
		// scope; watch that one's common after the second.
		if i%2 == 0 {
			if code, body := a.call(t, "PUT", fmt.Sprintf("/v1/sites/site-%d/signoffs/dept-%d", pair[0], pair[1]), tokens[pair[1]], `{"decision":"approve"}`); code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			continue
		}
		if d := wakeAcross(t, a, b, tokens[pair[1]], pair[0], pair[1]); d > time.Second {
			t.Errorf("a sign-off on A woke a watcher on B after %v, want within 1 s", d)
		} else {
			t.Logf("a sign-off on A woke a watcher on B after %v", d.Round(time.Millisecond))
		}
	}

	state, owned := pairs(sites, depts, clients)
	for _, p := range [][2]int{{0, 0}, {0, 1}, {1, 2}, {1, 3}} {
		state[p].acked = "approve"
	}
	verifyState(t, b, admin, state, new(sync.Mutex))
	var mu sync.Mutex
	stop := make(chan struct{})
	br := &burst{state: state, owned: owned, tokens: tokens, mu: &mu, stop: stop, client: &http.Client{Timeout: 10 * time.Second}}
	var regMu sync.Mutex
	regs := []*registry{a, b}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			br.run(7, c, func() string {
				regMu.Lock()
				defer regMu.Unlock()
				return regs[c%2].url
			}, false)
		})
	}
	burstFor := 20 * time.Second
	time.Sleep(burstFor / 4)
	// SIGKILL instance A mid-burst, and start it again.
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	a2 := startRegistry(t, db, args...)
	regMu.Lock()
	regs[0] = a2
	regMu.Unlock()
	time.Sleep(burstFor / 4)
	// Stop PostgreSQL mid-burst: B is not ready while it is down.
	pgServer.Shutdown()
	if code := readyz(b); code != http.StatusServiceUnavailable {
		t.Errorf("B's /readyz = %d with PostgreSQL down, want 503", code)
	}
	time.Sleep(2 * time.Second)
	if err := pgServer.Restart(); err != nil {
		t.Fatal(err)
	}
	ready := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if readyz(b) == 200 && readyz(a2) == 200 {
			ready = true
			break
		}
	}
	if !ready {
		t.Errorf("not ready again after PostgreSQL came back: A %d, B %d", readyz(a2), readyz(b))
	}
	mu.Lock()
	outage := br.serverErrors
	mu.Unlock()
	time.Sleep(burstFor / 4)
	close(stop)
	wg.Wait()
	t.Logf("%d sign-offs acknowledged across both instances; %d answered 5xx before both were ready again, %d after", br.acked, outage, br.serverErrors-outage)
	if br.acked < 100 {
		t.Errorf("only %d sign-offs acknowledged", br.acked)
	}
	verifyState(t, b, admin, state, &mu)
	verifyState(t, a2, admin, state, &mu)
	verifyVersions(t, b)
	if _, errOut, code := cli(t, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: %s", errOut)
	}
	// After PostgreSQL's restart, both listeners are back: a sign-off on
	// B that brings site-2 to quorum wakes a watcher on A.
	for d := 0; d < depts; d++ {
		decision := "object"
		if d == 0 {
			decision = "approve"
		}
		if code, body := b.call(t, "PUT", fmt.Sprintf("/v1/sites/site-2/signoffs/dept-%d", d), tokens[d], `{"decision":"`+decision+`"}`); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if d := wakeAcross(t, b, a2, tokens[1], 2, 1); d > time.Second {
		t.Errorf("after PostgreSQL's restart a sign-off on B woke a watcher on A after %v, want within 1 s", d)
	}
	// Nothing the registry runs by itself (timers, deliveries, the
	// listener) met SQL that PostgreSQL refuses.
	for name, r := range map[string]*registry{"A": a2, "B": b} {
		r.cmd.Process.Signal(os.Interrupt) // its log is read once it has stopped
		r.cmd.Wait()
		for _, line := range strings.Split(r.stderr.String(), "\n") {
			// Outages give 57P01, 57P03 and connection errors; SQL or
			// types PostgreSQL refuses give 42..., 22..., 0A... or a
			// conversion error from pgx.
			if strings.Contains(line, "SQLSTATE 42") || strings.Contains(line, "SQLSTATE 22") || strings.Contains(line, "SQLSTATE 0A") ||
				strings.Contains(line, "unable to encode") || strings.Contains(line, "can't scan") || strings.Contains(line, "cannot scan") {
				t.Errorf("%s logged %s", name, line)
			}
		}
	}
}

func readyz(r *registry) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPostgresCommands: the commands that take --db take a postgres://
// URL; a PostgreSQL registry needs its signing key given, refuses another
// key than the one it signs with, is backed up with pg_dump rather than
// `allowlist backup`, and the URL's password stays out of the logs.
func TestPostgresCommands(t *testing.T) {
	db, key := postgresDB(t)
	t.Setenv("ALLOWLIST_SIGNING_KEY", "")
	if _, errOut, code := cli(t, "token", "create", "--db", db, "--role", "admin", "--name", "x"); code == 0 || !strings.Contains(errOut, "ALLOWLIST_SIGNING_KEY") {
		t.Errorf("without a key: exit %d, %s", code, errOut)
	}
	t.Setenv("ALLOWLIST_SIGNING_KEY", key)
	tokens, _ := seedPairs(t, db, 2, 2)
	out, errOut, code := cli(t, "export", "--db", db)
	if code != 0 || !strings.Contains(out, "site-1") {
		t.Errorf("export: exit %d, %s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: %s", errOut)
	}
	if _, errOut, code := cli(t, "backup", "--db", db, "--out", filepath.Join(t.TempDir(), "b")); code == 0 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup: exit %d, %s", code, errOut)
	}
	t.Setenv("ALLOWLIST_SIGNING_KEY", filepath.Join(t.TempDir(), "other.key"))
	if _, errOut, code := cli(t, "audit", "verify", "--db", db); code == 0 || !strings.Contains(errOut, "same signing key") {
		t.Errorf("another key: exit %d, %s", code, errOut)
	}
	// The server trusts local connections, so any password is accepted:
	// it must not reach the logs.
	withPassword := strings.Replace(db, "postgres@", "postgres:s3cret-pw@", 1)
	reg := startRegistry(t, withPassword, "--signing-key", key)
	if code, body := reg.call(t, "PUT", "/v1/sites/site-0/signoffs/dept-0", tokens[0], `{"decision":"approve"}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	reg.cmd.Process.Signal(os.Interrupt)
	reg.cmd.Wait()
	if strings.Contains(reg.stderr.String(), "s3cret-pw") {
		t.Error("the database password is in the logs")
	}
}
