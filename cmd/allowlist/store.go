package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
)

// keyPathFor is where the signing key lives by default: beside a SQLite
// database, so that a backup of the directory keeps both; for a
// PostgreSQL one, shared by every instance, ALLOWLIST_SIGNING_KEY says.
func keyPathFor(db string) string {
	if postgres.IsURL(db) {
		return os.Getenv("ALLOWLIST_SIGNING_KEY")
	}
	return db + ".key"
}

// redact is a --db value fit for logs: a URL without its password.
func redact(db string) string {
	if u, err := url.Parse(db); err == nil && postgres.IsURL(db) {
		return u.Redacted()
	}
	return db
}

// loadOrCreateKey reads a PKCS #8 PEM Ed25519 key, creating one (mode
// 0600) on first use.
func loadOrCreateKey(path string) (ed25519.PrivateKey, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		return key, true, f.Close()
	}
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("signing key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("signing key %s: not an Ed25519 key", path)
	}
	return key, false, nil
}

// keyBesideExisting refuses to make a new signing key for a SQLite
// database that already exists (a backup copied without its key, a key
// moved away): a new key cannot match the lists the database holds, and
// writing one would leave a wrong key file behind.
func keyBesideExisting(path, keyPath string) error {
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return nil // a new database gets a new key
	}
	return fmt.Errorf("signing key %s not found, but %s is an existing registry: copy the key it was created with (the original database's .key file) to %s", keyPath, path, keyPath)
}

// openDB opens (creating and migrating) the database with its key: a
// SQLite file, or a PostgreSQL database for a postgres:// URL.
func openDB(path, keyPath string, opts sqlite.Options) (*sqlite.DB, error) {
	if path == "" {
		return nil, errors.New("--db is required")
	}
	if keyPath == "" {
		keyPath = keyPathFor(path)
	}
	if postgres.IsURL(path) {
		if keyPath == "" {
			return nil, errors.New("a PostgreSQL registry needs its signing key: give --signing-key FILE or set ALLOWLIST_SIGNING_KEY (every instance must use the same key)")
		}
		key, _, err := loadOrCreateKey(keyPath)
		if err != nil {
			return nil, err
		}
		opts.Key = key
		return postgres.Open(path, opts)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	if err := keyBesideExisting(path, keyPath); err != nil {
		return nil, err
	}
	key, _, err := loadOrCreateKey(keyPath)
	if err != nil {
		return nil, err
	}
	opts.Key = key
	return sqlite.Open(path, opts)
}
