package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/pipeline"
)

// localConfirmedList is where analysts' confirmed associated files go
// (named in the help of 'vigil leads').
const localConfirmedList = analysis.LocalConfirmedList

// analysisEndpointWindow is the --endpoint-window of the running command
// (0: the default), read by every engine the command starts.
var analysisEndpointWindow atomic.Int64

// analysisIPv6 is the --ipv6-prefixes of the running command (nil: the
// default), read by every engine the command starts.
var analysisIPv6 atomic.Pointer[analysis.IPv6Config]

// analysisOwn is the --own-addresses of the running command (nil:
// none), read by every engine, pipeline and sensor the command starts.
var analysisOwn atomic.Pointer[own.Set]

// loadOwn reads --own-addresses, if given. The log line says how many
// entries, never which: the addresses are the deployment's own.
func (a *app) loadOwn() error {
	analysisOwn.Store(nil)
	if a.ownAddresses == "" {
		return nil
	}
	data, err := os.ReadFile(a.ownAddresses)
	if err != nil {
		return fmt.Errorf("--own-addresses: %w", err)
	}
	set, err := own.Parse(a.ownAddresses, data)
	if err != nil {
		return fmt.Errorf("--own-addresses: %w", err)
	}
	analysisOwn.Store(set)
	a.log.Debug("the deployment's own addresses: never recorded, never a target", "file", a.ownAddresses, "entries", set.Len())
	return nil
}

// startAnalysis starts the analysis over the store, caught up with what
// was stored since it last ran (pipeline.StartAnalysis). onAlert, if set,
// receives quarantine alerts.
func startAnalysis(ctx context.Context, log *slog.Logger, sq backend, onAlert func(analysis.Alert)) (*analysis.Engine, error) {
	return pipeline.StartAnalysis(ctx, sq, pipeline.AnalysisConfig{
		EndpointWindow: time.Duration(analysisEndpointWindow.Load()), IPv6: analysisIPv6.Load(), OnAlert: onAlert, Log: log,
		Own: analysisOwn.Load()})
}

// backendStore is the store as a backend: a store that holds targets,
// accounts and the audit trail, as both the SQLite and the PostgreSQL
// store do.
func (a *app) backendStore(ctx context.Context) (backend, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	sq, ok := st.(backend)
	if !ok {
		return nil, fmt.Errorf("store %s keeps no targets", redactDSN(a.dbPath))
	}
	return sq, nil
}
