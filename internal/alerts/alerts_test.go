package alerts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRuleValidateNamesWhatIsWrong(t *testing.T) {
	ok := Rule{ID: "r1", Agency: "fr-lyon", Kind: KindListSeen, Params: Params{List: "national"}, MaxPerHour: 5}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(*Rule)
		want error
		says string
	}{
		"another jurisdiction": {func(r *Rule) { r.Params.Jurisdiction = "fr-lille" }, ErrScope, "fr-lille"},
		"no list nor category": {func(r *Rule) { r.Params.List = "" }, ErrRule, "list or a category"},
		"score on list_seen":   {func(r *Rule) { r.Params.Score = 10 }, ErrRule, "does not take"},
		"flag on list_seen":    {func(r *Rule) { r.Params.Flag = "known_offender" }, ErrRule, "does not take"},
		"unknown kind":         {func(r *Rule) { r.Kind = "everything" }, ErrRule, "everything"},
		"bad id":               {func(r *Rule) { r.ID = "Bad Id" }, ErrRule, "Bad Id"},
		"bad agency":           {func(r *Rule) { r.Agency = "" }, ErrRule, "agency"},
		"no rate":              {func(r *Rule) { r.MaxPerHour = 0 }, ErrRule, "max per hour"},
		"bad e-mail":           {func(r *Rule) { r.Emails = []string{"Bob <bob@example.org>"} }, ErrRule, "bob@example.org"},
		"header in e-mail":     {func(r *Rule) { r.Emails = []string{"a@example.org\r\nBcc: x@example.org"} }, ErrRule, "e-mail"},
		"bad webhook":          {func(r *Rule) { r.Webhooks = []string{"http://x"} }, ErrRule, "webhook"},
		"score kind no score":  {func(r *Rule) { r.Kind, r.Params = KindScorePassed, Params{} }, ErrRule, "score"},
		"unknown flag":         {func(r *Rule) { r.Kind, r.Params = KindFlaggedActive, Params{Flag: "rich"} }, ErrRule, "rich"},
	} {
		r := ok
		c.edit(&r)
		err := r.Validate()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", name, err, c.want, c.says)
		}
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	c := DefaultConfig()
	// 30 s × 2^7 = 64 min at the eighth failure: capped at an hour.
	for attempt, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 20: time.Hour} {
		if got := Backoff(c, attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
}

// A message carries its delivery's id (the same on every attempt), a
// one-line subject whatever the alert's, and only the alert's own fields.
func TestMessageIsTheAlertAlone(t *testing.T) {
	a := Alert{ID: AlertID("r", "score:T-1"), Rule: "r", Agency: "fr-lyon", Kind: KindScorePassed, Target: "T-1",
		At: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), Subject: "target T-1\r\nBcc: x@example.org passed", Content: Content{Score: 61.5, Level: "complete"}}
	id := DeliveryID(a.ID, "webhook:soc")
	if id != DeliveryID(a.ID, "webhook:soc") || id == DeliveryID(a.ID, "email:a@example.org") {
		t.Fatal("delivery ids are not stable per channel")
	}
	m := Message(a, id)
	if strings.ContainsAny(m.Subject, "\r\n") || m.ID != id || m.Agency != "fr-lyon" {
		t.Fatalf("message %+v", m)
	}
	var body map[string]any
	if err := json.Unmarshal(m.JSON, &body); err != nil || body["delivery"] != id || body["target"] != "T-1" {
		t.Fatalf("webhook body %s: %v", m.JSON, err)
	}
	if !strings.Contains(m.Text, "Level: complete") || !strings.Contains(m.Text, "Score: 61.5") {
		t.Fatalf("text:\n%s", m.Text)
	}
}
