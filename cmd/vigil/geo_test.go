package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/lab"
)

// TestGeoLookupNamesTheServiceWithRules: the README's "which service has
// jurisdiction?" is answered by geo lookup --rules, with the agency, its
// name, the service and the rule, in text and in JSON.
func TestGeoLookupNamesTheServiceWithRules(t *testing.T) {
	files, err := lab.WriteGeo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := vigilRun(t, nil, "", "geo", "lookup", "--db-file", files.City, "--asn-file", files.ASNCSV,
		"--rules", "example:france", "127.1.0.5", "127.3.0.1", "127.22.0.9")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", out)
	}
	for i, want := range []string{
		"jurisdiction fr-pp-dpj (Préfecture de police", // Paris (75)
		"jurisdiction fr-szpj-sud (",                   // Marseille (13)
		"jurisdiction fr-ofmin (",                      // Canada: the national office, by default
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "; rule ") {
			t.Errorf("line %d: want %q and the rule:\n%s", i+1, want, lines[i])
		}
	}
	if !strings.Contains(lines[1], "rule subdivision FR/13 (france.yaml:") {
		t.Errorf("Marseille: the rule should name the département and the line:\n%s", lines[1])
	}

	code, out, errOut = vigilRun(t, nil, "", "geo", "lookup", "--db-file", files.City, "--rules", "example:france", "--json", "127.7.0.1")
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var got struct {
		IP           string `json:"ip"`
		Jurisdiction struct {
			Agency, AgencyName, Service, Rule string
		} `json:"jurisdiction"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if j := got.Jurisdiction; j.Agency != "fr-szpj-sud" || !strings.Contains(j.Rule, "FR/31") || j.Service == "" {
		t.Fatalf("Toulouse routed to %+v", j)
	}

	// Without --rules, no jurisdiction is claimed.
	if _, out, _ := vigilRun(t, nil, "", "geo", "lookup", "--db-file", files.City, "127.1.0.5"); strings.Contains(out, "jurisdiction") {
		t.Fatalf("no --rules, yet: %s", out)
	}
	if code, _, errOut := vigilRun(t, nil, "", "geo", "lookup", "--db-file", files.City, "--rules", "example:atlantis", "127.1.0.5"); code == exitOK || !strings.Contains(errOut, "atlantis") {
		t.Fatalf("unknown rules: exit %d %s", code, errOut)
	}
}
