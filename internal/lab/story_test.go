package lab

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	alog "github.com/anacrolix/log"
)

// TestStoryCastsTheDemoServices: with Story, the first seeders live in the
// départements of the demo's services (75; 13, 2A, 31), each shares a
// watched torrent, and the first move takes the story's mover from Paris
// to Toulouse (drawn at random, seed 1 put the peers in 33, 69, Belgium,
// Germany and Canada, and both demo investigators saw nothing).
func TestStoryCastsTheDemoServices(t *testing.T) {
	plan := func(story bool) *Lab {
		cfg := DefaultConfig()
		cfg.Story, cfg.Dir = story, t.TempDir()
		l := &Lab{cfg: cfg, dir: cfg.Dir}
		for i := range cfg.Torrents {
			l.torrents = append(l.torrents, &Torrent{Name: "t", Watched: i < cfg.Watched})
		}
		if err := l.planPeers(rand.New(rand.NewPCG(cfg.Seed, 0x1d)), nil, alog.Logger{}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := plan(true)
	for i, r := range Story {
		p := l.peers[i]
		pl, ok := PlaceOf(p.addr)
		if !ok || pl.Departement != r.Departement || p.role != RoleSeeder {
			t.Fatalf("story seeder %d at %s (%+v), want département %s", i, p.addr, pl, r.Departement)
		}
		if !slices.ContainsFunc(p.torrents, func(x *Torrent) bool { return x.Watched }) {
			t.Errorf("story seeder %d (%s) shares no watched torrent", i, r.Departement)
		}
	}
	if len(l.plannedMoves) != 1 || l.plannedMoves[0].peer != l.peers[StoryMover] {
		t.Fatalf("planned moves %+v: want the story's mover first", l.plannedMoves)
	}
	if to, _ := PlaceOf(l.plannedMoves[0].to); to.Departement != Story[StoryMover].MovesTo {
		t.Fatalf("the mover goes to %+v, want département %s", to, Story[StoryMover].MovesTo)
	}
	if pl, _ := PlaceOf(AnnouncerAddr()); pl.Departement != "31" {
		t.Fatalf("announcer at %s placed in %+v, want Toulouse (31)", AnnouncerAddr(), pl)
	}
	for _, p := range l.peers {
		if p.addr == AnnouncerAddr() {
			t.Fatalf("a peer has the announcer's address %s", p.addr)
		}
	}

}

// TestSeeders6LeaveThePlanUnchanged plans the demo's lab with and without
// IPv6 seeders: the IPv4 peers, their torrents and the moves are the same,
// on IPv4 alone; the IPv6 seeders come last, on IPv6 alone, in Lyon, each
// with a watched torrent.
func TestSeeders6LeaveThePlanUnchanged(t *testing.T) {
	plan := func(seeders6 int) *Lab {
		cfg := DefaultConfig()
		cfg.Story, cfg.Dir = true, t.TempDir()
		if seeders6 > 0 {
			cfg.Family, cfg.Seeders6 = FamilyBoth, seeders6
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		l := &Lab{cfg: cfg, dir: cfg.Dir}
		for i := range cfg.Torrents {
			l.torrents = append(l.torrents, &Torrent{Name: fmt.Sprint("t", i), Watched: i < cfg.Watched})
		}
		if err := l.planPeers(rand.New(rand.NewPCG(cfg.Seed, 0x1d)), nil, alog.Logger{}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		return l
	}
	names := func(ts []*Torrent) (out []string) {
		for _, x := range ts {
			out = append(out, x.Name)
		}
		return out
	}
	base, with := plan(0), plan(2)
	n := len(base.peers)
	if len(with.peers) != n+2 {
		t.Fatalf("%d peers with 2 IPv6 seeders, want %d", len(with.peers), n+2)
	}
	for i, p := range base.peers {
		q := with.peers[i]
		if q.addr != p.addr || q.peerID != p.peerID || q.nodeID != p.nodeID || q.role != p.role || q.family != Family4 ||
			!slices.Equal(names(q.torrents), names(p.torrents)) {
			t.Errorf("peer %d: %s %s %v %s; want %s %s %v on family 4 as without IPv6 seeders", i, q.addr, q.family, names(q.torrents), q.role, p.addr, p.role, names(p.torrents))
		}
	}
	if len(with.plannedMoves) != len(base.plannedMoves) {
		t.Fatalf("%d moves, want %d", len(with.plannedMoves), len(base.plannedMoves))
	}
	for k, m := range base.plannedMoves {
		if w := with.plannedMoves[k]; w.peer.index != m.peer.index || w.to != m.to {
			t.Errorf("move %d: peer %d to %s, want peer %d to %s", k, w.peer.index, w.to, m.peer.index, m.to)
		}
	}
	for _, p := range with.peers[n:] {
		pl, _ := PlaceOf(p.addr)
		if p.family != Family6 || p.role != RoleSeeder || pl.Departement != "69" || len(p.torrents) != 1 || !p.torrents[0].Watched {
			t.Errorf("IPv6 seeder %d: family %s, role %s, at %s (%s), torrents %v; want an IPv6 seeder in Lyon (69) of a watched torrent",
				p.index, p.family, p.role, p.addr, pl.City, names(p.torrents))
		}
		if twin, _ := IPv6Twin(p.addr); !Seeders6Place.Prefix6.Contains(twin) {
			t.Errorf("IPv6 seeder %d: ULA twin %s outside Lyon's %s", p.index, twin, Seeders6Place.Prefix6)
		}
	}
	if with.peers[n].peerID == with.peers[n+1].peerID {
		t.Errorf("two IPv6 seeders share the peer id %q", with.peers[n].peerID)
	}
}
