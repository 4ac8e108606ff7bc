package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certFiles serves a certificate and key from files, and takes them again
// when either file changes (a renewed certificate needs no restart). A
// renewal that does not load (half written, or a key that does not match)
// is logged and the certificate in use stays.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times when loaded
	checked time.Time
}

// newCertFiles loads the pair once, failing when it does not load.
func newCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, log: log}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls_cert, tls_key: %w", err)
	}
	c.cert, c.stamp, c.checked = &cert, c.fileStamp(), time.Now()
	return c, nil
}

func (c *certFiles) fileStamp() string {
	s := ""
	for _, p := range []string{c.certPath, c.keyPath} {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

// get is tls.Config.GetCertificate: the files are looked at no more than
// every 10 seconds.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < 10*time.Second {
		return c.cert, nil
	}
	c.checked = time.Now()
	if st := c.fileStamp(); st != c.stamp {
		cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
		if err != nil {
			c.log.Error("the TLS certificate files changed but do not load; keeping the certificate in use", "err", err)
			return c.cert, nil
		}
		c.cert, c.stamp = &cert, st
		c.log.Info("TLS certificate reloaded", "cert", c.certPath)
	}
	return c.cert, nil
}

// tlsConfig is the registry's TLS: 1.2 at least, Go's default suites.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}
