package analysis

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// leadKey names a lead: its own hash, or its torrent and path.
func leadKey(a *Associated, f *AssocFile) string {
	if !f.Hash.IsZero() {
		return HashKey(f.Hash)
	}
	return HashKey(a.Torrent) + "/" + f.Path
}

// AddAssociated records the other files of matched torrents as leads.
// Files that are watched themselves (Config.Watched) or are the torrent
// itself are left out. A lead makes no observation and no score; only a
// confirmed lead adds the new_material part to the targets it was seen
// with.
func (e *Engine) AddAssociated(ctx context.Context, as []Associated) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range as {
		a := &as[i]
		if a.Torrent.IsZero() || !a.Endpoint.IP.IsValid() || a.Time.IsZero() {
			return fmt.Errorf("analysis: associated files %d: want a torrent hash, an endpoint and a time", i)
		}
		ap := netip.AddrPortFrom(a.Endpoint.IP.Unmap(), a.Endpoint.Port)
		tk := HashKey(a.Torrent)
		for j := range a.Files {
			f := &a.Files[j]
			if !f.Hash.IsZero() && (f.Hash == a.Torrent || (e.cfg.Watched != nil && e.cfg.Watched(f.Hash))) {
				continue
			}
			if f.Hash.IsZero() && f.Path == "" {
				continue
			}
			// The path is the peer's own text (a torrent's metadata is
			// whatever its maker wrote): written by observe.EscapeText
			// (docs/evidence.md, "Peer text"), as the lead's name and
			// key hold it in every store.
			esc := *f
			esc.Path = observe.EscapeText(f.Path)
			f = &esc
			k := leadKey(a, f)
			l := e.leads[k]
			if l == nil {
				l = &LeadState{Lead: Lead{Key: k, Hash: f.Hash, Path: f.Path, Size: f.Size, FirstSeen: a.Time.UTC(), LastSeen: a.Time.UTC(), State: LeadOpen, Sources: -1}, TorrentHash: a.Torrent, Seen: map[string]int{}}
				e.leads[k] = l
			}
			if l.TorrentHash.IsZero() {
				// A suspect lead now seen in a torrent too: the torrent's
				// path and size, not what a search result claimed.
				if l.suspectOnly() {
					e.nSuspect--
				}
				l.TorrentHash = a.Torrent
				l.Path, l.Size = f.Path, f.Size
				l.FirstSeen, l.LastSeen = a.Time.UTC(), a.Time.UTC()
			}
			l.sighted(a.Time, f.Path, f.Size)
			if !slices.Contains(l.Torrents, tk) {
				l.Torrents = append(l.Torrents, tk)
			}
			if !slices.Contains(l.Watched, tk) {
				l.Watched = append(l.Watched, tk)
			}
			l.Seen[ap.String()]++
			l.Endpoints = len(l.Seen)
			e.leadOn(ap, k)
			e.dirtyLeads[k] = true
			if l.State == LeadConfirmed {
				if id, ok := e.latestEp(ap); ok {
					e.markEp(id)
				}
			}
		}
	}
	return e.save(ctx)
}

// sighted counts one more sighting of l at t, and fills its name and size
// if it had none.
func (l *LeadState) sighted(t time.Time, path string, size int64) {
	l.Count++
	if t.Before(l.FirstSeen) {
		l.FirstSeen = t.UTC()
	}
	if t.After(l.LastSeen) {
		l.LastSeen = t.UTC()
	}
	if l.Path == "" {
		l.Path = path
	}
	if l.Size <= 0 {
		l.Size = size
	}
}

// suspectOnly reports whether keyword searches alone made the lead: seen
// in no torrent.
func (l *LeadState) suspectOnly() bool { return l.TorrentHash.IsZero() && l.Searched > 0 }

// AddSuspects records the files of analysts' keyword searches as suspect
// leads, keyed by their hash (one lead per file, whatever found it; a
// file also seen in a torrent is the same lead). A file on a watch-list
// (Config.Watched) is left out: it is watched, not a lead. A suspect lead
// is seen at no endpoint: it adds nothing to any target, its score or
// its level, and makes no observation; confirming it lists its hash
// (ListRules), so that from then on the sensors watch it and what they
// observe of it is scored as for any listed file.
func (e *Engine) AddSuspects(ctx context.Context, ss []Suspect) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range ss {
		sp := &ss[i]
		if sp.Hash.IsZero() || sp.Time.IsZero() || sp.Keyword == "" || sp.Network == "" {
			return fmt.Errorf("analysis: suspect %d: want a hash, a time, a keyword and a network", i)
		}
		// The name is what a server or Kad node said: peer text, written
		// by observe.EscapeText as for an associated file.
		esc := *sp
		esc.Name = observe.EscapeText(sp.Name)
		sp = &esc
		if e.cfg.Watched != nil && e.cfg.Watched(sp.Hash) {
			continue
		}
		k := HashKey(sp.Hash)
		l := e.leads[k]
		if l == nil {
			if e.nSuspect >= e.cfg.MaxSuspectLeads {
				e.dropped[DropSuspectLeadsFull]++
				continue
			}
			l = &LeadState{Lead: Lead{Key: k, Hash: sp.Hash, Path: sp.Name, Size: sp.Size, FirstSeen: sp.Time.UTC(), LastSeen: sp.Time.UTC(),
				State: LeadOpen, Sources: -1}, Seen: map[string]int{}}
			e.leads[k] = l
			e.nSuspect++
		}
		// A search result is no sighting (Count, and the times of a lead
		// seen in a torrent): it names no one.
		l.Searched++
		if l.TorrentHash.IsZero() {
			if sp.Time.Before(l.FirstSeen) {
				l.FirstSeen = sp.Time.UTC()
			}
			if sp.Time.After(l.LastSeen) {
				l.LastSeen = sp.Time.UTC()
			}
			if l.Path == "" {
				l.Path = sp.Name
			}
			if l.Size <= 0 {
				l.Size = sp.Size
			}
		}
		if !slices.Contains(l.Keywords, sp.Keyword) {
			l.Keywords = append(l.Keywords, sp.Keyword)
		}
		if !slices.Contains(l.Networks, sp.Network) {
			l.Networks = append(l.Networks, sp.Network)
		}
		l.Sources = max(l.Sources, sp.Sources)
		e.dirtyLeads[k] = true
	}
	return e.save(ctx)
}

// confirmedLeads counts the distinct confirmed leads seen at members.
func (e *Engine) confirmedLeads(members []int32) int {
	seen := map[string]bool{}
	for _, m := range members {
		for k := range e.leadsByEp[e.eps[m].key] {
			if l := e.leads[k]; l != nil && l.State == LeadConfirmed {
				seen[k] = true
			}
		}
	}
	return len(seen)
}

// markLeadTargets marks the targets a lead was seen with.
func (e *Engine) markLeadTargets(l *LeadState) {
	for k := range l.Seen {
		if ap, err := netip.ParseAddrPort(k); err == nil {
			if id, ok := e.latestEp(ap); ok {
				e.markComponent(id)
			}
		}
	}
}
