package bittorrent

import (
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// ErrBadInfo means an info dictionary does not describe a torrent.
var ErrBadInfo = metainfo.ErrBadInfo

// TorrentInfo is what the sensor keeps of a watched torrent's info
// dictionary (package metainfo): enough to count pieces and to match
// files. It never keeps or fetches content.
type TorrentInfo = metainfo.Info

// File is one file of a torrent.
type File = metainfo.File

// ParseInfo reads an info dictionary (v1, v2 or hybrid).
func ParseInfo(b []byte) (*TorrentInfo, error) { return metainfo.Parse(b) }

// rememberInfo keeps a verified info dictionary's summary for a watched key.
func (s *Sensor) rememberInfo(key routing.ID, b []byte) {
	ti, err := ParseInfo(b)
	if err != nil {
		s.log.Warn("info dictionary that matched its info-hash does not parse", "err", err)
		return
	}
	s.infoMu.Lock()
	if s.infos == nil {
		s.infos = map[routing.ID]*TorrentInfo{}
	}
	s.infos[key] = ti
	s.infoMu.Unlock()
}

// TorrentFiles is what a peer's verified metadata says about the files of
// a watched torrent (Config.OnFiles).
type TorrentFiles struct {
	Torrent   hashkind.Hash // the watched info-hash
	Name      string
	Files     []File
	Peer      netip.AddrPort
	Transport string
	Time      time.Time
}

// pieceCount is a watched torrent's piece count, or -1 while unknown.
func (s *Sensor) pieceCount(key routing.ID) int {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if ti, ok := s.infos[key]; ok && ti.Pieces > 0 {
		return ti.Pieces
	}
	return -1
}

// Info returns what the sensor learned of a watched torrent's files.
func (s *Sensor) Info(key routing.ID) (*TorrentInfo, bool) {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	ti, ok := s.infos[key]
	return ti, ok
}

func pingMsg() *krpc.Msg { return &krpc.Msg{Method: krpc.MethodPing} }
