// Package ed2k is Vigil's eDonkey and Kad sensor: it asks eD2K servers
// (package server) and Kad nodes (package kad) for the sources of watched
// ed2k hashes, probes each source (package probe) to learn what the client
// itself says, and emits observations: ed2k_server_sources (network ed2k)
// and kad_sources (network kad), third parties' claims at level announced;
// and peer_probe (network ed2k), first-hand, with the client's user hash,
// software and version from its own hello, and the level its part map
// establishes. Where an analyst configured keywords, it also searches
// them on servers and in Kad; the unwatched files found go to OnSuspect
// as review leads (Suspect), never as observations.
//
// It must never publish or offer anything (no source, keyword or file, in
// Kad or to a server), let an observation of an unwatched hash leave it,
// let an unwatched file out but as a Suspect, log an address beside a
// hash, log a keyword or a search result, record itself, or send
// anything except through the scope guard.
package ed2k

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kad"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/probe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/record"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/timesync"
)

// Watched is one ed2k hash the sensor looks for.
type Watched struct {
	Hash hashkind.Hash // kind ed2k
	// Size is the file's size in bytes where a list gave it, -1 when
	// unknown: servers want it, and a part map is judged against it.
	Size    int64
	Matched []observe.Match
}

// Config is the sensor's configuration.
type Config struct {
	// ID and Version name the sensor in its observations.
	ID, Version string
	// Commit, Modified and ConfigSHA256 complete the sensor's identity
	// in its observations (observe.Sensor): the VCS revision it was
	// built from, whether that tree had uncommitted changes, and the
	// SHA-256 of its effective configuration.
	Commit       string
	Modified     bool
	ConfigSHA256 string
	// TimeSync measures the sensor clock's offset, recorded with every
	// observation; nil: the offset is unknown, source "none".
	TimeSync *timesync.Monitor
	// Listen is the address the Kad node listens on and probes and
	// server connections leave from: one IPv4 address (eD2K and Kad run
	// over IPv4 alone; 0.0.0.0 is refused).
	Listen netip.Addr
	// KadPort is the Kad node's UDP port (0: any).
	KadPort uint16
	// KadBootstrap are Kad nodes to join through; none: no Kad.
	KadBootstrap []netip.AddrPort
	// Servers are eD2K servers to ask; none: no server.
	Servers []netip.AddrPort
	// SearchEvery is how often each watched hash is asked for again.
	SearchEvery time.Duration
	// Probe probes each source found (on by default).
	Probe bool
	// Verify fetches one part from each probed client that advertises
	// one, hashes it in memory and discards it (off by default).
	Verify bool
	// ProbeWorkers bounds the probes in flight; ProbeQueue the sources
	// waiting (more are dropped and counted).
	ProbeWorkers, ProbeQueue int
	// ReprobeAfter is how long a (client, file) pair is not probed again.
	ReprobeAfter time.Duration
	// MaxProbed bounds the (client, file) pairs remembered for
	// ReprobeAfter; past it, new pairs are not probed (counted as
	// probe_table_full) until old ones expire.
	MaxProbed int
	// MaxSourcesPerAnswer bounds the sources taken from one server
	// answer; the rest are counted (sources_over_cap), never recorded.
	// An OP_FOUNDSOURCES counts its sources in one byte and must hold
	// exactly that many, so one answer names at most 255: the default
	// (1,000) is never reached, a lower setting is.
	MaxSourcesPerAnswer int
	// ProbeTimeout, ServerWait, KadQueryTimeout and KadSearchWait bound
	// a probe, a server's answer, a Kad query and a Kad source search.
	ProbeTimeout, ServerWait, KadQueryTimeout, KadSearchWait time.Duration
	// KadParallel bounds the Kad source searches in flight (each holds
	// its answers open for KadSearchWait).
	KadParallel int
	// TranscriptLimit bounds each observation's transcript.
	TranscriptLimit int
	// Keywords are an analyst's keyword searches, each a phrase of which
	// every word (as eMule splits names: wire.Words) must be in a file's
	// name; none (the default: none are shipped): no keyword search. Each
	// is searched in Kad (by its first word) every KeywordEvery, and on
	// every server after the first round of source requests once
	// KeywordEvery has passed (so no more often than SearchEvery).
	Keywords     []string
	KeywordEvery time.Duration
	// OnSuspect receives the files keyword searches return that the
	// sensor does not watch: leads for review. It reports whether the
	// file was recorded in a suspect lead (false: a list names it, a
	// known-benign one say, or it could not be stored). Required with
	// Keywords; called from the search loops, it must not block for long.
	OnSuspect func(Suspect) bool
	// UserHash is the sensor's user hash (random when zero).
	UserHash [16]byte
	// Budget bounds what the sensor sends (per address, in flight).
	Budget netlimit.Config
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
	// Own are the deployment's own addresses (package own,
	// --own-addresses): its other sensors' hosts or sockets. The sensor
	// records none of them and probes none, in every scope, as it never
	// records itself; each is counted (deployment_address). nil: none.
	Own *own.Set
}

