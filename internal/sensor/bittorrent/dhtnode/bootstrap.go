package dhtnode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Bootstrap bounds: a round adds less than 1/bootstrapStable of the
// routing entries (the tables are stable), bootstrapMaxRounds rounds, or
// bootstrapTimeouts query timeouts in all, whichever comes first.
const (
	bootstrapMaxRounds = 6
	bootstrapStable    = 20
	bootstrapTimeouts  = 20
	// bootstrapSpread is how many targets spread over the key space each
	// round after the first looks up (fewer while the tables hold fewer
	// than bootstrapSpread·K nodes), so that the identities' tables
	// together know nodes near any key, not only near their own ids.
	bootstrapSpread = 32
)

// findJob is one find_node lookup of the bootstrap: target from n.
type findJob struct {
	n      *Node
	target routing.ID
}

// bootstrap fills the identities' routing tables before the first lookup
// round: a lookup round started on empty tables asks only the bootstrap
// nodes and misses peers for a whole LookupEvery. In round one every
// identity looks up its own id; in each later round its own id again
// (now from closer nodes) and up to bootstrapSpread targets spread evenly
// over the key space, each from the identity closest to it. It logs when it
// ends and how full the tables are (counts only).
func (d *DHT) bootstrap(ctx context.Context) {
	t0 := time.Now()
	bctx, cancel := context.WithTimeout(ctx, bootstrapTimeouts*d.cfg.QueryTimeout)
	defer cancel()
	queries0 := d.sent.Load()
	rounds, prev, stable := 0, 0, false
	for rounds < bootstrapMaxRounds && bctx.Err() == nil {
		d.bootstrapRound(bctx, d.bootstrapJobs(rounds, prev))
		rounds++
		total := d.routingNodes()
		// A family whose tables are empty while nodes of it were heard
		// through the other family (BEP 32 want) joins in the next
		// round: the tables are not stable yet.
		if (total == 0 || (total-prev)*bootstrapStable < total) && !d.familyWaiting() {
			stable = bctx.Err() == nil
			prev = total
			break
		}
		prev = total
	}
	d.bootstrapTook.Store(int64(time.Since(t0)))
	d.logBootstrap(t0, rounds, prev, stable, d.sent.Load()-queries0)
}

// bootstrapJobs are round's lookups: every identity's own id, and after
// the first round targets spread over the key space, as many as the
// tables (prev nodes) hold buckets' worth of nodes, up to bootstrapSpread:
// on a network this small, more would only ask the same few nodes again
// (through the per-address budget).
func (d *DHT) bootstrapJobs(round, prev int) []findJob {
	var jobs []findJob
	for _, n := range d.nodes {
		jobs = append(jobs, findJob{n, routing.ID(n.id)})
	}
	if round == 0 {
		return jobs
	}
	var off [4]byte
	_, _ = rand.Read(off[:])
	spread := uint64(min(bootstrapSpread, max(1, prev/K)))
	for i := range spread {
		var t routing.ID
		_, _ = rand.Read(t[:])
		span := uint64(1<<32) / spread
		top := uint32(i*span + uint64(binary.BigEndian.Uint32(off[:]))%span)
		binary.BigEndian.PutUint32(t[:4], top)
		// Each family's DHT is its own network: the same targets in
		// each, from its identity closest to them.
		for _, v6 := range d.families() {
			jobs = append(jobs, findJob{d.closestIdentityOf(t, v6), t})
		}
	}
	return jobs
}

// bootstrapRound runs jobs, as many at once as there are identities (or
// LookupConcurrency if more).
func (d *DHT) bootstrapRound(ctx context.Context, jobs []findJob) {
	sem := make(chan struct{}, max(len(d.nodes), d.cfg.LookupConcurrency))
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d.findNode(ctx, j.n, j.target)
		}()
	}
	wg.Wait()
}

// logBootstrap says how the bootstrap ended and how full the tables are
// (counts only); a warning if a table of a family the sensor runs is
// empty.
func (d *DHT) logBootstrap(t0 time.Time, rounds, total int, stable bool, sent uint64) {
	least, most := -1, 0
	for _, n := range d.nodes {
		l := n.table.Len()
		if least < 0 || l < least {
			least = l
		}
		most = max(most, l)
	}
	attrs := []any{"identities", len(d.nodes), "rounds", rounds, "stable", stable, "routing_nodes", total,
		"least_per_identity", least, "most_per_identity", most, "datagrams_sent", sent,
		"took", time.Since(t0).Round(time.Millisecond)}
	var empty []string
	if d.dualStack() {
		for _, v6 := range d.families() {
			fam := FamilyName(v6)
			n := d.routingNodesOf(v6)
			attrs = append(attrs, "routing_nodes_"+fam, n)
			if n == 0 {
				empty = append(empty, fam)
			}
		}
	}
	switch {
	case total == 0:
		d.log.Warn("DHT bootstrap ended with empty routing tables: the bootstrap nodes did not answer", attrs...)
		return
	case len(empty) > 0:
		d.log.Warn("DHT bootstrap left an address family with empty routing tables: no bootstrap node of it answered, and none was heard through the other", append(attrs, "empty", empty)...)
		return
	}
	d.log.Info("DHT identities bootstrapped", attrs...)
}

// routingNodes is the number of nodes in all the identities' tables.
func (d *DHT) routingNodes() int {
	n := 0
	for _, m := range d.nodes {
		n += m.table.Len()
	}
	return n
}

// routingNodesOf is the number of nodes in the tables of one family's
// identities.
func (d *DHT) routingNodesOf(v6 bool) int {
	n := 0
	for _, m := range d.nodes {
		if m.v6 == v6 {
			n += m.table.Len()
		}
	}
	return n
}

// familyWaiting reports whether a family the sensor runs has empty tables
// while nodes of it were heard through the other family.
func (d *DHT) familyWaiting() bool {
	for _, v6 := range d.families() {
		if d.routingNodesOf(v6) == 0 && d.heard.len(v6) > 0 {
			return true
		}
	}
	return false
}

// maintain refreshes each identity's routing table every RefreshEvery
// (a lookup of its own id, through the bootstrap nodes if the tables have
// emptied) and pings stale nodes. The first fill is bootstrap's.
func (d *DHT) maintain(ctx context.Context) error {
	join := func() {
		var wg sync.WaitGroup
		for _, n := range d.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.findNode(ctx, n, routing.ID(n.id))
			}()
		}
		wg.Wait()
	}
	tick := time.NewTicker(d.cfg.RefreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if d.routingNodes() == 0 {
				d.log.Warn("routing tables are empty; joining again through the bootstrap nodes", "bootstrap", d.cfg.Bootstrap)
			}
			join()
			now := d.cfg.Clock()
			for _, n := range d.nodes {
				for _, nd := range n.table.Stale(d.cfg.RefreshEvery, now) {
					if _, _, err := n.Query(ctx, nd.Addr, &krpc.Msg{Method: krpc.MethodPing}); err != nil {
						n.table.Failed(nd.ID)
					}
				}
			}
		}
	}
}
