package evidence

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// GateConfig sets what a Gate trusts and how long it waits.
type GateConfig struct {
	// Keys, if set, are the only sensor keys trusted (ed25519 public
	// keys, 32 bytes each): an observation chained under any other key
	// (an unknown key, or one rotated out and removed from the list)
	// never counts as sensor evidence. Nil (and no Trust) trusts any key
	// whose signature checks.
	Keys [][]byte
	// Sensors binds keys to the sensor names they may sign for (a key's
	// 32 bytes as a string → names): an observation chained under a key
	// listed here whose sensor name (observe.Sensor.ID) is none of the
	// key's is failed as one under a key not trusted, the failure naming
	// both. A key not listed signs for any name (a key given without a
	// name: a line of --sensor-keys without a note, a key folder without
	// sensor.names).
	Sensors map[string][]string
	// Trust, if set, is asked about a key not in Keys, or bound to other
	// sensors than the one an observation names, before an observation
	// chained under it is failed; a key it accepts is then trusted like
	// one of Keys, bound to the names it gives (nil: any name), as
	// Sensors binds ('vigil ingest' reads its key folder again: a sensor
	// rotated its key, or started under a new name, while ingest runs).
	// Setting it, even with Keys nil, makes the gate trust no key but
	// those two give.
	Trust func(key []byte, sensor string) (ok bool, sensors []string)
	// MaxHold is how long an observation waits for a signature of its
	// sensor that covers it (default 30 s; a sensor signs every 250 ms)
	// when what follows it contradicts it: the position after its run
	// is covered here, or stored by another ingest, and does not link to
	// it (a field changed after signing, an observation reordered or
	// replayed). Past that, nothing will cover it.
	MaxHold time.Duration
	// HeadWait is how long an observation waits when nothing contradicts
	// it but nothing covers it yet (default 1 h): the part of a batch
	// that reached the bus before its sensor was cut off from it (the
	// sensor publishes the rest, with the signed head, from its queue
	// when the bus returns), or observations of one batch that the bus
	// handed to several ingests in turn (each covers its part once
	// another stored what follows). Failing them sooner would mark
	// genuine observations signature_failed.
	HeadWait time.Duration
	// AskEvery is how often, past MaxHold, an observation waiting asks
	// Stored what follows its run (default 500 ms): several ingests that
	// got alternate observations of one batch cover it a step at a time,
	// each after the other stored its part.
	AskEvery time.Duration
	// MaxAsks bounds the questions to Stored in one Expire (default 64),
	// taken in turn among the observations waiting: a hub that floods
	// the bus with forged observations, each waiting, must not turn each
	// into a query a second to the store. Runs just below a position the
	// gate covered (the next step of a batch dealt to several ingests in
	// turn) have a budget of MaxAsks more, asked about first.
	MaxAsks int
	// MaxHeld bounds the observations held in all, each copy delivered
	// again counted (default 65,536: each is a message the bus waits to
	// see acknowledged): past it the oldest are released as failed.
	MaxHeld int
	// MaxHeldBytes bounds the bytes of the observations held in all
	// (heldBytes: their transcripts and strings), and of the bus
	// messages they came in, each once (AddRefIn; default 256 MiB): past
	// it, too, the oldest are released as failed. A headless observation
	// under a trusted key waits HeadWait, and a line or a message may be
	// nearly a megabyte: MaxHeld alone let a publisher who knows a
	// sensor's key and name (a bundle's keys.json) make ingest hold
	// 64 GiB.
	MaxHeldBytes int
	// MaxChains bounds the chains remembered with nothing held (default
	// 16,384): past it, those idle longest are forgotten first. Each
	// start of a sensor begins a chain, and without --sensor-keys a hub
	// can begin as many as it likes.
	MaxChains int
	// Stored, if set, gives the chain_prev and the sensor key of the
	// observation stored at seq of chain with its chain fields (covered
	// by a signature when another ingest sharing the bus stored it), or
	// false. Before an observation is failed, the run held before it is
	// linked to what is stored after it under its own chain's key:
	// several ingests that share a bus each get part of a sensor's batch.
	// (The store keeps a chain id under each key it came with: a row
	// under another key says nothing of this chain.)
	Stored func(chain string, seq uint64) (prev, key []byte, found bool)
}

