package main

import (
	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/web"
)

// backend is the store as the commands that go beyond watch-lists and
// observations need it: the analysis's tables, the pages' views, accounts
// and the audit trail with its checkpoints. The commands reach it through
// these interfaces only. The SQLite and the PostgreSQL store are both
// one (the assertions below); a store that were not would be refused with
// a message saying what it keeps (app.backendStore).
type backend interface {
	store.Store
	analysis.Views
	figures.Store
	casework.Store
	casework.ProposalStore
	casework.CaseStore
	alerts.Store
	casework.OperationStore
	casework.OutcomeStore
	web.Store
	access.Store
	audit.BatchStore
	audit.CheckpointStore
	store.LogStore
	retention.Store
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)
