package analysis

import "context"

// Views is the analysis's part of a store: the tables the Engine derives
// from the observations, the decisions and the lists, which it reads back
// after a restart and writes after each batch (Backend, which also holds
// the reads of targets, leads and figures), and the one read its other
// readers add: a target with all of its timeline, for an ISP request.
//
// A store that keeps the analysis implements Views and runs
// analysistest.Run, the contract it must keep. The SQLite and the
// PostgreSQL store both do. The Engine itself needs only Backend.
type Views interface {
	Backend
	// TargetWithTimeline is Target with up to limit timeline entries,
	// newest first, rather than TimelineLimit: an ISP request needs every
	// sighting. ErrNotFound as Target.
	TargetWithTimeline(ctx context.Context, id string, scope Scope, limit int) (*TargetDetail, error)
}
