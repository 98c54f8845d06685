package web

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/isp"
)

// agencyDown is a store whose agencies cannot be read.
type agencyDown struct{ Store }

var errAgencyDown = errors.New("the agencies table did not answer")

func (agencyDown) Agency(context.Context, string) (access.Agency, error) {
	return access.Agency{}, errAgencyDown
}

// An ISP request downloaded from the pages, as through the API, is not
// made when the requesting service's agency cannot be read: without its
// country a request to a provider abroad would leave as a national
// requisition rather than through mutual legal assistance. An agency that
// is not on record still gives the letters' placeholder.
func TestPagesISPRequestStopsWhenTheAgencyIsUnread(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 600)
	paris := userOf(&access.Principal{Name: "paris", Agency: agencyParis, Role: access.RoleInvestigator})
	files := ispFiles{backend: e.App.backend, st: agencyDown{e.Store}, now: time.Now, retention: isp.DefaultRetention()}
	if _, err := files.Render(ctx, paris, e.TargetA, "json", "PV 2026/0042"); !errors.Is(err, errAgencyDown) {
		t.Fatalf("an ISP request with its agency unread: %v, want the store's error", err)
	}
	unknown := userOf(&access.Principal{Name: "ghost", Agency: "fr-nowhere", Role: access.RoleAnalyst})
	files.st = e.Store
	if f, err := files.Render(ctx, unknown, e.TargetA, "json", "PV 2026/0042"); err != nil || len(f.Body) == 0 {
		t.Fatalf("an ISP request by an agency not on record: %v", err)
	}
}
