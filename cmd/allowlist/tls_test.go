package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a server certificate for 127.0.0.1 and localhost, and
// writes it and its key as PEM files in dir.
func (ca *testCA) issue(t *testing.T, dir string, serial int64) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "registry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "registry.crt"), filepath.Join(dir, "registry.key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certPath, keyPath
}

// TestTLSRegistryAndResolver: the registry serves https itself with a
// certificate from a CA made here; a client and a resolver that trust that
// CA (ca_file) get lists; a resolver given another CA refuses the registry
// and stays without a list; plain http to the https port gets nothing.
func TestTLSRegistryAndResolver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	dir := t.TempDir()
	ca, wrong := newTestCA(t, "test registry CA"), newTestCA(t, "some other CA")
	certPath, keyPath := ca.issue(t, dir, 2)
	caPath, wrongPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "wrong-ca.pem")
	os.WriteFile(caPath, ca.pem, 0o644)
	os.WriteFile(wrongPath, wrong.pem, 0o644)

	db := filepath.Join(dir, "registry.db")
	reg := startRegistry(t, db, "--seed", "--tls-cert", certPath, "--tls-key", keyPath)
	if !strings.HasPrefix(reg.url, "https://127.0.0.1:") {
		t.Fatalf("registry says it listens on %s", reg.url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get(reg.url + "/v1/lists/common")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https list: %d, TLS %+v", resp.StatusCode, resp.TLS)
	}
	if _, err := http.Get(reg.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v", err)
	}
	if resp, err := http.Get(strings.Replace(reg.url, "https://", "http://", 1) + "/v1/lists/common"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain http to the https port got a list: %.100s", b)
		}
	}
	old := &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", strings.TrimPrefix(reg.url, "https://"), old); err == nil {
		c.Close()
		t.Error("TLS 1.1 accepted")
	}

	// allowlist check, with and without the CA.
	if out, errOut, code := cli(t, "check", "us02web.zoom.us", "--registry", reg.url, "--ca-file", caPath); code != 0 {
		t.Errorf("check over https with --ca-file: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, "check", "us02web.zoom.us", "--registry", reg.url); code != 2 || !strings.Contains(errOut, "certificate") {
		t.Errorf("check over https without the CA: exit %d, %q", code, errOut)
	}

	out, _, _ := cli(t, "keygen", "--db", db)
	pub := strings.TrimSpace(out)
	up := startUpstream(t)
	conf := func(name, caFile string) string {
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte("listen: 127.0.0.1:0\nregistry: "+reg.url+"\nscope: common\npublic_key: "+pub+
			"\ncache_dir: "+filepath.Join(dir, "cache-"+name)+"\nupstreams: [\""+up+"\"]\nmetrics_listen: 127.0.0.1:0\nca_file: "+caFile+
			"\npoll_interval: 1s\n"), 0o644)
		return p
	}
	res, metrics := startResolverMetrics(t, conf("good", caPath))
	waitMetric(t, metrics, "a list over https", 10*time.Second, func(m map[string]float64) bool {
		return m["allowlist_resolver_list_version"] >= 1
	})
	if r := askA(t, res, "us02web.zoom.us"); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("allowed name over an https-fed resolver: %s", r)
	}

	res, metrics = startResolverMetrics(t, conf("wrong", wrongPath))
	m := waitMetric(t, metrics, "the wrong CA refused", 10*time.Second, func(m map[string]float64) bool {
		return m[`allowlist_resolver_sync_errors_total{reason="fetch"}`] >= 2
	})
	if m["allowlist_resolver_list_version"] != -1 {
		t.Errorf("a registry with a certificate from the wrong CA gave a list: version %v", m["allowlist_resolver_list_version"])
	}
	if r := askA(t, res, "us02web.zoom.us"); r.Rcode != dns.RcodeRefused {
		t.Errorf("without a list, an allowed name: rcode %d", r.Rcode)
	}

	// Configuration mistakes are named.
	os.WriteFile(filepath.Join(dir, "empty.pem"), []byte("not a certificate\n"), 0o644)
	for _, c := range []struct{ caFile, registry, want string }{
		{filepath.Join(dir, "empty.pem"), reg.url, "no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), reg.url, "ca_file"},
		{caPath, "http://127.0.0.1:1", "not https"},
	} {
		p := filepath.Join(dir, "bad.yaml")
		os.WriteFile(p, []byte("listen: 127.0.0.1:0\nregistry: "+c.registry+"\npublic_key: "+pub+"\ncache_dir: "+dir+
			"\nmetrics_listen: 127.0.0.1:0\nca_file: "+c.caFile+"\n"), 0o644)
		if _, errOut, code := cli(t, "resolve", "--config", p); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("ca_file %s, registry %s: exit %d, %q", c.caFile, c.registry, code, errOut)
		}
	}
	if _, errOut, code := cli(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--tls-cert", certPath); code == 0 || !strings.Contains(errOut, "tls_key") {
		t.Errorf("--tls-cert alone: exit %d, %q", code, errOut)
	}
	if _, errOut, code := cli(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--tls-cert", keyPath, "--tls-key", keyPath); code == 0 || !strings.Contains(errOut, "tls_cert") {
		t.Errorf("a key as the certificate: exit %d, %q", code, errOut)
	}
}

// TestCertificateReload: a renewed certificate is served without a
// restart; files that do not load leave the one in use.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	certPath, keyPath := ca.issue(t, dir, 10)
	c, err := newCertFiles(certPath, keyPath, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		c.mu.Lock()
		c.checked = time.Time{} // as if 10 s had passed
		c.mu.Unlock()
		got, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(got.Certificate[0])
		return leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 10 {
		t.Fatalf("serial %d", s)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time
	ca.issue(t, dir, 11)
	if s := serial(); s != 11 {
		t.Fatalf("renewed certificate not taken: serial %d", s)
	}
	os.WriteFile(certPath, []byte("half written"), 0o644)
	if s := serial(); s != 11 {
		t.Fatalf("a broken renewal replaced the certificate: serial %d", s)
	}
}