// DefaultGateConfig trusts any key, and holds at most 65,536
// observations and 256 MiB of them, for at most 30 s once what follows them contradicts them
// (1 h while nothing does).
func DefaultGateConfig() GateConfig {
	return GateConfig{MaxHold: 30 * time.Second, HeadWait: time.Hour, AskEvery: 500 * time.Millisecond, MaxAsks: 64, MaxHeld: 1 << 16, MaxHeldBytes: 256 << 20, MaxChains: 1 << 14}
}

// Released is an observation a Gate lets through: Failed is "" when a
// signature of its sensor covers it, else why not (the observation is
// then marked signature_failed and carries no chain fields).
type Released struct {
	Obs    observe.Observation
	Tags   []int // the tags it was added with (one, or more for copies delivered again)
	Failed string
}

// Gate stands between the bus and the store where observations come from
// sensors over a bus another party runs ('vigil ingest'): it holds each
// signed observation until a signature of its sensor covers it, so that
// nothing is stored as sensor evidence that the sensor did not sign. An
// observation is covered when the chain hash after it is a signed head
// whose signature checks under a trusted key, or is the chain_prev of a
// covered observation (the chain hash links it to a later signature);
// one that carries a batch_sig only by that signature checking.
// Arrival order does not matter. What is not covered within MaxHold (a
// field changed after signing, an observation reordered, forged or
// replayed at another place of its chain, a missing neighbour, a key not
// trusted, in evidence form 2 a transcript that is not the one its
// transcript_sha256 names) is released marked observe.MarkSignatureFailed, its chain
// fields dropped: stored, never sensor evidence. Unsigned observations
// pass at once (the caller marks them). Not safe for concurrent use.
type Gate struct {
	cfg    GateConfig
	keys   map[string]bool
	names  map[string][]string // GateConfig.Sensors, and what Trust bound
	chains map[chainID]*gateChain
	swept  time.Time  // when idle chains were last forgotten
	fifo   []*heldObs // in arrival order, for expiry
	held   int
	bytes  int // heldBytes of those held, and their messages' (Message)
	msgs   map[uint64]*gateMsg
	copies int // tags held beyond the first of each observation
	// Checked counts signed heads whose signature checked; Failures
	// holds what did not check since the last TakeFailures.
	Checked  int
	failures []error
	// lastChain is the chain last added to (Gate.chain); covered, cover's
	// scratch.
	lastChain *gateChain
	lent      []*heldObs // held in place since the last Detach (AddRef)
	covered   []*heldObs
}

// chainID names a sensor chain: its key and its id. A chain id is the
// key's: another key's observations under the same id (a hub's own,
// without --sensor-keys) are another chain, and never make the sensor's
// fail.
type chainID struct{ key, id string }

type gateChain struct {
	key      []byte
	id       string
	last     time.Time // when an observation of it was last added
	held     map[uint64][]*heldObs
	authPrev map[uint64][32]byte // seq of a covered observation → its chain_prev
	top      uint64              // the highest seq covered
}

type heldObs struct {
	chain *gateChain
	// o is the observation as added: AddRef's in place until Detach,
	// else the gate's own copy. nil once released (done): what stays in
	// fifo keeps no observation alive.
	o    *observe.Observation
	tags []int
	sh   [32]byte
	// after is the chain hash after it: verify.ChainStep of its
	// chain_prev and sh, computed once when it is held (its chain_prev
	// is 32 bytes by then).
	after [32]byte
	at    time.Time
	done  bool
	size  int        // heldBytes(o), counted in Gate.bytes while held
	msgs  []*gateMsg // the messages it came in (AddRefIn), one a tag at most
	msg1  [1]*gateMsg
	// reported: its bad signature was counted once
	reported bool
	// asked is when the store was last asked what follows its run
	// (GateConfig.Stored); contradicted, that what follows does not link.
	asked        time.Time
	contradicted bool
	// bad: in evidence form 2, its transcript is not the one its
	// transcript_sha256 names (form2Transcript); nothing covers it.
	bad bool
	// tag1 holds tags while there is one (most observations come once),
	// and self is gateChain.held's slice at its seq while it is the only
	// one there: no allocation of their own. Both have room for one
	// only, so that an append makes a new array, never writes in these.
	tag1 [1]int
	self [1]*heldObs
}

// newHeld is a heldObs with one tag.
func newHeld(gc *gateChain, o *observe.Observation, tag int, sh [32]byte, at time.Time, bad bool) *heldObs {
	h := &heldObs{chain: gc, o: o, sh: sh, after: verify.ChainStep(o.Chain.Prev, sh[:]), at: at, bad: bad, contradicted: bad, size: heldBytes(o)}
	h.tag1[0] = tag
	h.tags = h.tag1[:1:1]
	return h
}

