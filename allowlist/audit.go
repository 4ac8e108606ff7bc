package allowlist

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// AuditEntry is one record of the append-only audit log. Hash covers
// PrevHash and every other field, so changing, removing or reordering any
// entry breaks the chain from there on.
type AuditEntry struct {
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Object   string    `json:"object"`
	Detail   string    `json:"detail"`
	Hash     string    `json:"hash"`
	PrevHash string    `json:"prev_hash"`
}

// ComputeHash returns the hex SHA-256 over the entry's fields and PrevHash.
// Each field is length-prefixed so that no two different entries hash the
// same input.
func (e AuditEntry) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	write(e.At.UTC().Format(time.RFC3339Nano))
	write(e.Actor)
	write(e.Action)
	write(e.Object)
	write(e.Detail)
	write(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyAudit checks a chain of entries in order, starting from prev (the
// hash before the first entry, "" for the start of the log). It returns the
// sequence number of the first broken entry, or 0 and true.
func VerifyAudit(entries []AuditEntry, prev string) (int64, bool) {
	for _, e := range entries {
		if e.PrevHash != prev || e.ComputeHash() != e.Hash {
			return e.Seq, false
		}
		prev = e.Hash
	}
	return 0, true
}
