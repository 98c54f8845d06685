package api

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every route the API serves is documented in docs/openapi.yaml, and the
// document names no route the API lacks.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	served := map[string]bool{}
	for _, r := range Routes {
		served[r] = true
		m, p, _ := strings.Cut(r, " ")
		if doc.Paths[p] == nil || doc.Paths[p][strings.ToLower(m)] == nil {
			t.Errorf("%s is served but not documented", r)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			r := strings.ToUpper(m) + " " + p
			if !served[r] {
				t.Errorf("%s is documented but not served", r)
			}
		}
	}
}
