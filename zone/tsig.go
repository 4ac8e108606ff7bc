package zone

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/miekg/dns"
)

// keyring is the TSIG provider: the registry's keys, read again at most
// once a second, so a key made or revoked through the API or the command
// line counts within a second, and a flood of unknown keys costs no reads.
type keyring struct {
	src    Source
	log    *slog.Logger
	mu     sync.Mutex
	keys   map[string]allowlist.TSIGSecret // by canonical name
	loaded time.Time
}

func (k *keyring) get(name string) (allowlist.TSIGSecret, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.loaded) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		keys, err := k.src.FindTSIGSecrets(ctx)
		cancel()
		if err != nil {
			k.log.Warn("read TSIG keys", "err", err)
		} else {
			k.keys = make(map[string]allowlist.TSIGSecret, len(keys))
			for _, key := range keys {
				k.keys[dns.CanonicalName(key.Name)] = key
			}
			k.loaded = time.Now()
		}
	}
	key, ok := k.keys[dns.CanonicalName(name)]
	return key, ok
}

func (k *keyring) known(name string) bool {
	_, ok := k.get(name)
	return ok
}

func (k *keyring) allows(name, scope string) bool {
	key, ok := k.get(name)
	return ok && key.Allows(scope)
}

// label names a key in metrics by its number, not its name: /metrics is
// public, and a key's name often says which department's server uses it
// (`allowlist tsig list` maps numbers to names). Unknown names share one
// label, so that a client cannot grow the metrics by inventing names.
func (k *keyring) label(name string) string {
	if key, ok := k.get(name); ok {
		return strconv.FormatInt(key.ID, 10)
	}
	return "unknown"
}

// Generate computes an HMAC-SHA256 MAC; other algorithms are refused.
func (k *keyring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	key, ok := k.get(t.Hdr.Name)
	if !ok {
		return nil, dns.ErrSecret
	}
	if dns.CanonicalName(t.Algorithm) != dns.HmacSHA256 {
		return nil, dns.ErrKeyAlg
	}
	h := hmac.New(sha256.New, key.Secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify checks a MAC in constant time.
func (k *keyring) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(got, want) {
		return dns.ErrSig
	}
	return nil
}

// refusals audits refused transfers, at most once a minute for each key
// and client address and 30 a minute in all, so that a client cannot fill
// the audit log; every refusal is counted in the metrics regardless.
type refusals struct {
	mu     sync.Mutex
	seen   map[string]time.Time
	minute time.Time
	count  int
}

func (rf *refusals) audit(s *Server, key, remote, scope, reason string) {
	host := remote
	if h, _, err := splitHost(remote); err == nil {
		host = h
	}
	now := time.Now()
	rf.mu.Lock()
	k := key + "|" + host
	if last, ok := rf.seen[k]; ok && now.Sub(last) < time.Minute {
		rf.mu.Unlock()
		return
	}
	if now.Sub(rf.minute) >= time.Minute {
		rf.minute, rf.count = now, 0
		for sk, t := range rf.seen {
			if now.Sub(t) >= time.Minute {
				delete(rf.seen, sk)
			}
		}
	}
	if rf.count >= 30 {
		rf.mu.Unlock()
		return
	}
	rf.count++
	rf.seen[k] = now
	rf.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.src.AuditTransferRefused(ctx, key, remote, scope, reason); err != nil {
			s.log.Warn("audit refused transfer", "err", err)
		}
	}()
}
