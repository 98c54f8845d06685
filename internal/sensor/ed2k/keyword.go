package ed2k

import (
	"context"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kad"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// Suspect is a file an analyst's keyword search returned whose hash the
// sensor does not watch: a lead for a human to review, never an
// observation, a match or a level. It names no client: a search result
// says what a server or a Kad node indexes, not who holds the file.
type Suspect struct {
	// Keyword is the analyst's keyword (a line of the keywords file)
	// whose search returned the file.
	Keyword string
	// Network is observe.NetED2K (a server's search) or observe.NetKad.
	Network string
	Hash    hashkind.Hash // kind ed2k
	Name    string
	Size    int64 // -1 when not given
	// Sources is the most clients the server or a Kad node said have the
	// file (-1: none said): their word, not something the sensor saw.
	Sources int
	Time    time.Time
}

// found is one file of a search result, from either network.
type found struct {
	hash    [16]byte
	name    string
	size    int64
	sources int
}

// maxSuspectName bounds a suspect's file name, in bytes. A server or a
// node names files as it likes (a tag string of up to 64 KiB), and a
// suspect lead is kept in the analysis's memory for good; no file system
// names a file longer (NTFS: 255 UTF-16 units, at most 765 bytes of
// UTF-8; ext4: 255 bytes). A longer name is dropped, counted.
const maxSuspectName = 1024

// keywordWords splits each keyword into the words eMule indexes
// (wire.Words); a keyword without any is refused by Validate.
func keywordWords(kws []string) [][]string {
	out := make([][]string, len(kws))
	for i, k := range kws {
		out[i] = wire.Words(k)
	}
	return out
}

// results sorts the files a search for kw returned: a file whose name
// is longer than maxSuspectName, or lacks one of the keyword's words, is
// dropped (a server or node that
// answers off the point, or a late answer to another search), a watched
// hash is counted (its sources are asked for as every watched hash's
// are, each round), and every other file, once per search, goes to
// OnSuspect, and is counted as a suspect only if it recorded it.
// Nothing of them is logged.
func (s *Sensor) results(kw string, words []string, network string, at time.Time, fs []found) {
	seen := make(map[[16]byte]int, len(fs))
	var out []Suspect
	for _, f := range fs {
		if len(f.name) > maxSuspectName {
			s.drop("keyword_result_name_too_long")
			continue
		}
		if !wire.HasWords(f.name, words) {
			s.drop("keyword_result_unrelated")
			continue
		}
		if i, ok := seen[f.hash]; ok {
			out[i].Sources = max(out[i].Sources, f.sources)
			continue
		}
		s.mu.Lock()
		_, watched := s.watched[f.hash]
		s.mu.Unlock()
		if watched {
			s.keywordWatched.Add(1)
			continue
		}
		h, err := hashkind.New(hashkind.ED2K, f.hash[:])
		if err != nil {
			continue
		}
		seen[f.hash] = len(out)
		out = append(out, Suspect{Keyword: kw, Network: network, Hash: h, Name: f.name, Size: f.size, Sources: f.sources, Time: at.UTC()})
	}
	for _, sp := range out {
		if s.cfg.OnSuspect(sp) {
			s.suspects.Add(1)
		} else {
			s.drop("keyword_result_no_lead")
		}
	}
}

// searchServer runs every keyword search on a server session.
func (s *Sensor) searchServer(ctx context.Context, sess *server.Session, words [][]string) error {
	for i, kw := range s.cfg.Keywords {
		if ctx.Err() != nil {
			return nil
		}
		res, err := sess.Search(ctx, words[i])
		if res.Asked {
			s.keywordSearches.Add(1)
		}
		s.notTaken(res.Late, res.Unasked, err)
		if res.NotUnpacked > 0 {
			s.dropN("server_packet_not_unpacked", res.NotUnpacked)
		}
		if err != nil {
			return err
		}
		if res.Over > 0 {
			s.dropN("keyword_results_over_cap", res.Over)
		}
		fs := make([]found, len(res.Files))
		for j, f := range res.Files {
			fs[j] = found{f.Hash, f.Name, f.Size, f.Sources}
		}
		s.results(kw, words[i], observe.NetED2K, res.At, fs)
	}
	return nil
}

// runKadKeywords searches every keyword in Kad (by its first word, as
// eMule does; the others are checked in the names) every KeywordEvery,
// until ctx ends.
func (s *Sensor) runKadKeywords(ctx context.Context, node *kad.Node) {
	words := keywordWords(s.cfg.Keywords)
	for {
		start := s.now()
		for i, kw := range s.cfg.Keywords {
			if ctx.Err() != nil {
				return
			}
			s.keywordSearches.Add(1)
			res, over := node.SearchKeyword(ctx, words[i][0])
			if over > 0 {
				s.dropN("keyword_results_over_cap", over)
			}
			fs := make([]found, len(res))
			at := s.now()
			for j, f := range res {
				fs[j] = found{f.File.Hash, f.File.Name, f.File.Size, f.File.Sources}
				if j == 0 || f.At.Before(at) {
					at = f.At
				}
			}
			s.results(kw, words[i], observe.NetKad, at, fs)
		}
		if !sleep(ctx, s.cfg.KeywordEvery-s.now().Sub(start)) {
			return
		}
	}
}
