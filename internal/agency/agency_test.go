package agency_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

func TestScopeAllows(t *testing.T) {
	own := agency.Scope{Agencies: []string{"fr-a"}}
	cases := []struct {
		name   string
		s      agency.Scope
		routed string
		shared []string
		want   bool
	}{
		{"zero-scope-admits-nothing", agency.Scope{}, "fr-a", []string{"fr-a"}, false},
		{"own-agency", own, "fr-a", nil, true},
		{"other-agency", own, "fr-b", nil, false},
		{"shared-with-own", own, "fr-b", []string{"fr-c", "fr-a"}, true},
		{"shared-with-others", own, "fr-b", []string{"fr-c"}, false},
		{"unrouted-needs-all", own, "", nil, false},
		{"empty-share-is-no-share", agency.Scope{Agencies: []string{""}}, "", []string{""}, false},
		{"all-sees-unrouted", agency.Scope{All: true}, "", nil, true},
	}
	for _, c := range cases {
		if got := c.s.Allows(c.routed, c.shared...); got != c.want {
			t.Errorf("%s: %+v.Allows(%q, %q) = %v, want %v", c.name, c.s, c.routed, c.shared, got, c.want)
		}
	}
	if !(agency.Scope{}).Empty() || own.Empty() || (agency.Scope{All: true}).Empty() {
		t.Error("Empty: only the zero scope (no agency, not All) is empty")
	}
}

// TestEveryPackageSeesTheSameScope: the pages' scope, the access layer's
// and the analysis's are one type, so that a share the access layer
// grants is one the pages honour.
func TestEveryPackageSeesTheSameScope(t *testing.T) {
	var s agency.Scope = pages.Scope{Agencies: []string{"fr-a"}}
	var a access.Scope = s
	var q analysis.Scope = a
	if !q.Allows("fr-b", "fr-a") {
		t.Error("a target shared with the reader's agency is out of the pages' scope")
	}
}

func TestErrNotFoundIsOne(t *testing.T) {
	names := map[string]error{"agency": agency.ErrNotFound, "access": access.ErrNotFound, "analysis": analysis.ErrNotFound,
		"store": store.ErrNotFound, "pages": pages.ErrNotFound}
	for from, e := range names {
		wrapped := fmt.Errorf("list x: %w", e)
		for to, target := range names {
			if !errors.Is(wrapped, target) {
				t.Errorf("errors.Is(%s.ErrNotFound, %s.ErrNotFound) = false", from, to)
			}
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range agency.Roles {
		if got, err := agency.ParseRole(" " + string(r) + " "); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if got, err := agency.ParseRole("ANALYST"); err != nil || got != agency.RoleAnalyst {
		t.Errorf("ParseRole(ANALYST) = %q, %v", got, err)
	}
	if _, err := agency.ParseRole("root"); err == nil {
		t.Error("ParseRole(root) accepted")
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"fr-ofmin", "a", "fr.szpj_sud-est"} {
		if err := agency.CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "FR", "-fr", "fr ofmin", string(make([]byte, 65))} {
		if err := agency.CheckID(id); err == nil {
			t.Errorf("CheckID(%q) accepted", id)
		}
	}
}
