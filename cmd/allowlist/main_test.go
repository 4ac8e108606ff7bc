package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/e2e/realproc"
	_ "github.com/mattn/go-sqlite3"
	"github.com/miekg/dns"
)

// binary is cmd/allowlist built for the tests; resolverBinary is
// cmd/allowlist-resolver, the resolver alone.
var binary, resolverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "allowlist-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "allowlist")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	resolverBinary = filepath.Join(dir, "allowlist-resolver")
	if out, err := exec.Command("go", "build", "-o", resolverBinary, "../allowlist-resolver").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	stopPostgres()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the real binary and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// registry is a running `allowlist serve` process.
type registry struct {
	cmd    *exec.Cmd
	url    string
	stdout *bufio.Reader
	admin  string
	stderr *bytes.Buffer
}

// seededRegistry starts a registry process on a seeded database in a
// directory of its own, and gives the directory, the database, the
// registry and its public key as keygen prints it (for a resolver's
// public_key).
func seededRegistry(t *testing.T) (dir, db string, reg *registry, pub string) {
	t.Helper()
	dir = t.TempDir()
	db = filepath.Join(dir, "registry.db")
	reg = startRegistry(t, db, "--seed")
	pub, _, code := cli(t, "keygen", "--db", db)
	if code != 0 {
		t.Fatal("keygen")
	}
	return dir, db, reg, pub
}

func startRegistry(t *testing.T, db string, args ...string) *registry {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, args...)...)
	out, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &registry{cmd: cmd, stdout: bufio.NewReader(out), stderr: &errb}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	deadline := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for {
		line, err := r.stdout.ReadString('\n')
		if err != nil {
			t.Fatalf("registry did not start: %v\n%s", err, errb.String())
		}
		if strings.HasPrefix(line, "  alt_") {
			r.admin = strings.TrimSpace(line)
		}
		if after, ok := strings.CutPrefix(line, "registry listening on "); ok {
			r.url = strings.TrimSpace(after)
			return r
		}
	}
}

