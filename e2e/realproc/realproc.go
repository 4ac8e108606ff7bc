// Package realproc holds what the tests that run real programs (DNS
// servers, proxies, browsers) share: finding a program, a free loopback
// port, and a buffer a process may write to while the test reads it.
// Tests import it; the product does not.
package realproc

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Need returns the path of an installed program, looking in PATH and in
// /usr/sbin and /sbin (where Debian puts servers). A missing program
// fails the test in CI (.ci/run installs every one) and skips it
// elsewhere.
func Need(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/sbin/", "/usr/bin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/run must install it", name)
	}
	t.Skipf("%s is not installed (CI=true makes this a failure)", name)
	return ""
}

// FreeAddr returns a loopback address whose port is free for both UDP
// and TCP at the moment of asking.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return ""
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return int(ap.Port())
}

// Buffer collects a process's output safely while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
