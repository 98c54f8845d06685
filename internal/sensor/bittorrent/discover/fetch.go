package discover

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// retryState is a fetch that failed and will be tried again.
type retryState struct {
	job      fetchJob
	attempts int
	next     time.Time
}

// Retries of a failed metadata fetch: a peer that was busy or restarting
// must not cost the match for good (the key is in the seen-set by then).
const (
	maxFetchAttempts = 3
	maxRetryEntries  = 1 << 16
)

// fetchJob is one new info-hash and the node that sampled it.
type fetchJob struct {
	key  routing.ID
	node netip.AddrPort
}

// failed schedules another attempt at a failed fetch, after
// MinInterval, doubled at each attempt, until maxFetchAttempts.
func (d *Discoverer) failed(job fetchJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.retry[job.key]
	if st == nil {
		if len(d.retry) >= maxRetryEntries {
			d.retriesDropped.Add(1)
			return
		}
		st = &retryState{job: job}
		d.retry[job.key] = st
	}
	st.attempts++
	if st.attempts >= maxFetchAttempts {
		delete(d.retry, job.key)
		return
	}
	st.next = d.cfg.Clock().Add(max(d.cfg.MinInterval, 100*time.Millisecond) << st.attempts)
}

// succeeded forgets a key's retries.
func (d *Discoverer) succeeded(key routing.ID) {
	d.mu.Lock()
	delete(d.retry, key)
	d.mu.Unlock()
}

// requeue puts due retries back on the queue, as room allows.
func (d *Discoverer) requeue(now time.Time) {
	d.mu.Lock()
	var due []fetchJob
	for _, st := range d.retry {
		if !st.next.IsZero() && !now.Before(st.next) {
			due = append(due, st.job)
			st.next = time.Time{} // in the queue
		}
	}
	d.mu.Unlock()
	for i, job := range due {
		select {
		case d.q <- job:
			d.retries.Add(1)
		default:
			// Full: try these again at the next tick.
			d.mu.Lock()
			for _, j := range due[i:] {
				if st := d.retry[j.key]; st != nil {
					st.next = now
				}
			}
			d.mu.Unlock()
			return
		}
	}
}

// fetchWorker fetches the metadata of new info-hashes and matches it.
func (d *Discoverer) fetchWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-d.q:
			d.fetch(ctx, job)
		}
	}
}

// maxFetchPeers is how many peers discovery tries for one info dictionary.
const maxFetchPeers = 3

// fetch finds peers of a new info-hash (first those of the node that
// sampled it, which stores it, else a lookup's), fetches the verified
// info dictionary from one of them, and matches it.
func (d *Discoverer) fetch(ctx context.Context, job fetchJob) {
	var peers []netip.AddrPort
	q := &krpc.Msg{Method: krpc.MethodGetPeers}
	q.A.InfoHash = krpc.ID(job.key)
	if id := d.p.DHT.ClosestOfFamily(job.key, job.node.Addr()); id != nil {
		if r, _, err := id.Query(ctx, job.node, q); err == nil && r != nil {
			for _, p := range r.R.Values {
				peers = append(peers, netip.AddrPortFrom(p.Addr().Unmap(), p.Port()))
			}
		}
	}
	if len(peers) == 0 {
		for p := range d.p.DHT.LookupPeers(ctx, job.key).Peers {
			peers = append(peers, p)
		}
	}
	tried := 0
	for _, p := range peers {
		if tried == maxFetchPeers || ctx.Err() != nil {
			break
		}
		if p.Port() == 0 || d.p.Sensor.IsSelf(p) {
			continue
		}
		if !d.p.DHT.Runs(p.Addr()) {
			continue // no address of its family to dial from
		}
		if err := d.p.Guard.Check(p); err != nil {
			d.scopeRefused.Add(1)
			continue
		}
		tried++
		// No log line here, at any level: the key is not watched, and a
		// log that pairs an address with an unwatched item is what the
		// sensor must never keep. The counters say how fetches go.
		info, err := d.fetchMetadata(ctx, p, job.key)
		if err != nil {
			continue
		}
		d.metaFetched.Add(1)
		d.succeeded(job.key)
		d.matchInfo(job, p, info)
		return // matched or dropped: the info dictionary goes out of scope here
	}
	if ctx.Err() != nil {
		return
	}
	if tried == 0 {
		d.noPeers.Add(1)
	} else {
		d.metaFailed.Add(1)
	}
	d.failed(job)
}

// fetchMetadata fetches and verifies key's info dictionary from a peer
// (probe.FetchMetadata) within FetchTimeout and the wire budget. Nothing
// of it is recorded: the torrent is not watched (yet).
func (d *Discoverer) fetchMetadata(ctx context.Context, peer netip.AddrPort, key routing.ID) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.FetchTimeout)
	defer cancel()
	if err := d.p.Limits.Acquire(ctx); err != nil {
		return nil, err
	}
	defer d.p.Limits.Release()
	if !d.p.Limits.AllowAddr(peer.Addr(), d.cfg.Clock()) {
		return nil, fmt.Errorf("per-address budget for %v spent", peer.Addr())
	}
	return d.p.Prober.FetchMetadata(ctx, peer, key)
}