func (r *registry) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestHelpForEveryCommand(t *testing.T) {
	for name := range commands {
		for _, args := range [][]string{append(strings.Fields(name), "--help"), append([]string{"help"}, strings.Fields(name)...)} {
			// Help that is asked for goes to standard output (to page or grep).
			out, errOut, code := cli(t, args...)
			if code != 0 || !strings.HasPrefix(out, "usage: allowlist "+name) || errOut != "" {
				t.Errorf("%v: code %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
			}
		}
		// A mistake in the flags is said once, with the usage, and exits 2.
		out, errOut, code := cli(t, append(strings.Fields(name), "--no-such-flag")...)
		if code != 2 || out != "" || strings.Count(errOut, "no-such-flag") != 1 || !strings.Contains(errOut, "usage: allowlist "+name) {
			t.Errorf("%s --no-such-flag: code %d\nstdout: %s\nstderr: %s", name, code, out, errOut)
		}
	}
	if _, _, code := cli(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
}

// TestWalkthroughWithRealProcesses is README's walkthrough, run against the
// real binary: seed, tokens from the CLI, a proposal signed off by two
// departments, a new common version fetched as Squid and RPZ, and
// `allowlist check` with its exit codes. Then a graceful stop and a
// restart that keeps the data and prints no new admin token.
func TestWalkthroughWithRealProcesses(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "var", "registry.db")
	r := startRegistry(t, db, "--seed")
	if !strings.HasPrefix(r.admin, "alt_") {
		t.Fatal("no admin token printed on first start")
	}
	out, _, code := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", "dsit", "--name", "owner-dsit")
	if code != 0 {
		t.Fatal("token create failed")
	}
	ownerDSIT := lastLine(out)
	out, _, _ = cli(t, "token", "create", "--db", db, "--role", "owner", "--department", "hmrc", "--name", "owner-hmrc")
	ownerHMRC := lastLine(out)

	code2, body := r.call(t, "GET", "/v1/lists/common", "", "")
	var before struct{ Version int64 }
	json.Unmarshal(body, &before)
	if code2 != 200 || before.Version < 1 {
		t.Fatalf("seeded common: %d %s", code2, body)
	}
	site := `{"id":"jitsi-meet","name":"Jitsi Meet","category":"video-conferencing","domains":["meet.jit.si"],"owner":{"name":"Jitsi team","email":"jitsi@example.org"}}`
	if c, b := r.call(t, "POST", "/v1/sites", ownerDSIT, site); c != 201 {
		t.Fatalf("propose: %d %s", c, b)
	}
	if c, b := r.call(t, "PUT", "/v1/sites/jitsi-meet/signoffs/dsit", ownerDSIT, `{"decision":"approve"}`); c != 200 {
		t.Fatalf("sign off: %d %s", c, b)
	}
	if c, _ := r.call(t, "PUT", "/v1/sites/jitsi-meet/signoffs/dsit", ownerHMRC, `{"decision":"approve"}`); c != 403 {
		t.Fatalf("hmrc signed for dsit: %d", c)
	}
	if c, b := r.call(t, "PUT", "/v1/sites/jitsi-meet/signoffs/hmrc", ownerHMRC, `{"decision":"approve"}`); c != 200 {
		t.Fatalf("sign off: %d %s", c, b)
	}
	_, body = r.call(t, "GET", "/v1/lists/common", "", "")
	var after struct{ Version int64 }
	json.Unmarshal(body, &after)
	if after.Version != before.Version+1 {
		t.Fatalf("common went from %d to %d", before.Version, after.Version)
	}
	if _, b := r.call(t, "GET", "/v1/lists/common?format=squid", "", ""); !strings.Contains(string(b), "\nmeet.jit.si\n") {
		t.Errorf("squid lacks meet.jit.si:\n%s", b)
	}
	if _, b := r.call(t, "GET", "/v1/lists/common?format=rpz", "", ""); !strings.Contains(string(b), "meet.jit.si CNAME rpz-passthru.") {
		t.Errorf("rpz lacks meet.jit.si:\n%s", b)
	}
	out, _, code = cli(t, "check", "meet.jit.si", "--registry", r.url)
	if code != 0 || !strings.Contains(out, "ALLOWED") || !strings.Contains(out, "Jitsi Meet") {
		t.Errorf("check allowed: %d %s", code, out)
	}
	out, _, code = cli(t, "check", "games.example.com", "--registry", r.url)
	if code != 1 || !strings.Contains(out, "NOT") || !strings.Contains(out, r.url+"/request?url=games.example.com") || strings.Contains(out, "POST /v1") || strings.Count(out, "/request?url=") != 1 {
		t.Errorf("check not allowed: %d %s", code, out)
	}
	// A tool's name, and a web address, as staff would give them.
	out, _, code = cli(t, "check", "jitsi meet", "--registry", r.url)
	if code != 0 || !strings.Contains(out, "Jitsi Meet (approved): checking meet.jit.si") || !strings.Contains(out, "ALLOWED") {
		t.Errorf("check by name: %d %s", code, out)
	}
	out, _, code = cli(t, "check", "https://meet.jit.si/SomeRoom", "--registry", r.url)
	if code != 0 || !strings.Contains(out, "meet.jit.si is ALLOWED") {
		t.Errorf("check by URL: %d %s", code, out)
	}
	// A tool not in the catalogue is on no list (exit 1), with how to ask.
	if out, errOut, code := cli(t, "check", "No Such Tool", "--registry", r.url); code != 1 || !strings.Contains(out, `"No Such Tool" is not in the catalogue`) ||
		!strings.Contains(out, r.url+"/request?tool=No+Such+Tool") || errOut != "" {
		t.Errorf("check an unknown tool: %d %s %s", code, out, errOut)
	}
	_, errOut, code := cli(t, "check", "*.com", "--registry", r.url)
	if code != 2 {
		t.Errorf("check invalid: %d %s", code, errOut)
	}
	_, _, code = cli(t, "check", "zoom.us", "--registry", "http://127.0.0.1:1")
	if code != 2 {
		t.Errorf("check with no registry: %d", code)
	}

	// A graceful stop: in-flight work finishes, the database closes.
	r.cmd.Process.Signal(syscall.SIGTERM)
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "stopped cleanly") {
		t.Errorf("no clean stop:\n%s", r.stderr)
	}
	if _, _, code := cli(t, "audit", "verify", "--db", db); code != 0 {
		t.Error("audit verify failed after a clean stop")
	}
	r2 := startRegistry(t, db, "--seed")
	if r2.admin != "" {
		t.Error("a second start printed another admin token")
	}
	_, body = r2.call(t, "GET", "/v1/lists/common", "", "")
	var again struct{ Version int64 }
	json.Unmarshal(body, &again)
	if again.Version != after.Version {
		t.Errorf("restart changed common from %d to %d", after.Version, again.Version)
	}
}

