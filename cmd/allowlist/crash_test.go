package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"
)

// pairState tracks one (site, department) decision across crashes: the
// last decision acknowledged with a 2xx, and the one in flight when the
// server died, which may or may not have committed.
type pairState struct {
	acked, inFlight string
}

// TestCrashDurability runs the real registry, sends sign-offs from
// several clients at once, and kills it with SIGKILL at a random moment,
// 20 times. After each restart every acknowledged decision must be there;
// at the end each scope's versions run without gaps or repeats, every
// version matches its sha256 and signature, and the audit chain verifies.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the registry 20 times")
	}
	const (
		rounds  = 20
		depts   = 6
		sites   = 12
		clients = 6
	)
	db := filepath.Join(t.TempDir(), "registry.db")
	tokens, admin := seedPairs(t, db, depts, sites)

	state, owned := pairs(sites, depts, clients)
	var mu sync.Mutex
	client := &http.Client{Timeout: 5 * time.Second}
	acked, serverErrors := 0, 0

	for round := 0; round < rounds; round++ {
		reg := startRegistry(t, db, "--quorum", "2")
		verifyState(t, reg, admin, state, &mu)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		b := &burst{state: state, owned: owned, tokens: tokens, mu: &mu, stop: stop, client: client}
		for c := 0; c < clients; c++ {
			wg.Go(func() {
				b.run(uint64(round), c, func() string { return reg.url }, true)
			})
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		reg.cmd.Process.Signal(syscall.SIGKILL)
		reg.cmd.Wait()
		close(stop)
		wg.Wait()
		acked += b.acked
		serverErrors += b.serverErrors
	}
	reg := startRegistry(t, db)
	verifyState(t, reg, admin, state, &mu)
	if serverErrors > 0 {
		t.Errorf("%d requests got a 5xx (database locked?)", serverErrors)
	}
	verifyVersions(t, reg)
	if _, errOut, code := cli(t, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify after %d crashes: %s", rounds, errOut)
	}
	t.Logf("%d crashes survived, %d sign-offs acknowledged, none lost", rounds, acked)
}

// verifyState checks that each pair holds its last acknowledged decision,
// or the one in flight at the crash (which may have committed), and then
// forgets what was in flight.
// seedPairs imports depts departments and sites sites into db with the
// CLI, and returns an owner token per department and an admin token.
func seedPairs(t *testing.T, db string, depts, sites int) ([]string, string) {
	t.Helper()
	var cat strings.Builder
	cat.WriteString("departments:\n")
	for d := 0; d < depts; d++ {
		fmt.Fprintf(&cat, "  - {id: dept-%d, name: Dept %d, kind: other}\n", d, d)
	}
	cat.WriteString("sites:\n")
	for s := 0; s < sites; s++ {
		fmt.Fprintf(&cat, "  - {id: site-%d, name: Site %d, category: other, domains: [\"*.site%d.example.net\"], owner: {name: x}}\n", s, s, s)
	}
	catFile := filepath.Join(t.TempDir(), "cat.yaml")
	os.WriteFile(catFile, []byte(cat.String()), 0o644)
	if _, errOut, code := cli(t, "import", catFile, "--db", db); code != 0 {
		t.Fatal(errOut)
	}
	tokens := make([]string, depts)
	for d := range tokens {
		out, errOut, code := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", fmt.Sprintf("dept-%d", d), "--name", "o")
		if code != 0 {
			t.Fatal(errOut)
		}
		tokens[d] = lastLine(out)
	}
	out, _, _ := cli(t, "token", "create", "--db", db, "--role", "admin", "--name", "checker")
	return tokens, lastLine(out)
}

// pairs is the state of every (site, department) decision, and which
// client owns each (so that a client's sends on a pair are ordered).
func pairs(sites, depts, clients int) (map[[2]int]*pairState, [][][2]int) {
	state := map[[2]int]*pairState{}
	owned := make([][][2]int, clients)
	for s := 0; s < sites; s++ {
		for d := 0; d < depts; d++ {
			p := [2]int{s, d}
			state[p] = &pairState{}
			owned[(s*depts+d)%clients] = append(owned[(s*depts+d)%clients], p)
		}
	}
	return state, owned
}

