package analysis

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Names of the score parts, as they appear in Parts and in docs/scoring.md.
const (
	PartFiles          = "files"
	PartPossession     = "possession"
	PartDays           = "days_active"
	PartRepetition     = "repetition"
	PartRecency        = "recency"
	PartSharing        = "sharing"
	PartNewMaterial    = "new_material"
	PartSecondHand     = "second_hand"
	PartKnownOffender  = "flag_known_offender"
	PartChildAccess    = "flag_access_to_children"
	FlagKnownOffender  = "known_offender"
	FlagChildAccess    = "access_to_children"
	maxSeverity        = 5
	defaultHalfLifeDay = 14
)

// Flags an analyst may set on a target, each with its own score part.
var Flags = []string{FlagKnownOffender, FlagChildAccess}

// Weights are the score's constants. docs/scoring.md explains each; change
// them there too.
type Weights struct {
	// Severity is the weight of one distinct file by its severity (index
	// 0 = a match with no severity, 1 lowest .. 5 gravest).
	Severity [maxSeverity + 1]float64
	// Level multiplies a file's severity weight by the highest possession
	// level reached for it (index: observe.Level). Announced counts a tenth
	// of complete.
	Level [observe.Verified + 1]float64
	// LookingFactor multiplies a file the target only looked for.
	LookingFactor float64
	// Possession adds, per file, points for the level the endpoint itself
	// showed (index: observe.Level); nothing for announced.
	Possession [observe.Verified + 1]float64
	// DayPoints per distinct UTC day active after the first, up to MaxDays.
	DayPoints float64
	MaxDays   int
	// RepetitionPoints times log2(sightings per file): the same files
	// seen again in other clock hours (ScoreInput.Sightings).
	RepetitionPoints float64
	// RecencyShare of the files part is added when last seen now, decaying
	// by half every RecencyHalfLife.
	RecencyShare    float64
	RecencyHalfLife time.Duration
	// SharingPoints per file the endpoint itself offered (sharing, level
	// acknowledged or more).
	SharingPoints float64
	// NewMaterialPoints per confirmed associated file seen with the target.
	NewMaterialPoints float64
	// SecondHandMax caps the second_hand part: the files a target is only
	// known to hold from observations that are not first-hand (named by a
	// third party, resting on a spoofable datagram, imported from a file)
	// count as announced, and all of them together at most this much.
	SecondHandMax float64
	// FlagPoints per analyst flag (FlagKnownOffender, FlagChildAccess).
	FlagPoints map[string]float64
}

// DefaultWeights returns the documented defaults.
func DefaultWeights() Weights {
	return Weights{
		Severity:          [maxSeverity + 1]float64{1, 2, 3, 5, 7, 10},
		Level:             [observe.Verified + 1]float64{0, 0.1, 0.3, 0.6, 1.0, 1.2},
		LookingFactor:     0.3,
		Possession:        [observe.Verified + 1]float64{0, 0, 0.5, 1, 2, 3},
		DayPoints:         0.5,
		MaxDays:           180,
		RepetitionPoints:  2,
		RecencyShare:      0.25,
		RecencyHalfLife:   defaultHalfLifeDay * 24 * time.Hour,
		SharingPoints:     1,
		NewMaterialPoints: 5,
		SecondHandMax:     1,
		FlagPoints:        map[string]float64{FlagKnownOffender: 50, FlagChildAccess: 100},
	}
}

// FileFacts is what the score knows of one distinct watched file of a
// target: the level one endpoint itself reached for it, and how surely
// that endpoint is the target's (docs/scoring.md, "Links").
type FileFacts struct {
	Severity int           // 0..5, the highest of its matches
	Level    observe.Level // the level the counted endpoint itself reached
	Looking  bool          // only ever looked for, never offered
	Offered  bool          // the endpoint itself offered it (sharing, level >= acknowledged)
	// Confidence multiplies the file's points: 1 for the target's anchor
	// endpoint, the product of the link confidences on the best path to
	// it for a linked endpoint. 0 is read as 1.
	Confidence float64
}

