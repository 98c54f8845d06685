package bittorrent

import (
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Watched is one info-hash the sensor looks for.
type Watched struct {
	// Hash is the watched info-hash (btih, or btih2 whose first 20 bytes
	// are its DHT key, BEP 52).
	Hash hashkind.Hash
	// Matched are the watch-list entries that made it watched; for a torrent
	// found by discovery, the entries its files matched.
	Matched []observe.Match
	// Reason says why it is watched ("list", or "discovered: file root ...").
	Reason string
	// Trackers named by the torrent, if known.
	Trackers []string
}

// Key is the 20-byte key under which the DHT and trackers know the torrent.
func Key(h hashkind.Hash) routing.ID {
	var k routing.ID
	copy(k[:], h.Bytes())
	return k
}

// watchSet is the sensor's set of watched info-hashes, keyed by DHT key.
// Lookups from the packet path are read-locked and allocation-free.
type watchSet struct {
	mu      sync.RWMutex
	byKey   map[routing.ID]*watchState
	ordered []routing.ID // for round-robin lookups
}

type watchState struct {
	w          Watched
	lastLookup time.Time
}

func newWatchSet() *watchSet { return &watchSet{byKey: make(map[routing.ID]*watchState)} }

// add watches w; it reports whether w was new. Matches of an already
// watched key are merged.
func (s *watchSet) add(w Watched) bool {
	k := Key(w.Hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.byKey[k]; ok {
		st.w.Matched = mergeMatches(st.w.Matched, w.Matched)
		st.w.Trackers = mergeStrings(st.w.Trackers, w.Trackers)
		return false
	}
	s.byKey[k] = &watchState{w: w}
	s.ordered = append(s.ordered, k)
	return true
}

// get returns the watched item under a DHT key.
func (s *watchSet) get(k routing.ID) (Watched, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.byKey[k]
	if !ok {
		return Watched{}, false
	}
	return st.w, true
}

func (s *watchSet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// due returns up to n keys whose last lookup is older than every, oldest
// first, and marks them looked up at now.
func (s *watchSet) due(now time.Time, every time.Duration, n int) []routing.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []routing.ID
	for _, k := range s.ordered {
		st := s.byKey[k]
		if now.Sub(st.lastLookup) >= every {
			out = append(out, k)
			if len(out) == n {
				break
			}
		}
	}
	for _, k := range out {
		s.byKey[k].lastLookup = now
	}
	// Rotate so that a long list is served fairly across calls. Usually
	// the keys taken are the front of the list (it is kept oldest first):
	// then the rotation is a move, not a rebuild of the whole list.
	prefix := len(out) > 0 && len(out) < len(s.ordered)
	for i := 0; prefix && i < len(out); i++ {
		prefix = s.ordered[i] == out[i]
	}
	if prefix {
		// Amortised O(len(out)): append reallocates (and drops the
		// consumed front) only when the capacity runs out.
		s.ordered = append(s.ordered[len(out):], out...)
	} else if len(out) > 0 && len(out) < len(s.ordered) {
		rot := make([]routing.ID, 0, len(s.ordered))
		seen := make(map[routing.ID]bool, len(out))
		for _, k := range out {
			seen[k] = true
		}
		for _, k := range s.ordered {
			if !seen[k] {
				rot = append(rot, k)
			}
		}
		s.ordered = append(rot, out...)
	}
	return out
}

func mergeMatches(a, b []observe.Match) []observe.Match {
	for _, m := range b {
		found := false
		for _, x := range a {
			if x == m {
				found = true
				break
			}
		}
		if !found {
			a = append(a, m)
		}
	}
	return a
}

func mergeStrings(a, b []string) []string {
	for _, s := range b {
		found := false
		for _, x := range a {
			if x == s {
				found = true
				break
			}
		}
		if !found {
			a = append(a, s)
		}
	}
	return a
}