// hold adds h to the observations held at its seq.
func (gc *gateChain) hold(k uint64, h *heldObs) {
	if hs := gc.held[k]; len(hs) > 0 {
		gc.held[k] = append(hs[:len(hs):len(hs)], h)
		return
	}
	h.self[0] = h
	gc.held[k] = h.self[:1:1]
}

// over says that the gate holds more than MaxHeld observations (copies
// counted) or MaxHeldBytes: the oldest go first.
func (g *Gate) over() bool {
	return g.held+g.copies > g.cfg.MaxHeld || g.bytes > g.cfg.MaxHeldBytes
}

// heldBytes is what holding o costs, about: a fixed part for the
// structure and the bytes of each field whose length a publisher
// chooses.
func heldBytes(o *observe.Observation) int {
	n := 512 + len(o.ID) + len(o.Sensor.ID) + len(o.Sensor.Version) + len(o.Sensor.Vantage) + len(o.Sensor.Commit) +
		len(o.Sensor.Config) + len(o.Network) + len(o.Method) + len(o.ClockSource) + len(o.Endpoint.Transport) +
		len(o.Client.PeerID) + len(o.Client.Name) + len(o.Client.Version) + len(o.Client.NodeID) + len(o.Client.UserHash) +
		len(o.Client.GUID) + len(o.Transcript.Bytes) + len(o.Transcript.Ref) + len(o.Transcript.SHA256) +
		len(o.Place.Country) + len(o.Place.City) + len(o.Place.Org) + len(o.Place.DB) + len(o.Jurisdiction.Agency) +
		len(o.Jurisdiction.Rule) + len(o.Chain.Key) + len(o.Chain.ID) + len(o.Chain.Prev) + len(o.Chain.BatchSig)
	for _, m := range o.Marks {
		n += 16 + len(m)
	}
	for _, m := range o.Item.Matched {
		n += 32 + len(m.List) + len(m.Category)
	}
	for _, d := range o.Place.Subdivisions {
		n += 16 + len(d)
	}
	return n
}

// authWindow is how many covered positions of a chain a Gate remembers,
// so that an observation delivered late still links to them.
const authWindow = 8192

// NewGate returns a Gate.
func NewGate(cfg GateConfig) *Gate {
	d := DefaultGateConfig()
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = d.MaxHold
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = d.MaxHeld
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = d.MaxHeldBytes
	}
	if cfg.HeadWait <= 0 {
		cfg.HeadWait = d.HeadWait
	}
	cfg.HeadWait = max(cfg.HeadWait, cfg.MaxHold)
	if cfg.AskEvery <= 0 {
		cfg.AskEvery = d.AskEvery
	}
	if cfg.MaxAsks <= 0 {
		cfg.MaxAsks = d.MaxAsks
	}
	if cfg.MaxChains <= 0 {
		cfg.MaxChains = d.MaxChains
	}
	g := &Gate{cfg: cfg, chains: map[chainID]*gateChain{}}
	if cfg.Keys != nil || cfg.Trust != nil {
		g.keys = map[string]bool{}
		for _, k := range cfg.Keys {
			g.keys[string(k)] = true
		}
	}
	if cfg.Sensors != nil || cfg.Trust != nil {
		g.names = map[string][]string{}
		for k, ns := range cfg.Sensors {
			g.names[k] = slices.Clone(ns)
		}
	}
	return g
}

// Drop forgets every observation held (they were handed back to the bus,
// which delivers them again); what the gate learnt of covered positions
// stays, so that those delivered again link as before.
func (g *Gate) Drop() {
	for _, gc := range g.chains {
		clear(gc.held)
	}
	g.fifo, g.held, g.copies, g.bytes = nil, 0, 0, 0
	clear(g.msgs)
	clear(g.lent)
	g.lent = g.lent[:0]
}

// Held is the number of observations waiting for a signature.
func (g *Gate) Held() int { return g.held }

// Chains is the number of sensor chains the gate remembers.
func (g *Gate) Chains() int { return len(g.chains) }

// TakeFailures returns what did not check since the last call (bad
// signatures, untrusted keys, observations released uncovered).
func (g *Gate) TakeFailures() []error {
	f := g.failures
	g.failures = nil
	return f
}

// Add takes one observation as it came off the bus, with tag (the
// caller's handle, returned with it), and returns what it releases now:
// o itself when unsigned or failed at once, and whatever a signature in o
// covers, in chain order.
func (g *Gate) Add(o observe.Observation, tag int, now time.Time) []Released {
	return g.AddTo(nil, o, tag, now)
}

