package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A peer chooses its client's name ("v" of its extension handshake),
// which becomes part of a listen-port link's evidence and reason; a geo
// database names the ISP. 'vigil target' prints both: a terminal must not
// take them as escape sequences, bidi overrides or extra lines.
func TestPrintTargetKeepsPeerTextInert(t *testing.T) {
	hostile := "qB\x1b]0;owned\x07\x1b[2J\u202eexe.gpj\r\nTarget T-999999-00  score 99.0\x00"
	d := &analysis.TargetDetail{TargetSummary: analysis.TargetSummary{ID: "T-000001-95", Score: 1.5}}
	d.Endpoints = []analysis.EndpointInfo{{Org: "Lab Telecom " + hostile, FirstHand: true}}
	d.Links = []analysis.Link{{ID: 7, Rule: analysis.RuleListenPort, Evidence: "AS64496|51413|" + hostile + "|4.6",
		Reason: "listen port 51413 and client " + hostile + " seen from 127.1.0.1:51413 and 127.1.0.2:51413", State: "active", Confidence: 0.6}}
	d.Files = []analysis.FileInfo{{Hex: "00", Kind: "btih", MaxLevel: observe.Complete, Intent: hostile}}
	var b bytes.Buffer
	printTarget(&b, d)
	out := b.String()
	for _, c := range []string{"\x1b", "\x07", "\x00", "\r", "\u202e"} {
		if strings.Contains(out, c) {
			t.Errorf("'vigil target' printed %q from a peer's text:\n%s", c, out)
		}
	}
	if n := strings.Count(out, "\nTarget T-999999-00"); n != 0 {
		t.Errorf("a peer's text started %d lines of its own:\n%s", n, out)
	}
}
