package analysis

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// LocalConfirmedList is the watch-list an analyst's confirmed associated
// files go to, with who confirmed them and why.
const LocalConfirmedList = "local-confirmed"

// ListStore is the watch-list store as the analysis's list rules change
// it: Lookup and SetDisabled, and an import through store.AddToList
// (decided by store.PlanImport, as every import is).
type ListStore interface {
	store.Store
}

// ListRules are the two decisions of an analyst that change the
// watch-lists: a quarantined hash confirmed benign is disabled on every
// list that holds it (no list may go on alerting on it), and a confirmed
// lead's file is added to LocalConfirmedList (from then on it is a match).
// Apply wires them into a Config.
type ListRules struct{ Lists ListStore }

// Apply sets cfg.OnDisable and cfg.OnLeadConfirmed to the rules.
func (r ListRules) Apply(cfg *Config) {
	cfg.OnDisable = r.Disable
	cfg.OnLeadConfirmed = r.ConfirmLead
}

// Disable disables h on every list that holds it, each with by and why.
func (r ListRules) Disable(ctx context.Context, h hashkind.Hash, by, why string) error {
	recs, err := r.Lists.Lookup(ctx, h)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := r.Lists.SetDisabled(ctx, rec.List.Name, h, true, by, why); err != nil {
			return err
		}
	}
	return nil
}

// ConfirmLead adds the lead's file (hash, size, path) to
// LocalConfirmedList. A lead without a hash (a path seen in a torrent's
// metadata, with no hash of its own) cannot be listed and is refused.
func (r ListRules) ConfirmLead(ctx context.Context, l Lead, by, why string) error {
	if l.Hash.IsZero() {
		return fmt.Errorf("lead %s has no hash: it cannot be listed", l.Key)
	}
	_, err := store.AddToList(ctx, r.Lists, LocalConfirmedList, "local", watchlist.Entry{Hash: l.Hash, Size: l.Size, Name: l.Path}, by, why)
	return err
}
