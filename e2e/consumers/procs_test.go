package consumers

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a process the test started; Cleanup stops it by its PID.
type proc struct {
	cmd  *exec.Cmd
	out  *realproc.Buffer
	done chan struct{}
}

// start runs a program in dir and stops it when the test ends.
func start(t *testing.T, dir, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out := &realproc.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not stop", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(p.out.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitFor polls ready until it returns nil, failing the test with the
// process's output if the process exits or 30 seconds pass.
func (p *proc) waitFor(t *testing.T, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = ready(); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", what, p.cmd.ProcessState, tail(p.out.String(), 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready after 30s: %v\n%s", what, err, tail(p.out.String(), 3000))
}

func tcpReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// mustContain fails unless s has every want.
func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// run runs a program to completion, failing the test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// output runs a program and returns what it printed, with its error.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// newEnv makes the suite's temp dir. Squid and dnsmasq drop root: they
// must reach their files, so it is opened to all (it holds no secret).
func newEnv(t *testing.T) *env {
	e := &env{dir: t.TempDir()}
	for _, d := range []string{filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}
