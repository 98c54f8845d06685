package analysis_test

import (
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// TestLinkConfidenceOutOfRangeRefused: a rule's confidence multiplies
// the files of the endpoints it joins. A confidence of 0 (a user's way
// to "turn a rule off") made a linked endpoint's files count at full
// weight, since the score reads a confidence of 0 as 1; above 1 a link
// would count for more than the anchor itself. Both are refused, naming
// the rule.
func TestLinkConfidenceOutOfRangeRefused(t *testing.T) {
	for _, v := range []float64{0, -0.5, 1.5} {
		f := newFixture(t)
		f.cfg.Links.Confidence = map[string]float64{analysis.RulePeerID: v}
		_, err := analysis.New(t.Context(), f.st, f.cfg)
		if err == nil || !strings.Contains(err.Error(), analysis.RulePeerID) {
			t.Errorf("confidence %v for %s: err %v, want a refusal naming the rule", v, analysis.RulePeerID, err)
		}
	}
	f := newFixture(t)
	f.cfg.Links.Confidence = map[string]float64{analysis.RulePeerID: 1}
	if _, err := analysis.New(t.Context(), f.st, f.cfg); err != nil {
		t.Errorf("confidence 1: %v", err)
	}
}