// AddTo is Add, appending what it releases to out (one copy of each, and
// no slice of its own for a signed head's batch).
func (g *Gate) AddTo(out []Released, o observe.Observation, tag int, now time.Time) []Released {
	if !o.Signed() {
		return append(out, Released{Obs: o, Tags: []int{tag}})
	}
	c := new(observe.Observation)
	*c = o
	return g.add(out, c, false, tag, now, nil)
}

// AddRef is AddTo without a copy where it can: the gate holds *o itself
// (and may change it: it remembers the sensor hash in it) until it
// releases it (a copy in Released) or until the next Detach, which
// copies what it still holds. The caller must neither change nor reuse
// *o until the next Detach. ingest adds a fetched batch's observations
// in place, and detaches after the batch: most are released within it
// (a sensor's batch in one fetch), saving the gate a copy of each (about
// 1 KB) for the garbage collector; what stays held is copied, as AddTo
// does, so that the gate never keeps a whole fetched batch alive for
// one observation.
func (g *Gate) AddRef(out []Released, o *observe.Observation, tag int, now time.Time) []Released {
	return g.add(out, o, true, tag, now, nil)
}

// Message is the bus message an observation came in: a bus that keeps a
// message, whole, until every observation of it is committed
// (JetStream's) keeps it as long as the gate holds one of them, and a
// message may be nearly a megabyte for one small observation held. Its
// Bytes count towards MaxHeldBytes once while any observation of it is
// held. Key names it among the messages held.
type Message struct {
	Key   uint64
	Bytes int
}

// AddRefIn is AddRef of an observation that came in message m.
func (g *Gate) AddRefIn(out []Released, o *observe.Observation, tag int, now time.Time, m Message) []Released {
	return g.add(out, o, true, tag, now, &m)
}

// gateMsg is a message observations held came in (Message), with how
// many of them are held.
type gateMsg struct {
	key         uint64
	bytes, refs int
}

// ref counts one more observation held of m (nil: none named).
func (g *Gate) ref(m *Message) *gateMsg {
	if m == nil || m.Bytes <= 0 {
		return nil
	}
	gm := g.msgs[m.Key]
	if gm == nil {
		if g.msgs == nil {
			g.msgs = map[uint64]*gateMsg{}
		}
		gm = &gateMsg{key: m.Key, bytes: m.Bytes}
		g.msgs[m.Key] = gm
		g.bytes += m.Bytes
	}
	gm.refs++
	return gm
}

// release counts h no longer held: its bytes, and those of each message
// it came in that no other observation held came in.
func (g *Gate) release(h *heldObs) {
	g.held--
	g.copies -= len(h.tags) - 1
	g.bytes -= h.size
	for _, gm := range h.msgs {
		if gm.refs--; gm.refs == 0 {
			g.bytes -= gm.bytes
			delete(g.msgs, gm.key)
		}
	}
	h.msgs, h.msg1[0] = nil, nil
}

// Detach copies each observation AddRef holds in place (since the last
// Detach) that the gate still holds: the caller's observations are its
// own again.
func (g *Gate) Detach() {
	for i, h := range g.lent {
		if !h.done {
			c := new(observe.Observation)
			*c = *h.o
			h.o = c
		}
		g.lent[i] = nil
	}
	g.lent = g.lent[:0]
}

