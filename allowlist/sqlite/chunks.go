package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// A list content (the canonical JSON array of a version's entries) is
// stored as chunks. Cuts fall before an entry whose pattern hashes to a
// value that 1 in chunkEntries do, so they depend on the entries near
// them and nothing else: adding or removing a site moves no cut but those
// next to it, and the next version shares every other chunk with the one
// before. About 1,024 entries (90 KB) a chunk, so a change to a site of
// ten domains, spread through the sorted list, stores about 2 MB again at
// a million entries, not 85 MB; at most 64 times that, so that patterns
// chosen to avoid cuts cannot make one chunk of everything.
const (
	chunkEntries    = 1024
	maxChunkEntries = 64 * chunkEntries
)

var entrySep = []byte(`},{"pattern":"`)

// cutContent splits content into chunks whose concatenation is content.
func cutContent(content []byte) [][]byte {
	var out [][]byte
	start, pos, n := 0, 0, 0
	for {
		i := bytes.Index(content[pos:], entrySep)
		if i < 0 {
			break
		}
		cut := pos + i + 2 // where the next entry starts
		pos = cut + len(entrySep) - 2
		end := bytes.IndexByte(content[pos:], '"')
		if end < 0 {
			break
		}
		n++
		if cutBefore(content[pos:pos+end]) || n >= maxChunkEntries {
			out = append(out, content[start:cut])
			start, n = cut, 0
		}
	}
	return append(out, content[start:])
}

// cutBefore reports whether a chunk starts at the entry with this pattern
// (FNV-1a, its top 10 bits zero: 1 in chunkEntries).
func cutBefore(pattern []byte) bool {
	h := uint64(14695981039346656037)
	for _, c := range pattern {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h>>54 == 0
}

// storeContent stores a list content under its hash, unless it is there:
// the chunks it does not share with a content already stored, and their
// order.
func storeContent(ctx context.Context, tx *sql.Tx, sha string, content []byte) error {
	var one int
	switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM contents WHERE sha256 = ?", sha).Scan(&one); err {
	case nil:
		return nil
	case sql.ErrNoRows:
	default:
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO contents (sha256, entries) VALUES (?, ?)", sha, []byte{}); err != nil {
		return err
	}
	for seq, chunk := range cutContent(content) {
		sum := sha256.Sum256(chunk)
		id := hex.EncodeToString(sum[:])
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM chunks WHERE sha256 = ?", id).Scan(&one); err {
		case nil:
		case sql.ErrNoRows:
			if _, err := tx.ExecContext(ctx, "INSERT INTO chunks (sha256, bytes) VALUES (?, ?)", id, chunk); err != nil {
				return err
			}
		default:
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO content_chunks (content, seq, chunk) VALUES (?, ?, ?)", sha, seq, id); err != nil {
			return err
		}
	}
	return nil
}

// readContent returns the content with hash sha, joined from its chunks
// (a content stored whole comes with its version's row: see joinBody).
func readContent(ctx context.Context, q queryer, sha string) ([]byte, error) {
	rows, err := q.QueryContext(ctx, "SELECT k.bytes FROM content_chunks cc JOIN chunks k ON k.sha256 = cc.chunk WHERE cc.content = ? ORDER BY cc.seq", sha)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []byte
	chunks := 0
	for rows.Next() {
		var b sql.RawBytes
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b...)
		chunks++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if chunks == 0 {
		return nil, errors.New("the list content has no chunks")
	}
	if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("the list content joined from its chunks does not hash to %s", sha)
	}
	return out, nil
}
