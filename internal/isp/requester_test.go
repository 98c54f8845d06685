package isp

import (
	"strings"
	"testing"
)

// TestLettersNameTheRequesterAndSendForeignOnesThroughMLA: a letter's head
// is the requesting service's name and postal address, never its bare id;
// a provider outside the requester's country gets one letter, in English,
// that says the request goes through mutual legal assistance (a French
// requisition went to a Canadian ISP without a word).
func TestLettersNameTheRequesterAndSendForeignOnesThroughMLA(t *testing.T) {
	tg, s := fixture()
	tg.Agency = ""
	tg.Requester = Requester{ID: "fr-pp-dpj", Name: "Préfecture de police, DPJ (Paris)", Address: "36 rue du Bastion\n75017 Paris", Country: "FR"}
	req := Build(tg, s, fixedNow, testRetention())
	abroad := group(t, &req, 64497) // country ZZ
	if !abroad.Has(NoteForeign) {
		t.Fatalf("the ZZ provider has no %s note: %+v", NoteForeign, abroad.Notes)
	}
	for _, asn := range []uint32{64496, 64498} {
		if group(t, &req, asn).Has(NoteForeign) {
			t.Fatalf("AS%d, in FR, is marked foreign", asn)
		}
	}
	letters := 0
	for _, g := range req.Groups {
		if len(g.Rows) > 0 {
			letters++
		}
	}
	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	for _, want := range []string{
		"Préfecture de police, DPJ (Paris)", "36 rue du Bastion", "75017 Paris",
		"Mutual legal assistance", "goes through mutual legal assistance",
		"[applicable mutual legal assistance treaty or instrument — to be completed]",
		"entraide pénale internationale", // the note on the French internal sheet
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	fr, en := strings.Count(text, "Demande d'identification d'abonnés"), strings.Count(text, "Request for subscriber identification")
	if en != letters || fr != letters-1 {
		t.Errorf("%d French and %d English letters for %d providers, one abroad: want %d and %d", fr, en, letters, letters-1, letters)
	}
	if strings.Contains(text, "[investigating service") || strings.Contains(text, "[service enquêteur") {
		t.Error("a placeholder for the requester although its name and address are known")
	}

	// Known by id alone: a placeholder that names the id, not the id as a name.
	tg.Requester = Requester{ID: "fr-ofmin"}
	req = Build(tg, s, fixedNow, testRetention())
	text = pdftotext(t, buildPDF(t, &req, LangFR))
	if !strings.Contains(text, "[nom du service fr-ofmin — à compléter]") || !strings.Contains(text, "[adresse postale et courriel de réponse — à compléter]") {
		t.Errorf("requester known by id only: want placeholders naming it:\n%s", text[:min(len(text), 2000)])
	}
	for _, g := range req.Groups {
		if g.Has(NoteForeign) {
			t.Errorf("group %s foreign although the requester's country is unknown", g.ID)
		}
	}
}

func TestRequesterForeign(t *testing.T) {
	fr := Requester{Country: "FR"}
	for c, want := range map[string]bool{"FR": false, "fr": false, "RE": false, "GP": false, "CA": true, "BE": true, "": false} {
		if got := fr.Foreign(c); got != want {
			t.Errorf("FR requester, provider in %q: foreign %v, want %v", c, got, want)
		}
	}
	if (Requester{}).Foreign("CA") {
		t.Error("a requester of unknown country finds a provider foreign")
	}
}
