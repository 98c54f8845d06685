package api

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/audit"
)

// TestHostileInputDoesNotFillTheAuditTrail: the audit trail is append-only
// and hash-chained: nothing written there is ever removed. Every refusal
// and every list is recorded, naming what was asked; a caller who asks
// with a 30 KiB id, purpose or query (the server reads request lines up
// to 64 KiB) must not make each request write that much into it, nor
// write a NUL byte or invalid UTF-8 that a PostgreSQL text column refuses
// (a refusal whose record fails is a refusal without a trace). What is
// recorded is cut, and says how long it was.
func TestHostileInputDoesNotFillTheAuditTrail(t *testing.T) {
	f := newFixture(t)
	a := f.byAg["fr-a"]
	junk := strings.Repeat("A", 30<<10)
	for _, c := range []struct{ user, path string }{
		{"inv-a", "/api/v1/targets/" + junk},                                          // refused: no such target
		{"inv-a", "/api/v1/targets/T-1%00%FF" + junk},                                 // NUL and invalid UTF-8 in the id
		{"inv-a", "/api/v1/targets/" + a + "/isp-request?format=csv&purpose=" + junk}, // refused: purpose too long
		{"analyst", "/api/v1/observations?purpose=" + junk},                           // refused: purpose too long
		{"inv-a", "/api/v1/targets?jurisdiction=" + junk},                             // a list names its query
		{"admin", "/api/v1/targets/" + junk},                                          // refused: role
	} {
		if code, _, _ := f.get(t, c.user, c.path); code == 0 {
			t.Fatalf("%s %.60s: no answer", c.user, c.path)
		}
	}
	n := 0
	err := f.st.AuditRecords(context.Background(), audit.Filter{}, func(r audit.Record) error {
		if r.Actor != "inv-a" && r.Actor != "analyst" && r.Actor != "admin" {
			return nil
		}
		n++
		if size := len(r.Object) + len(r.Purpose) + len(r.Detail); size > 4<<10 {
			t.Errorf("%s %s: a record of %d bytes (object %.60q…)", r.Actor, r.Action, size, r.Object)
		}
		for _, s := range []string{r.Object, r.Purpose} {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
				t.Errorf("%s %s: object or purpose %.60q holds a NUL or invalid UTF-8", r.Actor, r.Action, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Errorf("%d records, want one for each of the 6 requests", n)
	}
}
