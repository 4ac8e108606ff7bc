package resolver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// registryClient is the HTTP client for the registry: plain http, or
// https checked against the system's roots or, with ca_file, against those
// certificates alone.
func registryClient(opt Options, timeout time.Duration) (*http.Client, error) {
	u, err := url.Parse(opt.Registry)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry: %q is not an http:// or https:// URL", opt.Registry)
	}
	if opt.CAFile != "" && u.Scheme != "https" {
		return nil, fmt.Errorf("ca_file: set, but the registry %q is not https://", opt.Registry)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tr.TLSClientConfig, err = RegistryTLS(opt.CAFile); err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) && opt.Logger != nil {
		opt.Logger.Warn("the registry is plain http:// over the network: anyone on the path can read the token and hold back lists "+
			"(signatures and timestamps still stop them changing or rolling back a list); use https:// with ca_file", "registry", opt.Registry)
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// RegistryTLS is the TLS configuration for reaching a registry: TLS 1.2
// at least, and the system's CA certificates or, when caFile is set, the
// PEM certificates in it alone.
func RegistryTLS(caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return c, nil
}
