package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// 'vigil target show' prints on each timeline line whether the endpoint
// itself talked to the sensor (first-hand) or a third party named it, and
// the observation's marks, in the words the pages use: a DHT node's claim
// must not read like a probe.
func TestTargetShowTextSaysSourceAndMarks(t *testing.T) {
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	d := &analysis.TargetDetail{}
	d.ID = "T-000001-00"
	d.Timeline = []analysis.TimelineEntry{
		{Time: at, Method: "peer_probe", Level: observe.Acknowledged, Endpoint: "192.0.2.9:51413", Transport: "tcp",
			Kind: "btih", Hash: "aa", FirstHand: true},
		{Time: at.Add(-time.Minute), Method: "dht_get_peers", Level: observe.Announced, Endpoint: "192.0.2.9:51413", Transport: "tcp",
			Kind: "btih", Hash: "aa", Marks: []string{observe.MarkThirdParty, observe.MarkSpoofableSource}},
		{Time: at.Add(-2 * time.Minute), Method: "peer_probe", Level: observe.Announced, Endpoint: "192.0.2.9:51413", Transport: "tcp",
			Kind: "btih", Hash: "aa", FirstHand: true, Marks: []string{"a_mark_from_the_future"}},
	}
	var b bytes.Buffer
	printTarget(&b, d)
	lines := timelineLines(t, b.String())
	if len(lines) != 3 {
		t.Fatalf("%d timeline lines, want 3:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"first-hand", "marks: none"},
		{"third party", "named by a third party", "spoofable source"},
		{"first-hand", "a_mark_from_the_future"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("timeline line %d %q: no %q", i, lines[i], w)
			}
		}
	}
	if strings.Contains(lines[1], "first-hand") || strings.Contains(lines[0], "third party") {
		t.Errorf("source words on the wrong lines:\n%s", strings.Join(lines, "\n"))
	}

	// An imported observation, as the store gives it back: not
	// first-hand, marked unsigned_import.
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	importOne(t, env, dir, 4, "192.0.2.10")
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %+v", ts)
	}
	out := mustRun(t, env, "", "target", "show", ts[0].ID)
	lines = timelineLines(t, out)
	if len(lines) == 0 {
		t.Fatalf("no timeline:\n%s", out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "third party") || !strings.Contains(l, "unsigned import") {
			t.Errorf("imported observation's line %q: want third party and unsigned import", l)
		}
	}
}

// timelineLines returns the lines after "Timeline".
func timelineLines(t *testing.T, out string) []string {
	t.Helper()
	_, after, ok := strings.Cut(out, "Timeline (newest first")
	if !ok {
		t.Fatalf("no timeline in\n%s", out)
	}
	var lines []string
	for _, l := range strings.Split(after, "\n")[1:] {
		if strings.HasPrefix(l, "  ") {
			lines = append(lines, l)
		}
	}
	return lines
}