// DefaultConfig returns settings for a real network: searches every 15
// minutes, probes on, verification off.
func DefaultConfig() Config {
	return Config{ID: "ed2k-1", Listen: netip.MustParseAddr("127.0.0.1"), SearchEvery: 15 * time.Minute, Probe: true,
		ProbeWorkers: 16, ProbeQueue: 4096, ReprobeAfter: time.Hour, MaxProbed: 1 << 20, MaxSourcesPerAnswer: 1000,
		ProbeTimeout: 20 * time.Second,
		ServerWait:   10 * time.Second, KadQueryTimeout: 3 * time.Second, KadSearchWait: 5 * time.Second,
		KadParallel: 4, TranscriptLimit: 64 << 10, Budget: netlimit.DefaultConfig(), KeywordEvery: time.Hour}
}

// LabConfig returns settings for the lab on loopback: searches every 10
// seconds, short timeouts, no wire budget.
func LabConfig() Config {
	c := DefaultConfig()
	c.SearchEvery, c.ReprobeAfter, c.KeywordEvery = 10*time.Second, 5*time.Minute, 10*time.Second
	c.ProbeTimeout, c.ServerWait, c.KadQueryTimeout, c.KadSearchWait = 5*time.Second, 500*time.Millisecond, time.Second, time.Second
	c.ProbeWorkers, c.KadParallel = 64, 32
	c.Budget = netlimit.Unlimited()
	return c
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case !c.Listen.IsValid():
		return errors.New("ed2k sensor: no listen address")
	case !c.Listen.Unmap().Is4():
		// A client id, a server's source and a Kad contact are IPv4
		// addresses: from an IPv6 one no server or node can be reached.
		return fmt.Errorf("ed2k sensor: listen address %s is not IPv4 (eD2K and Kad run over IPv4 alone)", c.Listen)
	case c.Listen.Unmap().IsUnspecified():
		// Every observation names the listen address as the sensor's
		// vantage, and the sensor knows itself by it (Sensor.self).
		return errors.New("ed2k sensor: listen address 0.0.0.0 names no address: give the one the sensor uses")
	case len(c.KadBootstrap) == 0 && len(c.Servers) == 0:
		return errors.New("ed2k sensor: neither Kad bootstrap nodes nor servers given (it never contacts public ones)")
	case c.SearchEvery <= 0 || c.ReprobeAfter < 0:
		return errors.New("ed2k sensor: search interval must be positive")
	case c.Probe && (c.ProbeWorkers <= 0 || c.ProbeQueue <= 0 || c.ProbeTimeout <= 0):
		return errors.New("ed2k sensor: probe workers, queue and timeout must be positive")
	case c.ServerWait <= 0 || c.KadQueryTimeout <= 0 || c.KadSearchWait <= 0:
		return errors.New("ed2k sensor: timeouts must be positive")
	case len(c.KadBootstrap) > 0 && c.KadParallel <= 0:
		return errors.New("ed2k sensor: KadParallel must be positive")
	case c.TranscriptLimit < 0:
		return errors.New("ed2k sensor: transcript limit is negative")
	case len(c.Keywords) > 0 && (c.OnSuspect == nil || c.KeywordEvery <= 0):
		return errors.New("ed2k sensor: keyword searches need somewhere to send their leads (OnSuspect) and a positive interval")
	}
	for i, w := range keywordWords(c.Keywords) {
		if len(w) == 0 {
			return fmt.Errorf("ed2k sensor: keyword %d has no word of 3 bytes or more (eMule indexes none shorter)", i+1)
		}
	}
	return nil
}

