package sqlite

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/retention/retentiontest"
)

// The SQLite store keeps the retention contract: holds, purge in chunks
// (rows deleted; no partitions), records of what was purged.
func TestRetentionContract(t *testing.T) {
	retentiontest.Run(t, func(t *testing.T) retentiontest.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}