// add is AddRef; lent says that *o is the caller's (Detach copies it if
// still held).
func (g *Gate) add(out []Released, o *observe.Observation, lent bool, tag int, now time.Time, m *Message) []Released {
	if !o.Signed() {
		return append(out, Released{Obs: *o, Tags: []int{tag}})
	}
	if ok, bound := g.trusts(o.Chain.Key, o.Sensor.ID); !ok && bound != nil {
		g.failures = append(g.failures, fmt.Errorf("observation %s: chain %s is signed by sensor key %x, which is trusted for sensor %s only, but the observation names sensor %q", o.ID, o.Chain.ID, o.Chain.Key, quoteNames(bound), o.Sensor.ID))
		return append(out, failed(*o, []int{tag}, fmt.Sprintf("its sensor key is trusted for sensor %s only, not for sensor %q, which it names", quoteNames(bound), o.Sensor.ID)))
	} else if !ok {
		g.failures = append(g.failures, fmt.Errorf("observation %s: chain %s is signed by sensor key %x, which is not among the trusted keys", o.ID, o.Chain.ID, o.Chain.Key))
		return append(out, failed(*o, []int{tag}, "its sensor key is not among the keys trusted (unknown, or rotated out)"))
	}
	// A key that is not an ed25519 public key (any hex decodes) would
	// make ed25519.Verify panic: it can sign nothing. A batch_sig that is
	// not an ed25519 signature can check nothing. Both are refused before
	// the gate remembers a chain for them.
	sh, err := o.SensorHash()
	if err != nil || len(o.Chain.Key) != ed25519.PublicKeySize || len(o.Chain.Prev) != 32 || o.Chain.Seq == 0 ||
		(len(o.Chain.BatchSig) != 0 && len(o.Chain.BatchSig) != ed25519.SignatureSize) {
		return append(out, failed(*o, []int{tag}, "its chain fields or sensor hash cannot be read"))
	}
	gc := g.chain(o.Chain.Key, o.Chain.ID)
	gc.last = now
	// In evidence form 2 the sensor hash covers the transcript only
	// through transcript_sha256: bytes that are not the ones it names (a
	// hub swapped or dropped them) leave the signature good. Such a copy
	// is held as one that does not hash to what was signed: never
	// covered, never taken for the sensor's copy delivered again, failed
	// once MaxHold has passed.
	var bad error
	if o.Chain.Form == observe.Form2 {
		bad = form2Transcript(o)
	}
	// What the gate releases carries the sensor hash it computed (and, in
	// form 2, that its transcript is the one named): the store's leaf and
	// ingest's check use them, unless a field they cover changed since
	// (observe.KnownSensorHash).
	if bad == nil && o.Chain.Form == observe.Form2 {
		o.RememberSensorHashAndTranscript(sh)
	} else {
		o.RememberSensorHash(sh)
	}
	k := o.Chain.Seq
	for _, h := range gc.held[k] {
		if h.sh == sh && h.bad == (bad != nil) && bytes.Equal(h.o.Chain.Prev, o.Chain.Prev) && bytes.Equal(h.o.Chain.BatchSig, o.Chain.BatchSig) {
			h.tags = append(h.tags, tag) // the same, delivered again
			g.copies++
			if gm := g.ref(m); gm != nil {
				h.msgs = append(h.msgs, gm)
			}
			return out
		}
	}
	h := newHeld(gc, o, tag, sh, now, bad != nil)
	if gm := g.ref(m); gm != nil {
		h.msg1[0] = gm // no allocation of its own, as tag1
		h.msgs = h.msg1[:1:1]
	}
	if bad != nil {
		g.failures = append(g.failures, fmt.Errorf("observation %s (chain %s, seq %d, evidence form 2): %w", o.ID, o.Chain.ID, k, bad))
	}
	gc.hold(k, h)
	if lent {
		g.lent = append(g.lent, h)
	}
	g.fifo = append(g.fifo, h)
	g.held++
	g.bytes += h.size
	return g.cover(out, gc, o.Chain.ID, k)
}

// chain is the chain of key and id, begun if new. The last one asked is
// kept aside: a sensor's observations come a batch at a time.
func (g *Gate) chain(key []byte, id string) *gateChain {
	if gc := g.lastChain; gc != nil && gc.id == id && bytes.Equal(gc.key, key) {
		return gc
	}
	cid := chainID{string(key), id}
	gc := g.chains[cid]
	if gc == nil {
		// The key's own bytes: a decoded line's key shares one array
		// with its chain_prev and batch_sig (observe), and a chain is
		// remembered up to HeadWait after its observations are gone (a
		// hub's batch_sig of half a megabyte, a chain a line).
		gc = &gateChain{key: bytes.Clone(key), id: id, held: map[uint64][]*heldObs{}, authPrev: map[uint64][32]byte{}}
		g.chains[cid] = gc
	}
	g.lastChain = gc
	return gc
}