// Stats are the sensor's counters.
type Stats struct {
	ServerAsks, ServerLogins, ServerErrors uint64
	KadSearches                            uint64
	// KeywordSearches counts keyword searches (servers and Kad);
	// KeywordWatched the results whose hash is watched; Suspects the
	// results OnSuspect recorded in suspect leads (a file several
	// searches return counts each time; those it did not record are
	// dropped, keyword_result_no_lead).
	KeywordSearches, KeywordWatched, Suspects uint64
	Kad                                       kad.Stats
	Probes, ProbeFailures                     uint64
	// Emitted counts observations published, by method.
	Emitted map[string]uint64
	// Dropped counts what was not recorded, by reason (low_id, self,
	// deployment_address,
	// non_public_*, not_acknowledged, wrong_file, queue_full,
	// publish_failed, out_of_scope, ...).
	Dropped map[string]uint64
}

// Sensor is a running eD2K and Kad sensor.
type Sensor struct {
	cfg   Config
	now   func() time.Time
	guard *scope.Guard
	pub   bus.Publisher
	log   *slog.Logger
	lim   *netlimit.Limiter
	dial  func(ctx context.Context, network, address string) (net.Conn, error)
	// conns are the local ends of the connections dial made (self.go).
	conns netlimit.Recent

	mu      sync.Mutex
	watched map[[16]byte]Watched
	order   [][16]byte
	probed  map[probeKey]time.Time
	// probedSwept is when probed was last swept of expired pairs.
	probedSwept time.Time
	emitted     map[string]uint64
	dropped     map[string]uint64
	node        *kad.Node

	queue                                            chan probeJob
	serverAsks, serverLogins, serverErrors, searches atomic.Uint64
	probes, probeFailures                            atomic.Uint64
	keywordSearches, keywordWatched, suspects        atomic.Uint64
}

type probeKey struct {
	addr netip.AddrPort
	hash [16]byte
}

type probeJob struct {
	addr netip.AddrPort
	w    Watched
}

// New returns a sensor; pub receives its observations.
func New(cfg Config, g *scope.Guard, pub bus.Publisher, log *slog.Logger) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if g == nil || pub == nil {
		return nil, errors.New("ed2k sensor: a scope guard and a publisher are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.UserHash == ([16]byte{}) {
		cfg.UserHash = probe.NewUserHash()
	}
	cfg.Listen = cfg.Listen.Unmap()
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	local := &net.TCPAddr{IP: cfg.Listen.AsSlice()}
	s := &Sensor{cfg: cfg, now: now, guard: g, pub: pub, log: log, lim: netlimit.New(cfg.Budget), conns: netlimit.Recent{TTL: connTTL, Max: connMax},
		watched: map[[16]byte]Watched{}, probed: map[probeKey]time.Time{},
		emitted: map[string]uint64{}, dropped: map[string]uint64{},
		queue: make(chan probeJob, max(cfg.ProbeQueue, 1))}
	s.dial = remembering(g.Dialer(&net.Dialer{LocalAddr: local}).DialContext, &s.conns, now)
	return s, nil
}

// Watch adds ed2k hashes to watch; other kinds are refused.
func (s *Sensor) Watch(ws ...Watched) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ws {
		if w.Hash.Kind() != hashkind.ED2K {
			return fmt.Errorf("ed2k sensor: cannot watch a %s hash", w.Hash.Kind())
		}
		k := [16]byte(w.Hash.Bytes())
		if old, ok := s.watched[k]; ok {
			old.Matched = append(old.Matched, w.Matched...)
			if old.Size < 0 {
				old.Size = w.Size
			}
			s.watched[k] = old
			continue
		}
		s.watched[k] = w
		s.order = append(s.order, k)
	}
	return nil
}

func (s *Sensor) watchList() []Watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Watched, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.watched[k])
	}
	return out
}

func (s *Sensor) drop(reason string) { s.dropN(reason, 1) }

// dropN counts n dropped for reason and returns the count so far.
func (s *Sensor) dropN(reason string, n int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped[reason] += uint64(n)
	return s.dropped[reason]
}

