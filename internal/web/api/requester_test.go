package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
)

// TestAPIISPRequestNamesTheCallersService: the letters of an ISP request
// are headed with the requesting service, and a provider outside that
// service's country gets the mutual-legal-assistance note and an English
// letter (docs/evidence.md, "Who asks"). Through the API, as through the
// pages, the service is the caller's, with its name, address and country
// from the agencies of the store: never the id of the agency the target
// was routed to, which did not ask, and never without the country that
// tells a foreign provider (a Belgian office's request to a French ISP
// is not a French requisition).
func TestAPIISPRequestNamesTheCallersService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acfg := access.DefaultConfig()
	acfg.Argon2 = access.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, err := access.New(f.st, &audit.Log{Store: f.st}, acfg)
	if err != nil {
		t.Fatal(err)
	}
	cli := access.CLIActor("test")
	if err := svc.AddAgency(ctx, cli, access.Agency{ID: "be-fccu", Name: "Federal Computer Crime Unit", Country: "BE",
		Address: "Rue Royale 202A\n1000 Bruxelles"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddUser(ctx, cli, access.User{Name: "analyst-be", Agency: "be-fccu", Role: access.RoleAnalyst, Lang: access.LangEN, TimeZone: "UTC"}, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.CreateToken(ctx, cli, "analyst-be", "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.tokens["analyst-be"] = tok

	var got isp.Requester
	var foreign bool
	read := func(user, target string) {
		t.Helper()
		code, body, _ := f.get(t, user, "/api/v1/targets/"+target+"/isp-request?format=json&purpose=2026-42")
		if code != 200 {
			t.Fatalf("%s: %d %s", user, code, body)
		}
		var out struct {
			Target struct {
				Requester struct{ ID, Name, Address, Country string } `json:"requester"`
			} `json:"target"`
			Groups []struct{ Notes []isp.Note } `json:"groups"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		r := out.Target.Requester
		got, foreign = isp.Requester{ID: r.ID, Name: r.Name, Address: r.Address, Country: r.Country}, false
		for _, g := range out.Groups {
			for _, n := range g.Notes {
				foreign = foreign || n.Code == isp.NoteForeign
			}
		}
	}
	// A national analyst of agency fr-a asks about the target routed to fr-b.
	read("analyst", f.byAg["fr-b"])
	if got.ID != "fr-a" || got.Name != "fr-a" || got.Country != "FR" || foreign {
		t.Errorf("fr-a's analyst's request names %+v (foreign %v), want fr-a with its name and country, not foreign", got, foreign)
	}
	// A Belgian office asks a French ISP: mutual legal assistance.
	read("analyst-be", f.byAg["fr-a"])
	if got.ID != "be-fccu" || got.Name != "Federal Computer Crime Unit" || got.Country != "BE" || got.Address == "" || !foreign {
		t.Errorf("the Belgian office's request names %+v (foreign %v), want be-fccu with its name, address and country, through mutual legal assistance", got, foreign)
	}
}
