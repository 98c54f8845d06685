package postgres

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/retention/retentiontest"
)

// The PostgreSQL store keeps the retention contract (migration 0015).
func TestRetentionContract(t *testing.T) {
	requirePostgres(t)
	retentiontest.Run(t, func(t *testing.T) retentiontest.Store { return openContract(t, DefaultConfig()) })
}