// Stats returns the counters.
func (s *Sensor) Stats() Stats {
	st := Stats{ServerAsks: s.serverAsks.Load(), ServerLogins: s.serverLogins.Load(), ServerErrors: s.serverErrors.Load(),
		KadSearches: s.searches.Load(), Probes: s.probes.Load(), ProbeFailures: s.probeFailures.Load(),
		KeywordSearches: s.keywordSearches.Load(), KeywordWatched: s.keywordWatched.Load(), Suspects: s.suspects.Load(),
		Emitted: map[string]uint64{}, Dropped: map[string]uint64{}}
	s.mu.Lock()
	for k, v := range s.emitted {
		st.Emitted[k] = v
	}
	for k, v := range s.dropped {
		st.Dropped[k] = v
	}
	node := s.node
	s.mu.Unlock()
	if node != nil {
		st.Kad = node.Stats()
	}
	return st
}

// Run runs the sensor until ctx ends: one loop per server, the Kad node
// and its searches, and the probe workers, under one errgroup.
func (s *Sensor) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if len(s.cfg.KadBootstrap) > 0 {
		kc := kad.DefaultConfig()
		kc.Listen = netip.AddrPortFrom(s.cfg.Listen, s.cfg.KadPort)
		kc.QueryTimeout, kc.SearchWait, kc.Clock = s.cfg.KadQueryTimeout, s.cfg.KadSearchWait, s.cfg.Clock
		node, err := kad.Start(ctx, kc, s.guard)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.node = node
		s.mu.Unlock()
		defer node.Close()
		g.Go(func() error { return s.runKad(ctx, node) })
	}
	for _, a := range s.cfg.Servers {
		g.Go(func() error { return s.runServer(ctx, a) })
	}
	if s.cfg.Probe {
		for i := 0; i < s.cfg.ProbeWorkers; i++ {
			g.Go(func() error { s.probeWorker(ctx); return nil })
		}
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// sleep waits d or until ctx ends; it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Sensor) runKad(ctx context.Context, node *kad.Node) error {
	for {
		err := node.Bootstrap(ctx, s.cfg.KadBootstrap)
		if err == nil {
			break
		}
		s.log.Warn("kad bootstrap failed; retrying", "err", err)
		if !sleep(ctx, min(s.cfg.SearchEvery, 30*time.Second)) {
			return nil
		}
	}
	sem := make(chan struct{}, s.cfg.KadParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(s.cfg.Keywords) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runKadKeywords(ctx, node)
		}()
	}
	for {
		start := s.now()
		for _, w := range s.watchList() {
			select {
			case <-ctx.Done():
				return nil
			case sem <- struct{}{}:
			}
			s.searches.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.recordKadSources(ctx, w, node.SearchSources(ctx, [16]byte(w.Hash.Bytes()), w.Size))
			}()
		}
		if !sleep(ctx, s.cfg.SearchEvery-s.now().Sub(start)) {
			return nil
		}
	}
}

func (s *Sensor) runServer(ctx context.Context, addr netip.AddrPort) error {
	cfg := server.DefaultConfig()
	cfg.Dial, cfg.UserHash, cfg.AnswerWait, cfg.TranscriptLimit, cfg.Clock = s.dial, s.cfg.UserHash, s.cfg.ServerWait, s.cfg.TranscriptLimit, s.cfg.Clock
	backoff := time.Second
	// When the keywords were last searched on this server: kept across
	// sessions, or a server that ends the session on each search would
	// be logged in to and searched again at once, in a loop.
	var searched time.Time
	for ctx.Err() == nil {
		sess, err := server.Login(ctx, cfg, addr)
		if err != nil {
			s.serverErrors.Add(1)
			s.log.Warn("eD2K server login failed; retrying", "server", addr, "err", err)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, 5*time.Minute)
			continue
		}
		s.serverLogins.Add(1)
		started := s.now()
		err = s.askServer(ctx, sess, &searched)
		sess.Close()
		if err != nil && ctx.Err() == nil {
			s.serverErrors.Add(1)
			s.log.Warn("eD2K server session ended", "server", addr, "err", err)
		}
		// A session that lasted a round's interval is logged in to again
		// at once; one that ended sooner waits as a failed login does, or
		// a server that ends every session would have the sensor log in
		// again and again, in a loop.
		if s.now().Sub(started) >= s.cfg.SearchEvery {
			backoff = time.Second
			continue
		}
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
	return nil
}

