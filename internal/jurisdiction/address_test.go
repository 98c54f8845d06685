package jurisdiction

import (
	"path/filepath"
	"testing"
)

// TestAgencyAddress: an agency's postal address (for the head of an ISP
// request letter) is read from the rules, lines split by "\n"; the French
// example gives the DPJ's.
func TestAgencyAddress(t *testing.T) {
	r, err := Parse([]byte(`agencies:
  - {id: a, name: "Agency A", country: FR, address: "1 rue X\n75001 Paris"}
default: {agency: a, service: "s"}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ag, _ := r.Agency("a"); ag.Address != "1 rue X\n75001 Paris" {
		t.Fatalf("address %q", ag.Address)
	}
	fr, err := Load(filepath.Join(examplesDir, "france.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if ag, _ := fr.Agency("fr-pp-dpj"); ag.Address != "36 rue du Bastion\n75017 Paris" {
		t.Fatalf("fr-pp-dpj address %q", ag.Address)
	}
}