// cover releases what is covered at k of the chain, and before it,
// appending it to out in chain order.
func (g *Gate) cover(out []Released, gc *gateChain, chain string, k uint64) []Released {
	run := g.covered[:0] // from k down
	for k > 0 {
		var got *heldObs
		for _, h := range gc.held[k] {
			if h.bad {
				continue
			}
			// h.after in place: a copy here escaped to the heap (its
			// slice goes to BatchMessage), two allocations an observation.
			if len(h.o.Chain.BatchSig) > 0 {
				// A batch_sig is covered by no hash (a hub may add or
				// swap one): one that does not check is never released
				// as the sensor's, even where the chain links it to
				// what was covered after it.
				if ed25519.Verify(ed25519.PublicKey(gc.key), verify.BatchMessage(chain, k, h.after[:]), h.o.Chain.BatchSig) {
					g.Checked++
					got = h
					break
				}
				if !h.reported {
					h.reported = true
					g.failures = append(g.failures, fmt.Errorf("chain %s: the batch signed at seq %d does not check (observation %s): a field was changed after the sensor signed it, the chain before it was reordered, the signature was added or swapped on the way, or it is not the key's", chain, k, h.o.ID))
				}
				continue
			}
			if next, ok := gc.authPrev[k+1]; ok && next == h.after {
				got = h
				break
			}
		}
		if got == nil {
			break
		}
		got.done = true
		g.release(got)
		if hs := gc.held[k]; len(hs) == 1 {
			delete(gc.held, k)
		} else {
			gc.held[k] = slices.DeleteFunc(hs, func(h *heldObs) bool { return h == got })
		}
		gc.authPrev[k] = [32]byte(got.o.Chain.Prev)
		if k > gc.top {
			gc.top = k
			if len(gc.authPrev) > 2*authWindow {
				for s := range gc.authPrev {
					if s+authWindow < gc.top {
						delete(gc.authPrev, s)
					}
				}
			}
		}
		run = append(run, got)
		k--
	}
	out = slices.Grow(out, len(run))
	for i := len(run) - 1; i >= 0; i-- {
		out = append(out, Released{Obs: *run[i].o, Tags: run[i].tags})
		run[i].o = nil
		run[i] = nil
	}
	g.covered = run[:0]
	return out
}

// Expire releases, as failed, what has waited longer than MaxHold and
// is contradicted by what follows it, what has waited longer than
// HeadWait, everything with all, and the oldest beyond MaxHeld. Past
// MaxHold, an observation asks Stored every AskEvery whether another
// ingest stored what follows its run, and is covered if that links.
func (g *Gate) Expire(now time.Time, all bool) []Released {
	var out []Released
	// Past MaxHold, neither covered nor contradicted: those not asked
	// this pass first, so that the next pass asks them first.
	var waiting, waitingAsked []*heldObs
	type run struct {
		gc  *gateChain
		end uint64
	}
	asked := map[run]bool{} // the store's answer this pass (contradicted), by run
	prio := 0               // questions asked this pass about frontier runs
	ends := g.runEnds(now, all)
	i := 0
	for ; i < len(g.fifo); i++ {
		h := g.fifo[i]
		if h.done {
			continue
		}
		over := g.over()
		if !all && !over && now.Sub(h.at) < g.cfg.MaxHold {
			break
		}
		askedNow := false
		if g.cfg.Stored != nil && (all || over || now.Sub(h.asked) >= g.cfg.AskEvery) {
			// One question a run and pass: its members share its end.
			r := run{h.chain, ends[h]}
			contradicted, ok := asked[r]
			// A frontier run gets a budget of its own: the rest take
			// their turn within MaxAsks.
			front := !ok && prio < g.cfg.MaxAsks && frontier(h.chain, r.end)
			if front {
				prio++
			}
			if !ok && (front || len(asked)-prio < g.cfg.MaxAsks) {
				askedNow = true
				h.asked = now
				var rel []Released
				rel, contradicted = g.linkStored(h, r.end)
				out = append(out, rel...)
				asked[r] = contradicted
			} else if ok {
				askedNow = true
				h.asked = now
			}
			if h.done {
				continue
			}
			h.contradicted = h.contradicted || contradicted
		}
		_, coveredAfter := h.chain.authPrev[ends[h]+1] // (it did not link to it)
		contradicted := h.contradicted || coveredAfter
		if !contradicted && !all && !over && now.Sub(h.at) < g.cfg.HeadWait {
			if askedNow {
				waitingAsked = append(waitingAsked, h)
			} else {
				waiting = append(waiting, h)
			}
			continue
		}
		h.done = true
		g.release(h)
		gc := h.chain
		k := h.o.Chain.Seq
		gc.held[k] = slices.DeleteFunc(gc.held[k], func(x *heldObs) bool { return x == h })
		if len(gc.held[k]) == 0 {
			delete(gc.held, k)
		}
		why := "no signature of its sensor covers it: what follows it in its chain does not link to it (a field changed after signing, an observation of its chain missing, reordered or replayed)"
		switch {
		case contradicted:
		case over && !all && now.Sub(h.at) < g.cfg.HeadWait:
			why = fmt.Sprintf("no signature of its sensor covered it yet, and the gate held more than it may (%d observations or %d MiB): the oldest waiting go first", g.cfg.MaxHeld, g.cfg.MaxHeldBytes>>20)
		default:
			why = fmt.Sprintf("no signature of its sensor covered it within %s, and nothing after it in its chain came (no signed head)", g.cfg.HeadWait)
		}
		g.failures = append(g.failures, fmt.Errorf("observation %s (chain %s, seq %d): %s", h.o.ID, h.o.Chain.ID, k, why))
		out = append(out, failed(*h.o, h.tags, why))
		h.o = nil
	}
	g.fifo = append(append(waiting, waitingAsked...), g.fifo[i:]...)
	g.forgetIdle(now)
	return out
}