// askServer asks sess for the sources of every watched hash each
// SearchEvery and, after a round, searches the keywords if they were not
// searched on this server (*searched) within KeywordEvery.
func (s *Sensor) askServer(ctx context.Context, sess *server.Session, searched *time.Time) error {
	words := keywordWords(s.cfg.Keywords)
	for {
		start := s.now()
		for _, w := range s.watchList() {
			if ctx.Err() != nil {
				return nil
			}
			found, err := sess.Sources(ctx, [16]byte(w.Hash.Bytes()), w.Size)
			if found.Asked {
				s.serverAsks.Add(1)
			}
			s.notTaken(found.Late, found.Unasked, err)
			if err != nil {
				return err
			}
			s.recordServer(ctx, sess, w, found)
		}
		if len(words) > 0 && (searched.IsZero() || s.now().Sub(*searched) >= s.cfg.KeywordEvery) {
			*searched = s.now()
			if err := s.searchServer(ctx, sess, words); err != nil {
				return err
			}
		}
		if !sleep(ctx, s.cfg.SearchEvery-s.now().Sub(start)) {
			return nil
		}
	}
}

// notTaken counts a server's answers read and not taken, and a request
// not sent: late ones (server_late_answer: they came before the request
// was sent), ones about something else than what was awaited
// (server_answer_unasked), and a request left unsent because the server
// did not go quiet before it (server_not_quiet; the session ends).
func (s *Sensor) notTaken(late, unasked int, err error) {
	if late > 0 {
		s.dropN("server_late_answer", late)
	}
	if unasked > 0 {
		s.dropN("server_answer_unasked", unasked)
	}
	if errors.Is(err, server.ErrNotQuiet) {
		s.drop("server_not_quiet")
	}
}

