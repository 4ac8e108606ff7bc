// Package notifytest starts the real services notification tests talk
// to: an Exim SMTP server from Debian (exim4-daemon-light) on a loopback
// port, delivering every message to one local mailbox file.
package notifytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Exim is a running Exim daemon.
type Exim struct {
	Addr    string // 127.0.0.1:PORT
	Mailbox string // the mbox file every message is appended to
	dir     string
}

// StartExim starts Exim on a free loopback port, stopped (by its PID) when
// the test ends. Without Exim the test is skipped, or fails when CI=true.
func StartExim(t testing.TB) *Exim {
	t.Helper()
	bin, err := exec.LookPath("exim4")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/exim4")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("exim4 is missing: apt-get install exim4-daemon-light")
		}
		t.Skip("exim4 is not installed (apt-get install exim4-daemon-light)")
	}
	// Exim will not deliver as root: run it as its own user, in a
	// directory that user owns.
	dir, err := os.MkdirTemp("", "allowlist-exim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("Debian-exim")
		if err != nil {
			t.Fatalf("exim's user: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	port := freePort(t)
	e := &Exim{Addr: "127.0.0.1:" + strconv.Itoa(port), Mailbox: filepath.Join(dir, "mailbox"), dir: dir}
	conf := fmt.Sprintf(`primary_hostname = allowlist.test
daemon_smtp_ports = %d
local_interfaces = 127.0.0.1
spool_directory = %[2]s/spool
log_file_path = %[2]s/log/%%slog
pid_file_path = %[2]s/exim.pid
qualify_domain = allowlist.test
acl_smtp_rcpt = acl_check_rcpt
tls_advertise_hosts =
host_lookup =
rfc1413_hosts =
begin acl
acl_check_rcpt:
  accept
begin routers
mailbox:
  driver = accept
  transport = local_mailbox
begin transports
local_mailbox:
  driver = appendfile
  file = %[2]s/mailbox
  delivery_date_add
  envelope_to_add
  return_path_add
begin retry
*  *  F,1m,10s
`, port, dir)
	for _, d := range []string{"spool", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "exim.conf"), []byte(conf), 0o644)
	if uid >= 0 {
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
	}
	// -bdf: a daemon in the foreground, so that the PID is the daemon's;
	// -odi: deliver each message at once, while the SMTP client waits.
	cmd := exec.Command(bin, "-C", filepath.Join(dir, "exim.conf"), "-bdf", "-odi", "-q10s")
	cmd.Dir = dir
	logf, _ := os.Create(filepath.Join(dir, "stderr"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start exim: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", e.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return e
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			t.Fatalf("exim did not listen on %s: %s", e.Addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitFor waits until the mailbox holds every one of want, and returns it.
func (e *Exim) WaitFor(t testing.TB, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(e.Mailbox)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(string(b), w)
		}
		if ok {
			return string(b)
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(e.dir, "log", "mainlog"))
			t.Fatalf("the mailbox lacks %q after %s:\n%s\nexim log:\n%s", want, timeout, b, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
