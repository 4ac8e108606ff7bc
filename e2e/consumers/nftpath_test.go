package consumers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// forwardPath is a firewall between a client and servers, each in a
// network namespace of its own (ip netns), joined by veth pairs: the
// client 198.51.100.2, the router (which forwards, and runs nft), and
// the servers' addresses behind it. Packets really cross the router's
// forward hook, so what the nft file and the commands in its header do
// to a flow, replies included, is what a firewall would do.
type forwardPath struct {
	ip, client, router, server string // ip binary and the namespaces' names
}

func newForwardPath(t *testing.T, serverAddrs ...string) *forwardPath {
	t.Helper()
	ip := realproc.Need(t, "ip")
	tag := fmt.Sprintf("al%d", os.Getpid()%100000)
	p := &forwardPath{ip: ip, client: tag + "-c", router: tag + "-r", server: tag + "-s"}
	for _, ns := range []string{p.client, p.router, p.server} {
		run(t, ip, "netns", "add", ns)
		t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	}
	cmds := [][]string{
		{"link", "add", tag + "c", "netns", p.client, "type", "veth", "peer", "name", tag + "rc", "netns", p.router},
		{"link", "add", tag + "s", "netns", p.server, "type", "veth", "peer", "name", tag + "rs", "netns", p.router},
		{"-n", p.client, "addr", "add", "198.51.100.2/24", "dev", tag + "c"},
		{"-n", p.client, "link", "set", tag + "c", "up"},
		{"-n", p.client, "route", "add", "default", "via", "198.51.100.1"},
		{"-n", p.router, "addr", "add", "198.51.100.1/24", "dev", tag + "rc"},
		{"-n", p.router, "link", "set", tag + "rc", "up"},
		{"-n", p.router, "link", "set", tag + "rs", "up"},
		{"-n", p.server, "link", "set", tag + "s", "up"},
	}
	for _, a := range serverAddrs {
		cmds = append(cmds,
			[]string{"-n", p.server, "addr", "add", a + "/32", "dev", tag + "s"},
			[]string{"-n", p.router, "route", "add", a + "/32", "dev", tag + "rs"})
	}
	cmds = append(cmds,
		[]string{"-n", p.router, "addr", "add", "192.0.2.254/32", "dev", tag + "rs"},
		[]string{"-n", p.server, "route", "add", "192.0.2.254/32", "dev", tag + "s"},
		[]string{"-n", p.server, "route", "add", "default", "via", "192.0.2.254", "dev", tag + "s", "onlink"},
		[]string{"netns", "exec", p.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"})
	for _, c := range cmds {
		run(t, ip, c...)
	}
	return p
}

// inNetns runs f on an OS thread switched into the named namespace; a
// socket f opens stays in that namespace after f returns.
func inNetns(name string, f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	ns, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	// A thread that cannot go back stays locked: it ends with this
	// goroutine, rather than serve another in the wrong namespace.
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	runtime.UnlockOSThread()
	return ferr
}

// echoUDP answers every datagram to addr:port with the same bytes, from
// the server namespace, until the test ends.
func (p *forwardPath) echoUDP(t *testing.T, addr string, port int) {
	t.Helper()
	var c *net.UDPConn
	if err := inNetns(p.server, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr), Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], from)
		}
	}()
}

// udpAnswered sends a datagram from the client to addr:port and reports
// whether the answer came back through the router.
func (p *forwardPath) udpAnswered(t *testing.T, addr string, port int) bool {
	t.Helper()
	var c *net.UDPConn
	if err := inNetns(p.client, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for try := 0; try < 3; try++ {
		if _, err := c.WriteToUDP([]byte("media"), &net.UDPAddr{IP: net.ParseIP(addr), Port: port}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 16)
		if n, _, err := c.ReadFromUDP(buf); err == nil && string(buf[:n]) == "media" {
			return true
		}
	}
	return false
}

// routerShell runs a shell command line (as a header writes one) in the
// router's namespace.
func (p *forwardPath) routerShell(t *testing.T, line string) {
	t.Helper()
	run(t, p.ip, "netns", "exec", p.router, "sh", "-c", line)
}

// headerCommands returns the nft commands a file's header tells the
// firewall owner to run once, with nft's path.
func headerCommands(t *testing.T, file, nft string) []string {
	t.Helper()
	var cmds []string
	for _, line := range strings.Split(readFile(t, file), "\n") {
		if cmd, ok := strings.CutPrefix(line, "#   nft "); ok {
			cmds = append(cmds, nft+" "+cmd)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("the nft header gives no commands for the base chain")
	}
	return cmds
}
