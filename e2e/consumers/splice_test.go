package consumers

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// originCN names the certificate of the TLS origin the splice test talks
// to; a bumped connection shows Squid's certificate instead.
const originCN = "allowlist test origin"

// startTLSOrigin serves TLS on a loopback port with a certificate of its
// own for the names the test asks about, and returns the port and the
// certificate (PEM), which Squid is told to trust.
func startTLSOrigin(t *testing.T) (int, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: originCN},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"*.jitsi.net", "meet.jit.si", "www.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "origin-ok") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// askSplice starts Squid with ssl_bump splicing the names in the
// squid-tls-bypass file and bumping the rest, and returns a question:
// does a TLS connection to host through it reach the origin untouched
// (spliced: the origin's own certificate), or is it intercepted (bumped:
// a certificate Squid made with its CA)?
func askSplice(t *testing.T, e *env, squid, bypassFile, caFile string, hosts []string) func(host string) (spliced bool, err error) {
	t.Helper()
	origin, originPEM := startTLSOrigin(t)
	// Squid drops root for user proxy: its files live in a directory that
	// user can write, and its certificate database is made before it starts.
	dir := filepath.Join(e.dir, "squid-splice")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	originCA := writeFile(t, dir, "origin.pem", string(originPEM))
	run(t, "/usr/lib/squid/security_file_certgen", "-c", "-s", filepath.Join(dir, "ssl_db"), "-M", "4MB")
	run(t, "chmod", "-R", "a+rwX", filepath.Join(dir, "ssl_db"))
	var h strings.Builder
	for _, name := range hosts {
		fmt.Fprintf(&h, "127.0.0.1 %s\n", name)
	}
	hostsFile := writeFile(t, e.dir, "splice-hosts", h.String())
	port := realproc.FreePort(t)
	conf := writeFile(t, e.dir, "squid-splice.conf", fmt.Sprintf(`http_port 127.0.0.1:%d ssl-bump cert=%[2]s generate-host-certificates=on dynamic_cert_mem_cache_size=4MB
sslcrtd_program /usr/lib/squid/security_file_certgen -s %[3]s/ssl_db -M 4MB
pid_filename %[3]s/squid.pid
cache_log %[3]s/cache.log
access_log stdio:%[3]s/access.log
coredump_dir %[3]s
cache deny all
hosts_file %[4]s
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
tls_outgoing_options cafile=%[6]s
acl step1 at_step SslBump1
acl tls_bypass ssl::server_name "%[5]s"
ssl_bump peek step1
ssl_bump splice tls_bypass
ssl_bump bump all
http_access allow all
`, port, caFile, dir, hostsFile, bypassFile, originCA))
	out := run(t, squid, "-k", "parse", "-f", conf)
	for _, bad := range []string{"WARNING", "ERROR", "FATAL"} {
		if strings.Contains(out, bad) {
			t.Errorf("squid -k parse complained:\n%s", out)
		}
	}
	proxy := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, dir, squid, "-N", "-f", conf)
	p.waitFor(t, "squid (ssl_bump)", tcpReady(proxy))
	return func(host string) (bool, error) {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			return false, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		target := fmt.Sprintf("%s:%d", host, origin)
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return false, err
		}
		if res.StatusCode != 200 {
			return false, fmt.Errorf("CONNECT: %s", res.Status)
		}
		tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			return false, err
		}
		certs := tc.ConnectionState().PeerCertificates
		if len(certs) == 0 {
			return false, fmt.Errorf("no certificate")
		}
		return certs[0].Issuer.CommonName == originCN, nil
	}
}
