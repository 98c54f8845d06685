package pages

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// French pages are in French (issue 17 item 4): no English word of the
// interface, no missing key, decimal commas, and a narrow no-break space
// before : ; ! ? wherever the page writes one. Data the interface does
// not own (a link's sentence from the analysis) is marked lang="en" and
// left out of the check.
func TestFrenchPagesAreFrench(t *testing.T) {
	env := buildEnv(t)
	bob := login(t, env, "bob") // French, agency B
	tagRE := regexp.MustCompile(`(?s)<span lang="en">.*?</span>|<[^>]*>`)
	punct := regexp.MustCompile(`[^\x{202f}\x{a0}][:;!?](\s|$)`)
	missing := regexp.MustCompile(`\[[a-z]+\.[a-z0-9_.]+\]`)
	english := regexp.MustCompile(`\b(None|first-hand|third party|metrics|transcript cut|named by a third party|seen \d+ times|watched items?|possession|recency|sharing|analyst|investigator|hosting|quarantined|looked for|routing nodes|strong|weak|medium|sensor demo)\b`)
	for _, path := range []string{"/", "/targets", "/targets/" + env.TargetB, "/targets/" + env.TargetB + "/isp", "/sensors", "/lists", "/lists/lab-watchlist"} {
		resp, body := bob.get(path)
		if resp.StatusCode != 200 || !strings.Contains(body, `<html lang="fr">`) {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		i := strings.Index(body, "<body")
		text := tagRE.ReplaceAllString(body[i:], " ")
		text = strings.NewReplacer("&#39;", "'", "&#34;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(text)
		for _, ix := range punct.FindAllStringIndex(text, -1) {
			t.Errorf("%s: punctuation without a narrow no-break space before it: %q", path, text[max(0, ix[0]-40):min(len(text), ix[1]+10)])
		}
		if m := missing.FindAllString(text, -1); m != nil {
			t.Errorf("%s: missing messages %q", path, m)
		}
		if m := english.FindAllString(text, -1); m != nil {
			t.Errorf("%s: English words %q", path, m)
		}
	}
	_, body := bob.get("/targets/" + env.TargetB)
	for _, want := range []string{">93,0<", "46,5", "tiers", "direct", "détention", "à examiner\u202f; vue 3 fois avec 1 élément surveillé dans 1 torrent",
		"forte (0,70)", "seulement recherché", "en quarantaine"} {
		if !strings.Contains(body, want) {
			t.Errorf("target page lacks %q", want)
		}
	}
	if strings.Contains(body, "93.0") {
		t.Error("target page writes a decimal point")
	}
	// A refused case number is said in French too.
	bob.get("/targets/" + env.TargetB + "/isp")
	_, body = bob.post("/targets/"+env.TargetB+"/isp", url.Values{"purpose": {"x"}, "format": {"csv"}}, true)
	if want := "Un numéro de procédure est obligatoire\u202f: trop court pour un numéro de procédure"; !strings.Contains(body, want) {
		i := strings.Index(body, "isp-problem")
		t.Errorf("ISP form without a valid case number: %.200s", body[max(0, i):])
	}
	_, body = bob.get("/")
	for _, want := range []string{"Aucune alerte.", "capteur demo-bittorrent", "120 nœuds de routage, 3 surveillés, 8 recherches, 1\u202f234 observations", "enquêteur"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}

// The score filter takes the decimal comma a French page writes.
func TestMinScoreTakesADecimalComma(t *testing.T) {
	for s, want := range map[string]float64{"2,5": 2.5, "2.5": 2.5, " 40,0 ": 40} {
		q, err := ParseTargetQuery(url.Values{"minscore": {s}}, time.UTC, 50)
		if err != nil || q.MinScore != want {
			t.Errorf("minscore %q: %v, %v", s, q.MinScore, err)
		}
	}
	if _, err := ParseTargetQuery(url.Values{"minscore": {"2,5,1"}}, time.UTC, 50); err == nil {
		t.Error("minscore 2,5,1 accepted")
	}
}

// A filter that is not understood used to be explained in English on a
// French page ("Filtre incompris : minscore="x": want a number ≥ 0").
func TestFilterErrorsInTheViewersLanguage(t *testing.T) {
	env := buildEnv(t)
	bob := login(t, env, "bob") // French
	resp, body := bob.get("/targets?minscore=beaucoup")
	if resp.StatusCode != 400 || !strings.Contains(body, "un nombre ≥ 0 est attendu") || strings.Contains(body, "want a number") {
		t.Fatalf("%d: French page for a bad filter:\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "minscore=&#34;beaucoup&#34;") {
		t.Fatalf("the page does not name the parameter and its value:\n%s", body)
	}
}
