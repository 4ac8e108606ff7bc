package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverOnlyBinary: the resolver-only executable (cmd/allowlist-
// resolver, built as bin/allowlist-resolver) takes the same config file
// as `allowlist resolve`, enforces the list of a real registry process
// (a listed name answered, an unlisted one NXDOMAIN with the reason),
// serves its metrics, sends a usage report on SIGUSR1 and stops cleanly
// on SIGTERM. Its config mistakes stop it as they stop `allowlist resolve`.
func TestResolverOnlyBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two processes")
	}
	dir, db, reg, pub := seededRegistry(t)
	out, _, _ := cli(t, "token", "create", "--db", db, "--role", "reader", "--department", "dsit", "--name", "edge")
	conf := writeResolverConfig(t, filepath.Join(dir, "resolver.yaml"), reg.url, pub, filepath.Join(dir, "cache"), startUpstream(t),
		"token: "+lastLine(out)+"\nreport:\n  every: 1h\n  k: 5\n  department: dsit\n")
	cmd, logs, udp, metrics := startResolverCmd(t, exec.Command(resolverBinary, "--config", conf))
	deadline := time.Now().Add(5 * time.Second)
	for askA(t, udp, "us02web.zoom.us").Rcode != dns.RcodeSuccess {
		if time.Now().After(deadline) {
			t.Fatalf("allowlist-resolver never allowed zoom.us from the seeded common list\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := askA(t, udp, "games.example.com"); got.Rcode != dns.RcodeNameError || !strings.Contains(edeText(got), "blocked by the cross-government allow-list") {
		t.Fatalf("unlisted name: rcode %d, EDE %q", got.Rcode, edeText(got))
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(m, []byte("allowlist_resolver_queries_total")) {
		t.Fatal("no resolver metrics")
	}
	// SIGUSR1 sends the report now: the registry shows the department's use.
	cmd.Process.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if metric(t, metrics, "allowlist_resolver_usage_reports_sent_total") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage report after SIGUSR1\n%s", logs.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("allowlist-resolver did not stop on SIGTERM")
	}

	// The same mistakes, the same messages, exit status 1.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("public_key: nope\n"), 0o644)
	for _, args := range [][]string{{"--config", bad}, {}, {"--config", filepath.Join(dir, "missing.yaml")}} {
		var so, se bytes.Buffer
		c := exec.Command(resolverBinary, args...)
		c.Stdout, c.Stderr = &so, &se
		err := c.Run()
		_, _, want := cli(t, append([]string{"resolve"}, args...)...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != want || want == 0 {
			t.Errorf("%v: %v, want exit %d", args, err, want)
		}
		if msg := strings.TrimPrefix(se.String(), "allowlist-resolver: "); msg == se.String() || msg == "" {
			t.Errorf("%v: stderr %q", args, se.String())
		}
	}
	if err := exec.Command(resolverBinary, "--help").Run(); err != nil {
		t.Errorf("--help: %v", err)
	}
}

// TestResolverOnlyBinaryHelp: bin/allowlist-resolver answers --help on
// standard output and says a flag mistake once, as allowlist does.
func TestResolverOnlyBinaryHelp(t *testing.T) {
	var out, errb bytes.Buffer
	cmd := exec.Command(resolverBinary, "--help")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || !strings.HasPrefix(out.String(), "usage: allowlist-resolver") || errb.Len() != 0 {
		t.Errorf("--help: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	cmd = exec.Command(resolverBinary, "--no-such-flag")
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(errb.String(), "no-such-flag") != 1 || out.Len() != 0 {
		t.Errorf("--no-such-flag: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
	}
}
