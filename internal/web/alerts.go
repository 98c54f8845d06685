package web

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// AlertStore is what the overview's Alerts block reads: an agency's
// alerts, and which targets a scope may see now.
type AlertStore interface {
	AgencyAlerts(ctx context.Context, q alerts.Query) ([]alerts.Alert, error)
	VisibleTargets(ctx context.Context, scope analysis.Scope, ids []string) (map[string]bool, error)
}

// alertFeed implements pages.AlertFeed: the viewer's agency's alerts
// only, those about a target only while the agency may see it now (a
// handed-off target's alerts leave its old agency's overview).
type alertFeed struct{ st AlertStore }

func (f alertFeed) Recent(ctx context.Context, viewer *pages.User, n int) ([]pages.AlertRow, error) {
	if viewer == nil || viewer.Agency == "" || viewer.Scope.Empty() {
		return nil, nil
	}
	as, err := f.st.AgencyAlerts(ctx, alerts.Query{Agency: viewer.Agency, Limit: n})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range as {
		if a.Target != "" {
			ids = append(ids, a.Target)
		}
	}
	vis := map[string]bool{}
	if len(ids) > 0 {
		if vis, err = f.st.VisibleTargets(ctx, analysis.Scope{Agencies: []string{viewer.Agency}}, ids); err != nil {
			return nil, err
		}
	}
	out := make([]pages.AlertRow, 0, len(as))
	for _, a := range as {
		if a.Target != "" && !vis[a.Target] {
			continue
		}
		r := pages.AlertRow{ID: a.ID, Kind: a.Kind, Rule: a.Rule, Target: a.Target, Created: a.Created, Held: a.Held, SummaryOf: a.SummaryOf}
		if l, err := observe.ParseLevel(a.Content.Level); err == nil {
			r.Level = l
		}
		c := a.Content
		switch {
		case c.Address != "":
			r.Detail = c.Address
		case a.Kind == alerts.KindScorePassed:
			r.Detail = fmt.Sprintf("%.1f", c.Score)
		case c.List != "":
			r.Detail = c.List + "/" + c.Category
		}
		out = append(out, r)
	}
	return out, nil
}
