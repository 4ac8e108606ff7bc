package postgres

import "github.com/cross-gov/allowlist/allowlist/sqlite"

// OpenSerializable opens a store whose writers are ordered by SERIALIZABLE
// transactions and retries, for BenchmarkWriters to weigh against Open's
// advisory lock.
func OpenSerializable(url string, opts sqlite.Options) (*sqlite.DB, error) {
	return open(url, opts, serializable)
}
