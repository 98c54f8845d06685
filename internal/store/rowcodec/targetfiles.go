package rowcodec

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// FileRow is one row of analysis_endpoint_files as both stores read it:
// one file at one endpoint.
type FileRow struct {
	Hash         hashkind.Hash
	Matched      string // JSON array of the matches
	Severity     int
	Level        int64
	Intent       string
	FirstNS      int64
	LastNS       int64
	Observations int
	Quarantined  bool
}

// TargetFiles assembles a target's files from its endpoints' rows, the
// same way in both stores: one FileInfo a file, with the level every
// endpoint itself reached.
type TargetFiles struct {
	files map[string]*analysis.FileInfo
}

// Add folds r, seen at at, into the target's files.
func (t *TargetFiles) Add(r FileRow, at analysis.FileAt) error {
	if t.files == nil {
		t.files = map[string]*analysis.FileInfo{}
	}
	k := analysis.HashKey(r.Hash)
	level := observe.Level(r.Level)
	first, last := nsTime(r.FirstNS), nsTime(r.LastNS)
	if g := t.files[k]; g != nil {
		g.At = append(g.At, at)
		g.MaxLevel = max(g.MaxLevel, level)
		if g.FirstSeen.IsZero() || (!first.IsZero() && first.Before(g.FirstSeen)) {
			g.FirstSeen = first
		}
		if last.After(g.LastSeen) {
			g.LastSeen = last
		}
		g.Observations += r.Observations
		if r.Intent == "sharing" {
			g.Intent = r.Intent
		}
		return nil
	}
	f := &analysis.FileInfo{Hash: r.Hash, Kind: r.Hash.Kind().String(), Hex: r.Hash.Hex(), Severity: r.Severity, MaxLevel: level,
		Intent: r.Intent, FirstSeen: first, LastSeen: last, Observations: r.Observations, Quarantined: r.Quarantined,
		At: []analysis.FileAt{at}}
	if r.Matched != "[]" {
		if err := json.Unmarshal([]byte(r.Matched), &f.Matched); err != nil {
			return err
		}
	}
	t.files[k] = f
	return nil
}

// Sorted returns the files, highest level first (then by hash), each
// file's endpoints highest level first (then by endpoint).
func (t *TargetFiles) Sorted() []analysis.FileInfo {
	out := make([]analysis.FileInfo, 0, len(t.files))
	for _, f := range t.files {
		sort.Slice(f.At, func(i, j int) bool {
			if f.At[i].Level != f.At[j].Level {
				return f.At[i].Level > f.At[j].Level
			}
			return f.At[i].Endpoint < f.At[j].Endpoint
		})
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.MaxLevel != b.MaxLevel {
			return a.MaxLevel > b.MaxLevel
		}
		return a.Hex < b.Hex
	})
	return out
}

// nsTime is a stored Unix-nanosecond time; 0 is the zero time.
func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