// recordServer emits one ed2k_server_sources observation per source with
// a high id (a low id names no address) and a port (0 names no endpoint)
// and queues it for a probe. The server's word is a third party's: marked
// third_party, never first-hand.
func (s *Sensor) recordServer(ctx context.Context, sess *server.Session, w Watched, f server.Found) {
	if f.NotUnpacked > 0 {
		s.dropN("server_packet_not_unpacked", f.NotUnpacked)
	}
	if !f.Kept {
		if len(f.Sources) > 0 {
			s.drop("answer_not_kept")
		}
		return
	}
	sources := f.Sources
	if m := s.cfg.MaxSourcesPerAnswer; m > 0 && len(sources) > m {
		s.dropN("sources_over_cap", len(sources)-m)
		sources = sources[:m]
	}
	listed := make(map[netip.AddrPort]bool, len(sources))
	for _, src := range sources {
		a, ok := src.Addr()
		if !ok {
			s.drop("low_id")
			continue
		}
		if a.Port() == 0 {
			// No client listens on port 0 and no probe reaches it; it is
			// the port the sensor gives itself in its login and hello,
			// so a server listing its logged-in clients names the
			// sensor so. A Kad entry without a port is dropped alike.
			s.drop("server_source_without_port")
			continue
		}
		if listed[a] {
			continue // listed twice in one answer: one claim
		}
		listed[a] = true
		o := observe.Observation{
			Network: observe.NetED2K, Method: observe.MethodED2KServerSources, Time: f.At,
			Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
			Endpoint:   observe.Endpoint{IP: a.Addr(), Port: a.Port(), Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: f.Transcript,
		}
		o.Mark(observe.MarkThirdParty)
		if s.emit(ctx, o) {
			s.enqueue(a, w)
		}
	}
}

// maxKadSourcesPerNode bounds the sources of one node that one search
// records and probes: eMule and aMule end a source search at 300 answers
// (SEARCHFILE_TOTAL). A node that names more floods: each record carries
// its answer as the transcript.
const maxKadSourcesPerNode = 300

// recordKadSources records what one source search found: each source a
// node named once (a node that repeats one says nothing more), at most
// maxKadSourcesPerNode of one node, the rest counted
// (kad_sources_over_cap).
func (s *Sensor) recordKadSources(ctx context.Context, w Watched, found []kad.Found) {
	type pair struct{ node, source netip.AddrPort }
	seen := map[pair]bool{}
	perNode := map[netip.AddrPort]int{}
	for _, f := range found {
		p := pair{f.Node.Addr, f.Source.Addr}
		if seen[p] {
			continue
		}
		seen[p] = true
		if perNode[p.node]++; perNode[p.node] > maxKadSourcesPerNode {
			s.drop("kad_sources_over_cap")
			continue
		}
		s.recordKad(ctx, w, f)
	}
}

// recordKad emits a kad_sources observation for a source a Kad node named:
// a third party's claim in one unauthenticated datagram (third_party,
// spoofable_source). Its transcript is the search and the answer, with the
// node as peer; an answer not kept whole in it is not recorded
// (kad_answer_not_kept), as a server's is not (answer_not_kept). The user
// hash the entry carries is the node's word, not the client's: it is in
// the transcript, never in the record's client.
func (s *Sensor) recordKad(ctx context.Context, w Watched, f kad.Found) {
	if !f.Source.Addr.Addr().IsValid() || f.Source.Addr.Port() == 0 {
		s.drop("kad_source_without_address")
		return
	}
	tr, kept := record.One(s.cfg.TranscriptLimit, f.Node.Addr, f.Reply.SentAt, f.Reply.Sent, f.Reply.At, f.Reply.Raw)
	if !kept {
		// The answer does not fit whole in the transcript (a datagram
		// near 64 KiB): the bytes that name the source may be left out,
		// and nothing is taken from bytes a transcript does not hold.
		s.drop("kad_answer_not_kept")
		return
	}
	o := observe.Observation{
		Network: observe.NetKad, Method: observe.MethodKadSources, Time: f.Reply.At.UTC(),
		Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
		Endpoint:   observe.Endpoint{IP: f.Source.Addr.Addr(), Port: f.Source.Addr.Port(), Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Transcript: tr,
	}
	o.Mark(observe.MarkThirdParty)
	o.Mark(observe.MarkSpoofableSource)
	if s.emit(ctx, o) && f.Source.Reachable() {
		s.enqueue(f.Source.Addr, w)
	}
}

// enqueue queues a probe of addr for w unless it was probed lately.
func (s *Sensor) enqueue(addr netip.AddrPort, w Watched) {
	if !s.cfg.Probe {
		return
	}
	k := probeKey{addr, [16]byte(w.Hash.Bytes())}
	now := s.now()
	s.mu.Lock()
	if last, ok := s.probed[k]; ok && now.Sub(last) < s.cfg.ReprobeAfter {
		s.mu.Unlock()
		return
	}
	if m := s.cfg.MaxProbed; m > 0 && len(s.probed) >= m {
		// Sweep the expired pairs at most once a second: a table full of
		// fresh pairs must not cost a scan per source.
		if now.Sub(s.probedSwept) >= time.Second {
			s.probedSwept = now
			for pk, t := range s.probed {
				if now.Sub(t) >= s.cfg.ReprobeAfter {
					delete(s.probed, pk)
				}
			}
		}
		if len(s.probed) >= m {
			s.mu.Unlock()
			s.drop("probe_table_full")
			return
		}
	}
	s.probed[k] = now
	s.mu.Unlock()
	select {
	case s.queue <- probeJob{addr, w}:
	default:
		s.drop("queue_full")
		s.mu.Lock()
		delete(s.probed, k)
		s.mu.Unlock()
	}
}

// probeConfig is how the sensor's probes are made.
func (s *Sensor) probeConfig() probe.Config {
	pc := probe.DefaultConfig()
	pc.Dial, pc.UserHash, pc.Timeout, pc.Verify, pc.TranscriptLimit, pc.Clock =
		s.dial, s.cfg.UserHash, s.cfg.ProbeTimeout, s.cfg.Verify, s.cfg.TranscriptLimit, s.cfg.Clock
	return pc
}

func (s *Sensor) probeWorker(ctx context.Context) {
	pc := s.probeConfig()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.queue:
			s.probe(ctx, pc, j)
		}
	}
}

