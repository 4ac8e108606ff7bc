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
	dir := t.TempDir()
	db := filepath.Join(dir, "registry.db")
	var cat strings.Builder
	cat.WriteString("departments:\n")
	for d := 0; d < depts; d++ {
		fmt.Fprintf(&cat, "  - {id: dept-%d, name: Dept %d, kind: other}\n", d, d)
	}
	cat.WriteString("sites:\n")
	for s := 0; s < sites; s++ {
		fmt.Fprintf(&cat, "  - {id: site-%d, name: Site %d, category: other, domains: [\"*.site%d.example.net\"], owner: {name: x}}\n", s, s, s)
	}
	catFile := filepath.Join(dir, "cat.yaml")
	os.WriteFile(catFile, []byte(cat.String()), 0o644)
	if _, errOut, code := cli(t, "import", catFile, "--db", db); code != 0 {
		t.Fatal(errOut)
	}
	tokens := make([]string, depts)
	for d := range tokens {
		out, _, _ := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", fmt.Sprintf("dept-%d", d), "--name", "o")
		tokens[d] = lastLine(out)
	}
	out, _, _ := cli(t, "token", "create", "--db", db, "--role", "admin", "--name", "checker")
	admin := lastLine(out)

	// Each client owns its own pairs, so that its sends are ordered.
	state := map[[2]int]*pairState{}
	owned := make([][][2]int, clients)
	for s := 0; s < sites; s++ {
		for d := 0; d < depts; d++ {
			p := [2]int{s, d}
			state[p] = &pairState{}
			owned[(s*depts+d)%clients] = append(owned[(s*depts+d)%clients], p)
		}
	}
	var mu sync.Mutex
	acked, serverErrors := 0, 0
	client := &http.Client{Timeout: 5 * time.Second}

	for round := 0; round < rounds; round++ {
		reg := startRegistry(t, db, "--quorum", "2")
		verifyState(t, reg, admin, state, &mu)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(c)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					p := owned[c][r.IntN(len(owned[c]))]
					decision := []string{"approve", "object"}[r.IntN(2)]
					mu.Lock()
					state[p].inFlight = decision
					mu.Unlock()
					req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/sites/site-%d/signoffs/dept-%d", reg.url, p[0], p[1]),
						strings.NewReader(`{"decision":"`+decision+`"}`))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+tokens[p[1]])
					resp, err := client.Do(req)
					if err != nil {
						return // the server is gone: this one stays in flight
					}
					resp.Body.Close()
					mu.Lock()
					switch {
					case resp.StatusCode == 200:
						state[p].acked, state[p].inFlight = decision, ""
						acked++
					case resp.StatusCode >= 500:
						serverErrors++
					}
					mu.Unlock()
				}
			}(c)
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		reg.cmd.Process.Signal(syscall.SIGKILL)
		reg.cmd.Wait()
		close(stop)
		wg.Wait()
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
			if err := allowlist.VerifyList(ed25519.PublicKey(pub), b, resp.Header.Get("X-Allowlist-Signature")); err != nil {
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