// ScoreInput is everything a target's score depends on. Only first-hand
// observations (observe.Observation.FirstHand) feed Files, Days,
// Sightings and LastSeen; a file known only from others' words is in
// SecondHand.
type ScoreInput struct {
	// Files seen first-hand at an endpoint of the target, each at the
	// level of its first-hand observations; quarantined files left out.
	Files []FileFacts
	// SecondHand are the files no endpoint of the target showed
	// first-hand (Level is ignored: they count as announced), for the
	// capped second_hand part.
	SecondHand []FileFacts
	// Days counts distinct UTC days with a first-hand observation, each
	// day weighted by the highest confidence of the endpoints seen
	// first-hand that day (1 for a lone endpoint).
	Days         float64
	Observations int // observations of non-quarantined files (not scored)
	// Sightings counts, per file of Files, the distinct clock hours it was
	// seen first-hand in, summed: repetition is measured in independent
	// sightings, so a sensor that looks every minute does not make a peer
	// seen for ten minutes look like a regular.
	Sightings float64
	// LastSeen is the last first-hand sighting of a file of Files.
	LastSeen       time.Time
	ConfirmedLeads int
	Flags          []string
}

// Parts maps a part's name to its points. The score is their sum.
type Parts map[string]float64

// Total is the sum of the parts, added in the order of their names: a
// float sum depends on its order, and a map is walked in a random one
// (the same parts gave 130.14 or 130.15).
func (p Parts) Total() float64 {
	var t float64
	for _, k := range slices.Sorted(maps.Keys(p)) {
		t += p[k]
	}
	return round2(t)
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Score computes the named parts of a target's score at time now. Parts
// worth nothing are left out.
func Score(in ScoreInput, w Weights, now time.Time) Parts {
	p := Parts{}
	add := func(name string, v float64) {
		if v = round2(v); v != 0 {
			p[name] += v
		}
	}
	var files, poss, offered float64
	for _, f := range in.Files {
		sev := min(max(f.Severity, 0), maxSeverity)
		lvl := min(f.Level, observe.Verified)
		c := f.Confidence
		if c <= 0 || c > 1 {
			c = 1
		}
		v := w.Severity[sev] * w.Level[lvl] * c
		if f.Looking {
			v *= w.LookingFactor
		} else {
			poss += w.Possession[lvl] * c
		}
		files += v
		if f.Offered {
			offered += c
		}
	}
	add(PartFiles, files)
	add(PartPossession, poss)
	if len(in.Files) > 0 {
		if d := min(in.Days, float64(w.MaxDays)) - 1; d > 0 {
			add(PartDays, w.DayPoints*d)
		}
		if r := in.Sightings / float64(len(in.Files)); r > 1 {
			add(PartRepetition, w.RepetitionPoints*math.Log2(r))
		}
		if !in.LastSeen.IsZero() && w.RecencyHalfLife > 0 {
			age := max(now.Sub(in.LastSeen), 0)
			decay := math.Exp2(-float64(age) / float64(w.RecencyHalfLife))
			add(PartRecency, w.RecencyShare*round2(files)*decay)
		}
	}
	var second float64
	for _, f := range in.SecondHand {
		sev := min(max(f.Severity, 0), maxSeverity)
		c := f.Confidence
		if c <= 0 || c > 1 {
			c = 1
		}
		v := w.Severity[sev] * w.Level[observe.Announced] * c
		if f.Looking {
			v *= w.LookingFactor
		}
		second += v
	}
	add(PartSecondHand, min(second, w.SecondHandMax))
	add(PartSharing, w.SharingPoints*offered)
	add(PartNewMaterial, w.NewMaterialPoints*float64(in.ConfirmedLeads))
	for _, f := range in.Flags {
		switch f {
		case FlagKnownOffender:
			add(PartKnownOffender, w.FlagPoints[f])
		case FlagChildAccess:
			add(PartChildAccess, w.FlagPoints[f])
		}
	}
	return p
}

// DefaultSeverity is the severity of a match when the list gives only a
// category: watchlist.CategorySeverity, and 0 for anything it does not
// know (a match still counts, at Weights.Severity[0]).
func DefaultSeverity(list, category string) int {
	return watchlist.CategorySeverity(category)
}