func (s *Sensor) probe(ctx context.Context, pc probe.Config, j probeJob) {
	if err := s.lim.Acquire(ctx); err != nil {
		return
	}
	defer s.lim.Release()
	if !s.lim.AllowAddr(j.addr.Addr(), s.now()) {
		// Not probed: forgotten, so that the next answer naming the
		// source queues it again rather than ReprobeAfter later.
		s.drop("address_budget")
		s.mu.Lock()
		delete(s.probed, probeKey{j.addr, [16]byte(j.w.Hash.Bytes())})
		s.mu.Unlock()
		return
	}
	s.probes.Add(1)
	res, tr, err := probe.Probe(ctx, pc, probe.Target{Addr: j.addr, Hash: [16]byte(j.w.Hash.Bytes()), Size: j.w.Size})
	switch {
	case errors.Is(err, probe.ErrWrongFile):
		s.drop("wrong_file")
		return
	case errors.Is(err, scope.ErrOutOfScope):
		s.drop("out_of_scope")
		return
	case err != nil:
		s.probeFailures.Add(1)
	}
	if res == nil || !res.Acknowledged() {
		if res != nil {
			s.drop("not_acknowledged")
		}
		return
	}
	pos, marks := res.Possession()
	o := observe.Observation{
		Network: observe.NetED2K, Method: observe.MethodPeerProbe, Time: res.Connected,
		Item:       observe.Item{Hash: j.w.Hash, Matched: j.w.Matched},
		Endpoint:   observe.Endpoint{IP: j.addr.Addr(), Port: j.addr.Port(), Transport: "tcp", Local: res.Local},
		Client:     observe.Client{Name: res.Client.Name, Version: res.Client.Version, ListenPort: res.Client.ListenPort},
		Possession: pos,
		Transcript: tr,
	}
	if res.Hello.UserHash != s.cfg.UserHash {
		// The sensor's own hash, echoed by a client that mirrors the
		// hello it was sent, names the sensor: every such mirror would
		// carry it, and the user hash link would join them.
		o.Client.UserHash = append([]byte(nil), res.Hello.UserHash[:]...)
	}
	for _, m := range marks {
		o.Mark(m)
	}
	s.emit(ctx, o)
}

// emit completes and publishes o unless it must not leave the sensor: the
// sensor's own address, one of the deployment's own (Config.Own), or a
// non-public address a third party named
// outside lab scope (in lab scope it is kept, marked non_public_address).
func (s *Sensor) emit(ctx context.Context, o observe.Observation) bool {
	ep := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
	if s.self(ep) {
		s.drop("self")
		return false
	}
	if s.cfg.Own.Contains(ep) {
		// A fellow sensor of the deployment: a server or a Kad node that
		// names it, or a source list that does, names no suspect.
		s.drop("deployment_address")
		return false
	}
	if !o.FirstHand() {
		if class := nonPublic(o.Endpoint.IP); class != "" {
			if s.guard.Mode() != scope.ModeLab {
				s.drop("non_public_" + class)
				return false
			}
			o.Mark(observe.MarkNonPublicAddress)
		}
	}
	for _, m := range record.Marks(o.Transcript.Bytes) {
		o.Mark(m)
	}
	if o.Time.IsZero() {
		o.Time = s.now().UTC()
	}
	o.ID = observe.NewID(o.Time)
	o.Sensor = observe.Sensor{ID: s.cfg.ID, Version: s.cfg.Version, Vantage: s.cfg.Listen.String(),
		Commit: s.cfg.Commit, Modified: s.cfg.Modified, Config: s.cfg.ConfigSHA256}
	s.cfg.TimeSync.Stamp(&o)
	if err := s.pub.Publish(context.WithoutCancel(ctx), o); err != nil {
		// Logged sampled, at the 1st, 2nd, 4th, 8th... failure: a full
		// sensor queue fails every publish, and must not flood the log.
		if n := s.dropN("publish_failed", 1); n&(n-1) == 0 {
			s.log.Error("publishing observation", "method", o.Method, "err", err, "failed_so_far", n)
		}
		return false
	}
	s.mu.Lock()
	s.emitted[o.Method]++
	s.mu.Unlock()
	return true
}

// self reports whether ep is the sensor itself. Outside lab scope that is
// any port of its listen address: a server or Kad node that names the
// sensor's address, with whatever port, names no one else (the sensor
// accepts no eD2K connections, so no port of its is a client). In lab
// scope, where lab clients share the loopback address, it is the Kad
// node's own address and port. In every scope it is also the local end
// of every connection the sensor made within the hour (self.go).
func (s *Sensor) self(ep netip.AddrPort) bool {
	if s.guard.Mode() != scope.ModeLab && ep.Addr().Unmap() == s.cfg.Listen.Unmap() {
		return true
	}
	if s.now != nil && s.conns.Has(ep, s.now()) {
		return true
	}
	s.mu.Lock()
	node := s.node
	s.mu.Unlock()
	return node != nil && ep == node.Addr()
}

// nonPublic names the class of an address that names no subscriber on
// its own, or "": the same classes as the BitTorrent sensor's
// (scope.NonPublicClass).
func nonPublic(a netip.Addr) string { return scope.NonPublicClass(a) }