// forgetIdle forgets the chains that hold nothing and had nothing added
// for HeadWait, and, past MaxChains, those idle longest: each is what it
// learnt of covered positions (up to authWindow of them). An observation
// of a forgotten chain that comes later is held as a new one and linked
// through Stored, as another ingest's part of a batch is. Sweeps at most
// every AskEvery, unless past MaxChains.
func (g *Gate) forgetIdle(now time.Time) {
	if len(g.chains) <= g.cfg.MaxChains && now.Sub(g.swept) < g.cfg.AskEvery {
		return
	}
	g.swept = now
	g.lastChain = nil // it may be forgotten
	var idle []chainID
	for id, gc := range g.chains {
		if len(gc.held) > 0 {
			continue
		}
		if now.Sub(gc.last) >= g.cfg.HeadWait {
			delete(g.chains, id)
			continue
		}
		idle = append(idle, id)
	}
	if over := len(g.chains) - g.cfg.MaxChains; over > 0 {
		slices.SortFunc(idle, func(a, b chainID) int { return g.chains[a].last.Compare(g.chains[b].last) })
		for _, id := range idle[:min(over, len(idle))] {
			delete(g.chains, id)
		}
	}
}

// frontierReach is how far above a run frontier looks for a position
// the gate covered.
const frontierReach = 16

// frontier says that the run ending at end is likely to link now: the
// gate covered a position a little above it, and holds nothing between
// them. Another ingest holds that gap (a batch dealt to several ingests
// in turn), links it to the covered position once stored, and stores it:
// this run's next step. Such runs are asked about every pass within a
// budget of their own, so that a batch dealt in turn is covered at a
// step a pass however many other runs wait.
func frontier(gc *gateChain, end uint64) bool {
	for c := end + 2; c <= end+frontierReach; c++ {
		if _, ok := gc.authPrev[c]; ok {
			return true
		}
		if len(gc.held[c]) > 0 {
			return false
		}
	}
	return false
}

// runEnds gives the last seq of the run of held observations from each
// one Expire may look at, as held when the pass starts (the position
// after it is where the run is linked, or contradicted). Each position is
// walked once a pass: walking each run from each of its members would
// make a long run a hostile publisher puts on the bus (consecutive seqs,
// no head, each waiting HeadWait) cost the square of its length a pass.
func (g *Gate) runEnds(now time.Time, all bool) map[*heldObs]uint64 {
	ends := map[*heldObs]uint64{}
	memo := map[*gateChain]map[uint64]uint64{}
	over := g.over()
	var path []uint64
	for _, h := range g.fifo {
		if h.done {
			continue
		}
		if !all && !over && now.Sub(h.at) < g.cfg.MaxHold {
			break
		}
		gc, mm := h.chain, memo[h.chain]
		if mm == nil {
			mm = map[uint64]uint64{}
			memo[gc] = mm
		}
		m := h.o.Chain.Seq
		path = path[:0]
		for {
			if e, ok := mm[m]; ok {
				m = e
				break
			}
			path = append(path, m)
			if len(gc.held[m+1]) == 0 {
				break
			}
			m++
		}
		for _, p := range path {
			mm[p] = m
		}
		ends[h] = m
	}
	return ends
}

