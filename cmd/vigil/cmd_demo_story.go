package main

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
)

// demoStory plays the parts of the demo's story that the lab cannot play
// alone, once the sensor is up: the announce-only client (a target that
// never gets past "announced"); the analyst's known-offender flag on the
// Marseille seeder's target (lab.Story[1]), as 'vigil target flag' sets
// it; and, once the analysis has linked the mover's Paris and Toulouse
// addresses into one device, its hand-off from the Paris PJ to the
// southern zone's, as 'vigil target share --assign' records it. Old addresses
// stay in trackers and DHT nodes for a while, so the routing alone would
// keep the device in Paris: a hand-off is a person's decision.
type demoStory struct {
	lab    *lab.Lab
	log    interface{ Warn(string, ...any) }
	engine *analysis.Engine
	sq     backend
	by     string // who decides, as 'vigil target' records it
	moves  bool   // the lab moves peers: there is a hand-off to make
	audit  func(ctx context.Context, object string, detail map[string]any) error
}

// decided audits a decision of the story as 'vigil target flag|share'
// audits it.
func (d *demoStory) decided(ctx context.Context, id, decision, why string) {
	if err := d.audit(ctx, "target:"+id, map[string]any{"decision": decision, "why": why}); err != nil {
		d.log.Warn("demo: audit", "target", id, "err", err)
	}
}

// The reasons recorded with the demo's decisions.
const (
	demoFlagWhy    = "vigil demo: synthetic lab peer flagged to show the known-offender flag"
	demoHandOffWhy = "vigil demo: the device moved from Paris (75) to Toulouse (31); handed off to the southern zone's PJ"
	demoHandOffTo  = "fr-szpj-sud"
)

// run plays the story until every part is played or ctx ends (it runs as
// a service of the demo's pipeline).
func (d *demoStory) run(ctx context.Context, s *bittorrent.Sensor) {
	select {
	case <-s.Ready():
	case <-ctx.Done():
		return
	}
	if _, err := d.lab.StartAnnouncer(ctx, s.Addrs(), 15*time.Second); err != nil {
		d.log.Warn("demo: announce-only peer", "err", err)
	}
	ipOf := func(ap string) string {
		a, err := netip.ParseAddrPort(ap)
		if err != nil {
			return ""
		}
		return a.Addr().String()
	}
	m := d.lab.Manifest()
	flagIP, flagged := "", true
	if len(m.Peers) > 1 && m.Peers[1].Role == lab.RoleSeeder {
		flagIP, flagged = ipOf(m.Peers[1].Addr), false
	}
	handed := !d.moves || !(len(m.Peers) > lab.StoryMover && m.Peers[lab.StoryMover].Role == lab.RoleSeeder)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !flagged || !handed {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ts, _, err := d.sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000})
		if err != nil {
			continue
		}
		var mover lab.ManifestPeer
		if !handed {
			mover = d.lab.Manifest().Peers[lab.StoryMover]
		}
		for _, t := range ts {
			if !flagged && strings.HasPrefix(t.Label, flagIP+":") {
				if err := d.engine.SetFlag(ctx, t.ID, analysis.FlagKnownOffender, true, d.by, demoFlagWhy); err != nil {
					d.log.Warn("demo: flag", "target", t.ID, "err", err)
				} else {
					d.decided(ctx, t.ID, "flag", demoFlagWhy)
				}
				flagged = true
			}
			if handed || t.Endpoints < 2 || len(mover.PreviousAddrs) == 0 {
				continue
			}
			dt, err := d.sq.Target(ctx, t.ID, analysis.AllAgencies)
			if err != nil {
				continue
			}
			from, to := false, false
			for _, ep := range dt.Endpoints {
				from = from || ep.IP.String() == ipOf(mover.PreviousAddrs[0])
				to = to || ep.IP.String() == ipOf(mover.Addr)
			}
			if from && to {
				if err := d.engine.Assign(ctx, t.ID, demoHandOffTo, d.by, demoHandOffWhy); err != nil {
					d.log.Warn("demo: hand-off", "target", t.ID, "err", err)
				} else {
					d.decided(ctx, t.ID, "share", demoHandOffWhy)
				}
				handed = true
			}
		}
	}
}