func TestImportExportAndAuditVerify(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "a.db")
	seed := filepath.Join("..", "..", "data", "catalogue.yaml")
	if out, errOut, code := cli(t, "import", seed, "--db", db); code != 0 {
		t.Fatalf("import: %s %s", out, errOut)
	}
	first, _, code := cli(t, "export", "--db", db)
	if code != 0 {
		t.Fatal("export failed")
	}
	exported := filepath.Join(dir, "export.yaml")
	os.WriteFile(exported, []byte(first), 0o644)
	db2 := filepath.Join(dir, "b.db")
	if _, errOut, code := cli(t, "import", exported, "--db", db2); code != 0 {
		t.Fatalf("re-import: %s", errOut)
	}
	second, _, _ := cli(t, "export", "--db", db2)
	if first != second {
		t.Errorf("export does not round-trip")
	}

	// A bad file names its line and field, and imports nothing.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("departments:\n  - id: dept-z\n    name: Z\n    kind: other\nsites:\n  - id: bad-site\n    name: Bad\n    category: wiki\n    domains:\n      - ok.example.org\n      - \"*.co.uk\"\n    owner:\n      name: x\n"), 0o644)
	_, errOut, code := cli(t, "import", bad, "--db", db2)
	if code == 0 || !strings.Contains(errOut, "bad.yaml:11: sites[0].domains[1]") || !strings.Contains(errOut, "nothing was imported") {
		t.Errorf("bad import: %d %s", code, errOut)
	}
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("departments:\n  - id: dept-z\n    nmae: Z\n"), 0o644)
	_, errOut, code = cli(t, "import", typo, "--db", db2)
	if code == 0 || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "nmae") {
		t.Errorf("typo import: %d %s", code, errOut)
	}
	if after, _, _ := cli(t, "export", "--db", db2); after != second {
		t.Error("a refused import changed the registry")
	}
	// An export into a live registry is refused, saying how; --merge adds
	// only what is new.
	_, errOut, code = cli(t, "import", exported, "--db", db2)
	if code == 0 || !strings.Contains(errOut, "--merge") || !strings.Contains(errOut, "nothing was imported") {
		t.Errorf("import into a live registry: %d %s", code, errOut)
	}
	extra := filepath.Join(dir, "extra.yaml")
	os.WriteFile(extra, []byte(first+"  - id: extra-wiki\n    name: Extra wiki\n    category: wiki\n    domains: [wiki.extra.example.org]\n    owner: {name: x}\n"), 0o644)
	merged, errOut, code := cli(t, "import", extra, "--db", db2, "--merge")
	if code != 0 || !strings.Contains(merged, "imported 0 departments and 1 site;") || !strings.Contains(merged, "skipped") {
		t.Errorf("merge: %d %s %s", code, merged, errOut)
	}
	second, _, _ = cli(t, "export", "--db", db2)
	if !strings.Contains(second, "extra-wiki") {
		t.Error("the merged site is not in the registry")
	}
	// A failed first use leaves no database or key behind.
	typoDB := filepath.Join(dir, "typo.db")
	if _, _, code := cli(t, "token", "create", "--db", typoDB, "--role", "owner", "--department", "nope", "--name", "x"); code == 0 {
		t.Error("token for an unknown department created")
	}
	if left, _ := filepath.Glob(typoDB + "*"); len(left) > 0 {
		t.Errorf("a failed command left %v", left)
	}
	// A token made in a database that did not exist says so (it will not
	// work on the registry the user meant); in an existing one, it does not.
	for i, want := range []bool{true, false} {
		_, errOut, code := cli(t, "token", "create", "--db", typoDB, "--role", "admin", "--name", fmt.Sprint("a", i))
		if code != 0 || strings.Contains(errOut, typoDB+" did not exist") != want {
			t.Errorf("token create #%d: %d %s", i, code, errOut)
		}
	}

	if out, _, code := cli(t, "audit", "verify", "--db", db); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	// Tamper with one entry behind the registry's back.
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_no_update", "UPDATE audit SET detail = '{}' WHERE seq = 2"} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	_, errOut, code = cli(t, "audit", "verify", "--db", db)
	if code == 0 || !strings.Contains(errOut, "entry 2") {
		t.Errorf("tampered audit: %d %s", code, errOut)
	}

	backup := filepath.Join(dir, "backup.db")
	if _, errOut, code := cli(t, "backup", "--db", db2, "--out", backup); code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	// Without its key a backup is refused, saying which key, and no new
	// key (which could not match its lists) is left beside it.
	for _, args := range [][]string{{"audit", "verify"}, {"export"}, {"token", "create", "--role", "admin", "--name", "x"}} {
		_, errOut, code := cli(t, append(args, "--db", backup)...)
		if code == 0 || !strings.Contains(errOut, "signing key "+backup+".key not found") || strings.Count(errOut, "not found") != 1 {
			t.Errorf("%v on a backup without its key: %d %s", args, code, errOut)
		}
		if _, err := os.Stat(backup + ".key"); err == nil {
			t.Fatalf("%v made a key for an existing database", args)
		}
	}
	os.Link(db2+".key", backup+".key")
	restored, _, _ := cli(t, "export", "--db", backup)
	if restored != second {
		t.Error("backup does not restore the same registry")
	}
	out, _, code := cli(t, "keygen", "--db", db2)
	if code != 0 || len(strings.TrimSpace(out)) != 44 {
		t.Errorf("keygen: %q", out)
	}
}