// linkStored covers the run of held observations from h's seq up to m,
// the last one held next to it, when the observation stored after that
// run links to it; contradicted says one is stored there that does not.
func (g *Gate) linkStored(h *heldObs, m uint64) (rel []Released, contradicted bool) {
	gc := h.chain
	if len(gc.held[m]) == 0 {
		return nil, false // released earlier in this pass: nothing to ask
	}
	prev, key, ok := g.cfg.Stored(h.o.Chain.ID, m+1)
	if !ok || !bytes.Equal(key, gc.key) {
		// Nothing stored there, or only under another key: a chain id
		// another key signed (a hub's own, without --sensor-keys) never
		// covers this chain's observations.
		return nil, false
	}
	for _, c := range gc.held[m] {
		if !c.bad && bytes.Equal(c.after[:], prev) {
			gc.authPrev[m+1] = c.after
			return g.cover(nil, gc, h.o.Chain.ID, m), false
		}
	}
	return nil, true
}

// trusts says whether key may sign sensor evidence for the sensor named
// sensor: any key when neither Keys nor Trust is set, else a key of Keys
// or one Trust accepted; and, for a key bound to sensor names (Sensors,
// or Trust's answer), only for one of them. bound is what the key is
// bound to when that alone refuses it.
func (g *Gate) trusts(key []byte, sensor string) (ok bool, bound []string) {
	// string(key) inside each index expression: a string of it kept in a
	// variable would be an allocation an observation.
	known := g.keys == nil || g.keys[string(key)]
	if known {
		ns, has := g.names[string(key)]
		if !has || slices.Contains(ns, sensor) {
			return true, nil
		}
		bound = ns
	}
	if g.cfg.Trust == nil {
		return false, bound
	}
	ok, ns := g.cfg.Trust(key, sensor)
	if !ok {
		return false, bound // a key once trusted stays trusted, as bound
	}
	k := string(key)
	g.keys[k] = true
	if ns == nil {
		delete(g.names, k)
		return true, nil
	}
	g.names[k] = slices.Clone(ns)
	if slices.Contains(ns, sensor) {
		return true, nil
	}
	return false, g.names[k]
}

// quoteNames is names quoted, joined with " or ".
func quoteNames(names []string) string {
	if len(names) == 0 {
		return "(no name: its names file is empty)"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " or ")
}

// failed marks o signature_failed and drops its chain fields: it is
// stored, and never counts as sensor evidence.
func failed(o observe.Observation, tags []int, why string) Released {
	o.Chain = observe.Chain{}
	o.Mark(observe.MarkSignatureFailed)
	return Released{Obs: o, Tags: tags, Failed: why}
}

// ParseSensorKeys reads a list of trusted sensor keys: one ed25519 public
// key a line, in hexadecimal (as 'vigil sensor key rotate' prints it and
// a sensor logs it at start), optionally followed by white space and the
// name of the sensor it signs for (its --id, as its observations name
// it: the rest of the line); blank lines and lines starting with # are
// skipped, and so is what follows a # after white space (a comment, as
// files of earlier versions put after a key). A key given with a name is bound to it (sensors: the key's
// bytes as a string → its names): it signs for that sensor only, or for
// each sensor named on another line of the same key (sensors that share
// a key folder share its key). A key given without a name signs for any
// sensor name; a key given both with and without one is refused, as
// ambiguous. name is the file's name, for errors.
func ParseSensorKeys(name string, data []byte) (keys [][]byte, sensors map[string][]string, err error) {
	bare := map[string]int{} // key → line given without a name
	named := map[string]int{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, note := line, ""
		if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
			f, note = line[:i], line[i:]
		}
		for j := 0; j < len(note); j++ {
			if note[j] == '#' && (j == 0 || unicode.IsSpace(rune(note[j-1]))) {
				note = note[:j] // a comment after the key or the name: no name
				break
			}
		}
		note = strings.TrimSpace(note)
		k, err := hex.DecodeString(f)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, nil, fmt.Errorf("%s line %d: %q is not an ed25519 public key in hexadecimal (64 digits)", name, n+1, f)
		}
		ks := string(k)
		if _, dup := bare[ks]; !dup && named[ks] == 0 {
			keys = append(keys, k)
		}
		if note == "" {
			bare[ks] = n + 1
		} else {
			if sensors == nil {
				sensors = map[string][]string{}
			}
			if !slices.Contains(sensors[ks], note) {
				sensors[ks] = append(sensors[ks], note)
			}
			if named[ks] == 0 {
				named[ks] = n + 1
			}
		}
		if b, ok := bare[ks]; ok && named[ks] != 0 {
			return nil, nil, fmt.Errorf("%s line %d: key %s is given without a sensor name on line %d (any sensor) and with one on line %d: give it with a name on each line, one line a sensor it signs for", name, n+1, f, b, named[ks])
		}
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("%s: no sensor key (one hexadecimal public key a line)", name)
	}
	return keys, sensors, nil
}
