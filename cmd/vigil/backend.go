package main

import (
	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/web"
)

// backend is the store as the commands that go beyond watch-lists and
// observations need it: the analysis's tables, the pages' views, accounts
// and the audit trail with its checkpoints. The commands reach it through
// these interfaces only. The SQLite store is one; the PostgreSQL store is
// not yet (it keeps watch-lists and observations), and such a command
// says so (app.sqliteStore).
type backend interface {
	store.Store
	analysis.Views
	figures.Store
	casework.Store
	casework.ProposalStore
	casework.CaseStore
	web.Store
	access.Store
	audit.BatchStore
	audit.CheckpointStore
}