// burst is clients sending sign-offs, each on the pairs it owns (so that
// its sends are ordered), recording what was acknowledged.
type burst struct {
	state  map[[2]int]*pairState
	owned  [][][2]int
	tokens []string
	mu     *sync.Mutex
	stop   chan struct{}
	client *http.Client
	// Counted under mu.
	acked, serverErrors int
}

// run sends client c's sign-offs to the registry url() gives until stop
// closes, or, if once is set, until a request fails to get an answer (the
// server is gone). A request that fails or gets a 5xx stays in flight: it
// may or may not have committed.
func (b *burst) run(seed uint64, c int, url func() string, once bool) {
	r := rand.New(rand.NewPCG(seed, uint64(c)))
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		p := b.owned[c][r.IntN(len(b.owned[c]))]
		decision := []string{"approve", "object"}[r.IntN(2)]
		b.mu.Lock()
		b.state[p].inFlight = decision
		b.mu.Unlock()
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/sites/site-%d/signoffs/dept-%d", url(), p[0], p[1]),
			strings.NewReader(`{"decision":"`+decision+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.tokens[p[1]])
		resp, err := b.client.Do(req)
		if err != nil {
			if once {
				return // the server is gone: this one stays in flight
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		b.mu.Lock()
		switch {
		case resp.StatusCode == 200:
			b.state[p].acked, b.state[p].inFlight = decision, ""
			b.acked++
		case resp.StatusCode >= 500:
			b.serverErrors++
		}
		b.mu.Unlock()
		if resp.StatusCode >= 500 && !once {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func verifyState(t *testing.T, reg *registry, admin string, state map[[2]int]*pairState, mu *sync.Mutex) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	_, body := reg.call(t, "GET", "/v1/sites", admin, "")
	var sites []allowlist.Site
	if err := json.Unmarshal(body, &sites); err != nil {
		t.Fatal(err)
	}
	got := map[[2]int]string{}
	for _, s := range sites {
		var si int
		fmt.Sscanf(s.ID, "site-%d", &si)
		for _, so := range s.Signoffs {
			var d int
			fmt.Sscanf(so.Department, "dept-%d", &d)
			got[[2]int{si, d}] = so.Decision
		}
	}
	for p, st := range state {
		g := got[p]
		if g != st.acked && (st.inFlight == "" || g != st.inFlight) {
			t.Fatalf("site-%d/dept-%d holds %q, but %q was acknowledged (in flight: %q)", p[0], p[1], g, st.acked, st.inFlight)
		}
		st.acked, st.inFlight = g, ""
	}
}

// verifyVersions checks every scope's history: versions 0..N without gaps,
// each body matching its sha256 and the registry's signature.
func verifyVersions(t *testing.T, reg *registry) {
	t.Helper()
	_, body := reg.call(t, "GET", "/v1/keys", "", "")
	var keys struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		}
	}
	json.Unmarshal(body, &keys)
	pub, _ := base64.StdEncoding.DecodeString(keys.Keys[0].PublicKey)
	_, body = reg.call(t, "GET", "/v1/lists", "", "")
	var scopes []allowlist.ScopeInfo
	json.Unmarshal(body, &scopes)
	checked := 0
	for _, sc := range scopes {
		_, body := reg.call(t, "GET", "/v1/lists/"+sc.Scope+"/versions", "", "")
		var versions []allowlist.Version
		json.Unmarshal(body, &versions)
		for i, v := range versions {
			if v.Version != int64(i) {
				t.Fatalf("%s: version %d at position %d", sc.Scope, v.Version, i)
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/lists/%s/versions/%d", reg.url, sc.Scope, v.Version), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := list.Verify(ed25519.PublicKey(pub), b, resp.Header.Get("X-Allowlist-Signature")); err != nil {
				t.Fatalf("%s/%d: %v", sc.Scope, v.Version, err)
			}
			l, err := allowlist.ParseList(b)
			if err != nil || l.SHA256 != v.SHA256 {
				t.Fatalf("%s/%d: %v", sc.Scope, v.Version, err)
			}
			checked++
		}
	}
	t.Logf("%d versions across %d scopes verified", checked, len(scopes))
}
