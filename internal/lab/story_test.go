package lab

import (
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
