package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// localConfirmedList is where analysts' confirmed associated files go
// (named in the help of 'vigil leads').
const localConfirmedList = analysis.LocalConfirmedList

// analysisEndpointWindow is the --endpoint-window of the running command
// (0: the default), read by every engine the command starts.
var analysisEndpointWindow atomic.Int64

// startAnalysis starts the analysis over the store, caught up with what
// was stored since it last ran (pipeline.StartAnalysis). onAlert, if set,
// receives quarantine alerts.
func startAnalysis(ctx context.Context, log *slog.Logger, sq *sqlite.Store, onAlert func(analysis.Alert)) (*analysis.Engine, error) {
	return pipeline.StartAnalysis(ctx, sq, pipeline.AnalysisConfig{
		EndpointWindow: time.Duration(analysisEndpointWindow.Load()), OnAlert: onAlert, Log: log})
}

// sqliteStore is the store as the embedded SQLite store, which alone holds
// targets, accounts and the audit trail today.
func (a *app) sqliteStore(ctx context.Context) (*sqlite.Store, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	sq, ok := st.(*sqlite.Store)
	if !ok {
		return nil, fmt.Errorf("store %s keeps no targets", a.dbPath)
	}
	return sq, nil
}
