package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLabAccuracyRejectsBadFlags: a format or a duration the measurement
// cannot use is a usage error, before any lab starts.
func TestLabAccuracyRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"lab", "accuracy", "--format", "csv"},
		{"lab", "accuracy", "--duration", "2s"},
		{"lab", "accuracy", "--network", "gnutella"},
	} {
		code, _, errOut := vigilRun(t, nil, "", args...)
		if code != exitUsage || !strings.Contains(errOut, args[3]) {
			t.Errorf("vigil %s: exit %d, stderr %q; want a usage error naming %s", strings.Join(args, " "), code, errOut, args[3])
		}
	}
}

// TestLabAccuracyJSON runs the shortest measurement and reads its JSON.
func TestLabAccuracyJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lab and the sensor for 10 s")
	}
	code, out, errOut := vigilRun(t, nil, "", "--log-level", "error", "lab", "accuracy", "--duration", "10s", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Levels []struct {
			Name         string `json:"name"`
			Observations int    `json:"observations"`
		} `json:"levels"`
		Links []struct {
			Rule string `json:"rule"`
		} `json:"links"`
		ISP struct {
			Rows int `json:"rows"`
		} `json:"isp"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Levels) < 5 || len(rep.Links) < 3 {
		t.Fatalf("report: %v\n%s", err, out)
	}
}