// TestResolverWithRealRegistry runs the real registry and the real
// resolver as processes, with a small upstream DNS server on loopback.
// writeResolverConfig writes a resolver config at path for the tests
// that run a resolver against a real registry: loopback listeners on
// free ports, scope common, the registry's key pinned, more (YAML lines)
// after.
func writeResolverConfig(t *testing.T, path, registry, pub, cacheDir, upstream, more string) string {
	t.Helper()
	body := fmt.Sprintf(`listen: 127.0.0.1:0
registry: %s
scope: common
public_key: %q
cache_dir: %s
upstreams: [%q]
metrics_listen: 127.0.0.1:0
`, registry, strings.TrimSpace(pub), cacheDir, upstream) + more
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolverWithRealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two processes")
	}
	dir, db, reg, pub := seededRegistry(t)
	up := startUpstream(t)
	conf := writeResolverConfig(t, filepath.Join(dir, "resolver.yaml"), reg.url, pub, filepath.Join(dir, "cache"), up, "mode: enforce\n")
	res, metrics := startResolverMetrics(t, conf)
	ask := func(name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		m.SetEdns0(1232, false)
		resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, res)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return resp
	}
	deadline := time.Now().Add(5 * time.Second)
	for ask("us02web.zoom.us").Rcode != dns.RcodeSuccess {
		if time.Now().After(deadline) {
			t.Fatal("the resolver never allowed zoom.us from the seeded common list")
		}
		time.Sleep(50 * time.Millisecond)
	}
	blocked := ask("meet.jit.si")
	if blocked.Rcode != dns.RcodeNameError {
		t.Fatalf("unlisted name: %s", blocked)
	}

	// Two departments approve Jitsi: the resolver enforces it within 2 s.
	owner := func(dept string) string {
		out, _, _ := cli(t, "token", "create", "--db", db, "--role", "owner", "--department", dept, "--name", dept)
		return lastLine(out)
	}
	dsit, hmrc := owner("dsit"), owner("hmrc")
	reg.call(t, "POST", "/v1/sites", dsit, `{"id":"jitsi-meet","name":"Jitsi Meet","category":"video-conferencing","domains":["meet.jit.si"],"owner":{"name":"Jitsi"}}`)
	reg.call(t, "PUT", "/v1/sites/jitsi-meet/signoffs/dsit", dsit, `{"decision":"approve"}`)
	if c, b := reg.call(t, "PUT", "/v1/sites/jitsi-meet/signoffs/hmrc", hmrc, `{"decision":"approve"}`); c != 200 {
		t.Fatalf("sign-off: %d %s", c, b)
	}
	approved := time.Now()
	for ask("meet.jit.si").Rcode != dns.RcodeSuccess {
		if time.Since(approved) > 2*time.Second {
			t.Fatal("the approved site was not enforced within 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("quorum to enforcement: %v", time.Since(approved))
	// It took the change as a patch (HEAD on the watch, then the diff),
	// and the list it rebuilt is the registry's, byte for byte.
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `allowlist_resolver_list_updates_total{how="patch"} 1`) {
		t.Errorf("the new version was not taken as a patch:\n%s", grepLines(string(m), "allowlist_resolver_list_updates_total", "allowlist_resolver_patch_failures_total"))
	}
	_, published := reg.call(t, "GET", "/v1/lists/common", "", "")
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "cache", "list.cache")); bytes.HasSuffix(b, published) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache file never held the published list")
		}
	}

	// Registry gone: the resolver keeps answering; restarted, it starts
	// from its cache.
	reg.cmd.Process.Kill()
	reg.cmd.Wait()
	if ask("meet.jit.si").Rcode != dns.RcodeSuccess || ask("games.example.com").Rcode != dns.RcodeNameError {
		t.Error("the resolver changed its answers when the registry went away")
	}
	// The resolver enforces a new list first and keeps it as its cache
	// just after: wait for the cache file to have it.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "cache", "list.cache")); strings.Contains(string(b), `"meet.jit.si"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache file never got the approved site")
		}
	}
	res2 := startResolver(t, conf)
	if ask2 := func() int {
		m := new(dns.Msg)
		m.SetQuestion("meet.jit.si.", dns.TypeA)
		resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, res2)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Rcode
	}(); ask2 != dns.RcodeSuccess {
		t.Errorf("restarted resolver with the registry down: rcode %d", ask2)
	}
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// startResolver starts `allowlist resolve` and returns its UDP address.
func startResolver(t *testing.T, conf string) string {
	t.Helper()
	udp, _ := startResolverMetrics(t, conf)
	return udp
}