// matchInfo matches a verified info dictionary's files against the lists.
// A match makes the torrent watched; otherwise nothing of it is kept.
func (d *Discoverer) matchInfo(job fetchJob, from netip.AddrPort, info []byte) {
	ti, err := metainfo.Parse(info)
	if err != nil {
		// Not logged: neither the unwatched key nor the parser's error
		// (which may quote the dictionary) may reach a log line.
		d.infoUnparsed.Add(1)
		return
	}
	files := d.matchFiles(ti, info)
	if len(files) == 0 {
		return
	}
	// Each info-hash is watched with the entries its own hashes prove. A
	// v1 client checks only v1 piece hashes, a v2 client v2 roots, and
	// nothing makes a hybrid torrent's two describe the same bytes: its
	// v1 info-hash watched for a v2 root on a list would record v1 peers
	// that may share other bytes (a torrent made to frame them).
	type watch struct {
		h   hashkind.Hash
		all []observe.Match
		why []string
	}
	var ws []watch
	if ti.V1 {
		sum := sha1.Sum(info)
		ws = append(ws, watch{h: hashkind.MustNew(hashkind.BTIH, sum[:])})
	}
	if ti.V2 {
		sum := sha256.Sum256(info)
		ws = append(ws, watch{h: hashkind.MustNew(hashkind.BTIH2, sum[:])})
	}
	for _, f := range files {
		lists := make([]string, 0, len(f.Matched))
		for _, m := range f.Matched {
			lists = append(lists, m.List)
		}
		for i := range ws {
			if (ws[i].h.Kind() == hashkind.BTIH) == (f.Hash.Kind() == hashkind.SHA1) {
				ws[i].all = mergeMatches(ws[i].all, f.Matched)
				ws[i].why = append(ws[i].why, fmt.Sprintf("file %q %s %s on %s", f.Path, f.Hash.Kind(), f.Hash.Hex(), strings.Join(lists, ",")))
			}
		}
	}
	var hashes []hashkind.Hash
	var why []string
	for _, w := range ws {
		if len(w.all) > 0 {
			hashes = append(hashes, w.h)
			why = append(why, w.why...)
		}
	}
	// Two samplers may have queued the same new key at once: the second
	// match of a torrent already discovered adds nothing.
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(hashes) == 0 || d.p.Sensor.Watched(key(hashes[0])) {
		return
	}
	for _, w := range ws {
		if len(w.all) == 0 {
			continue
		}
		if err := d.p.Sensor.Watch(w.h, w.all, "discovered: "+strings.Join(w.why, "; "), info); err != nil {
			d.p.Log.Error("discovery: watching a matched torrent", "infohash", w.h.Hex(), "err", err)
		}
	}
	d.discovered = append(d.discovered, Discovery{Hashes: hashes, Name: ti.Name, Files: files, From: from, Node: job.node, At: d.cfg.Clock()})
	d.matched.Add(1)
	d.p.Log.Info("discovered a torrent with files on a watch-list; watching it",
		"infohash", hashes[0].Hex(), "name", ti.Name, "files_matched", len(files), "reason", "discovered: "+strings.Join(why, "; "), "peer", from, "node", job.node)
}

// matchFiles returns the files of an info dictionary on a list: by their
// v2 root, and by their SHA-1 where a file is exactly one v1 piece.
func (d *Discoverer) matchFiles(ti *metainfo.Info, info []byte) []DiscoveredFile {
	var files []DiscoveredFile
	for _, f := range ti.Files {
		if len(f.PiecesRoot) == hashkind.BTV2.Size() {
			h := hashkind.MustNew(hashkind.BTV2, f.PiecesRoot)
			if ms := d.cfg.Match(h); len(ms) > 0 {
				files = append(files, DiscoveredFile{Path: f.Path, Length: f.Length, Hash: h, Matched: ms})
			}
		}
	}
	spf, err := metainfo.SinglePieceFiles(info)
	if err == nil {
		for _, f := range spf {
			h := hashkind.MustNew(hashkind.SHA1, f.SHA1[:])
			if ms := d.cfg.Match(h); len(ms) > 0 {
				files = append(files, DiscoveredFile{Path: f.Path, Length: f.Length, Hash: h, Matched: ms})
			}
		}
	}
	return files
}

// key is the 20-byte DHT key of an info-hash (the first 20 bytes of a v2
// one, BEP 52).
func key(h hashkind.Hash) routing.ID {
	var k routing.ID
	copy(k[:], h.Bytes())
	return k
}

// mergeMatches adds to a the matches of b it lacks.
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