// startResolverMetrics is startResolver, also returning the metrics address.
func startResolverMetrics(t *testing.T, conf string) (string, string) {
	t.Helper()
	_, _, udp, metrics := startResolverProc(t, conf)
	return udp, metrics
}

// startResolverProc is startResolverMetrics, also returning the process
// and what it writes to stderr (its log).
func startResolverProc(t *testing.T, conf string) (*exec.Cmd, *realproc.Buffer, string, string) {
	t.Helper()
	return startResolverCmd(t, exec.Command(binary, "resolve", "--config", conf))
}

// startResolverCmd starts a resolver command (allowlist resolve, or
// allowlist-resolver) and reads the addresses it listens on.
func startResolverCmd(t *testing.T, cmd *exec.Cmd) (*exec.Cmd, *realproc.Buffer, string, string) {
	t.Helper()
	out, _ := cmd.StdoutPipe()
	errb := &realproc.Buffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("resolver did not start: %v\n%s", err, errb.String())
	}
	f := strings.Fields(line) // resolver listening on ADDR (udp) ADDR (tcp), metrics on ADDR, ...
	if len(f) < 10 {
		t.Fatalf("resolver said %q", line)
	}
	return cmd, errb, f[3], strings.TrimSuffix(f[9], ",")
}

// startUpstream answers every A query with 192.0.2.1.
func startUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestShownEscapesControls: text from a registry cannot move the cursor,
// start a new line or reverse what a terminal shows.
func TestShownEscapesControls(t *testing.T) {
	for in, want := range map[string]string{
		"Zoom":                 "Zoom",
		"Zoom\nallowed: yes":   `Zoom\u000aallowed: yes`,
		"a\x1b[2Jb":            `a\u001b[2Jb`,
		"evil\u202egpj.exe":    `evil\u202egpj.exe`,
		"Wiki für alle \u0645": "Wiki für alle \u0645",
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWebOptions: behind an https public address the pages' cookies are
// Secure and HSTS is sent, even on a loopback listener (the documented
// deployment behind a TLS proxy), and so when it serves TLS itself.
func TestWebOptions(t *testing.T) {
	for _, c := range []struct {
		listen, public, cert string
		secure, hsts         bool
	}{
		{"127.0.0.1:8080", "", "", false, false},
		{"127.0.0.1:8080", "https://allowlist.example.gov.uk", "", true, true},
		{"[::1]:8080", "https://allowlist.example.gov.uk", "", true, true},
		{"0.0.0.0:8080", "", "", true, false},
		{"10.1.2.3:8080", "http://intranet.example", "", true, false},
		{"127.0.0.1:8443", "", "registry.crt", true, true},
	} {
		o := webOptions(ServeConfig{Listen: c.listen, PublicURL: c.public, TLSCert: c.cert, TLSKey: c.cert}, nil)
		if o.SecureCookies != c.secure || o.HSTS != c.hsts {
			t.Errorf("%s %s: secure %v hsts %v", c.listen, c.public, o.SecureCookies, o.HSTS)
		}
	}
	bad := DefaultServeConfig()
	for _, u := range []string{"ftp://x", "https://", "allowlist.example", "https://user:pw@x.example"} {
		bad.PublicURL = u
		if bad.Validate() == nil {
			t.Errorf("public_url %q accepted", u)
		}
	}
}

// An admin can see which tokens exist and which are still good, without
// the secrets, from the command line.
func TestTokenList(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	secret, errOut, code := cli(t, "token", "create", "--db", db, "--role", "admin", "--name", "ops")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, "token", "create", "--db", db, "--role", "reader", "--name", "edge", "--expires", "720h"); code != 0 {
		t.Fatalf("create reader: %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, "token", "revoke", "--db", db, "1"); code != 0 {
		t.Fatalf("revoke: %d %s", code, errOut)
	}
	out, errOut, code := cli(t, "token", "list", "--db", db)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", out)
	}
	if f := strings.Split(lines[0], "\t"); len(f) != 6 || f[0] != "1" || f[1] != "admin" || f[2] != "-" || f[3] != "ops" || !strings.HasPrefix(f[5], "revoked ") {
		t.Errorf("first line %q", lines[0])
	}
	if f := strings.Split(lines[1], "\t"); len(f) != 6 || f[1] != "reader" || f[3] != "edge" || !strings.HasPrefix(f[5], "active, expires ") {
		t.Errorf("second line %q", lines[1])
	}
	if strings.Contains(out, strings.TrimSpace(secret)) {
		t.Error("a secret was printed")
	}
	if _, errOut, code := cli(t, "token", "list", "--db", filepath.Join(t.TempDir(), "none.db")); code == 0 || errOut == "" {
		t.Errorf("a missing database: exit %d, %q", code, errOut)
	}
}
