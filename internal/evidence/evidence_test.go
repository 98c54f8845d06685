package evidence_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC)

// probe is a synthetic BitTorrent peer probe whose transcript says what
// it claims: a handshake for the item, then a bitfield of have pieces out
// of total.
func probe(r *rand.Rand, i, have, total int) observe.Observation {
	b := func(n int) []byte {
		out := make([]byte, n)
		for j := range out {
			out[j] = byte(r.Uint32())
		}
		return out
	}
	ih := b(20)
	peer := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(1 + i)}), 6881)
	local := netip.MustParseAddrPort("127.0.0.1:40000")
	at := t0.Add(time.Duration(i) * time.Second)
	hs := peerwire.Handshake{InfoHash: [20]byte(ih), PeerID: [20]byte(append([]byte("-TR3000-"), b(12)...))}
	mine := peerwire.Handshake{InfoHash: [20]byte(ih), PeerID: [20]byte(b(20))}
	bf := make([]byte, peerwire.BitfieldLen(total))
	for p := range have {
		peerwire.SetPiece(bf, p)
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(1+len(bf)))
	msg = append(append(msg, byte(peerwire.Bitfield)), bf...)
	tw := transcript.NewWriter(16 << 10)
	tw.StreamSent(at, peer, mine.AppendTo(nil))
	tw.StreamReceived(at.Add(time.Millisecond), peer, append(hs.AppendTo(nil), msg...))
	level := observe.Partial
	if have == total {
		level = observe.Complete
	}
	return observe.Observation{
		ID:          observe.NewID(at),
		Sensor:      observe.Sensor{ID: "bt-lab-1", Version: "0.1.0", Vantage: "127.0.0.1:6881"},
		Network:     observe.NetBitTorrent,
		Method:      observe.MethodPeerProbe,
		Time:        at,
		ClockSource: "none",
		Item:        observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, ih), Matched: []observe.Match{{List: "lab-list", Category: "1"}}},
		Endpoint:    observe.Endpoint{IP: peer.Addr(), Port: peer.Port(), Transport: "tcp", Local: local},
		Client:      observe.Client{PeerID: hs.PeerID[:], Name: "Transmission", Version: "3.00"},
		Possession:  observe.Possession{Level: level, PiecesHave: have, PiecesTotal: total},
		Transcript:  observe.Transcript{Bytes: tw.Bytes()},
		Place: observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "Yvelines"}, City: "Versailles",
			Lat: 48.8049, Lon: 2.1204, ASN: 64512, Org: "Lab \"Telecom\" SA", DB: "lab-city.mmdb",
			DBBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Jurisdiction: observe.Jurisdiction{Agency: "fr-srpj-versailles", Rule: "subdivision FR/78 (france.yaml:12)"},
	}
}

// announced is a third party's claim with no transcript.
func announced(i int) observe.Observation {
	at := t0.Add(time.Duration(i)*time.Second + time.Millisecond)
	return observe.Observation{
		ID:         observe.NewID(at),
		Sensor:     observe.Sensor{ID: "bt-lab-1"},
		Network:    observe.NetBitTorrent,
		Method:     observe.MethodDHTGetPeers,
		Time:       at,
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH2, make([]byte, 32))},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("::1"), Port: 6881, Transport: "udp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Marks:      []string{observe.MarkThirdParty},
	}
}

type fixture struct {
	st  *sqlite.Store
	key ed25519.PrivateKey
	ids []string
}

func newFixture(t testing.TB, obs []observe.Observation) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	for _, o := range obs {
		f.ids = append(f.ids, o.ID)
	}
	return f
}

func (f *fixture) checkpoint(t testing.TB) evidence.Checkpoint {
	t.Helper()
	c, err := evidence.MakeCheckpoint(context.Background(), f.st, f.key, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) bundle(t testing.TB, ids []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := evidence.WriteBundle(context.Background(), &buf, f.st, f.key, evidence.Export{
		Target: "T-LAB-1", IDs: ids, Now: t0.Add(2 * time.Hour),
		Watch: []verify.WatchEntry{{ItemKind: "btih", Item: "00", List: "lab-list", Version: "1", Category: "1"}},
		Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func check(t testing.TB, b []byte) *verify.Report {
	t.Helper()
	rep, err := verify.Verify(bytes.NewReader(b), int64(len(b)), verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func sample(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(1, 2))
	var obs []observe.Observation
	for i := range n {
		if i%3 == 2 {
			obs = append(obs, announced(i))
			continue
		}
		total := 10 + i
		obs = append(obs, probe(r, i, min(total, 3+i%total), total))
	}
	return obs
}

func TestBundleVerifies(t *testing.T) {
	f := newFixture(t, sample(9))
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids[2:7]))
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Observations != 5 || rep.Proofs != 5 || rep.Transcripts != 3 || rep.Target != "T-LAB-1" {
		t.Fatalf("report %+v", rep)
	}
}

func TestExportNeedsACheckpointThatCoversIt(t *testing.T) {
	f := newFixture(t, sample(4))
	var buf bytes.Buffer
	err := evidence.WriteBundle(context.Background(), &buf, f.st, f.key, evidence.Export{Target: "T", IDs: f.ids})
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("no checkpoint: err %v", err)
	}
	f.checkpoint(t)
	more := sample(6)[4:]
	if err := f.st.InsertObservations(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	err = evidence.WriteBundle(context.Background(), &buf, f.st, f.key, evidence.Export{Target: "T", IDs: []string{more[0].ID}})
	if err == nil || !strings.Contains(err.Error(), "latest checkpoint has 4 leaves") {
		t.Fatalf("observation after the checkpoint: err %v", err)
	}
}

// TestRedeliveryAppendsNoLeaf: a bus that hands a stored batch over again
// must not grow the log.
func TestRedeliveryAppendsNoLeaf(t *testing.T) {
	obs := sample(3)
	f := newFixture(t, obs)
	if err := f.st.InsertObservations(context.Background(), slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	n, err := f.st.LogSize(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("LogSize = %d, %v; want 3", n, err)
	}
}

// unzip returns the bundle's files in order.
func unzip(t testing.TB, b []byte) ([]string, map[string][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		names = append(names, f.Name)
		files[f.Name] = data
	}
	return names, files
}

func rezip(t testing.TB, names []string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func failsOn(t *testing.T, what string, rep *verify.Report, file string) {
	t.Helper()
	if rep.OK() {
		t.Errorf("%s: verified", what)
		return
	}
	for _, p := range rep.Problems {
		if p.File == file {
			return
		}
	}
	t.Errorf("%s: no problem names %s: %v", what, file, rep.Problems)
}

// TestEveryChangedByteOfEveryFileFails flips one byte at several places
// of every file: the verifier fails and names the file.
func TestEveryChangedByteOfEveryFileFails(t *testing.T) {
	f := newFixture(t, signed(t, sample(6)))
	f.checkpoint(t)
	orig := f.bundle(t, f.ids)
	names, files := unzip(t, orig)
	for _, name := range names {
		data := files[name]
		for _, at := range []int{0, len(data) / 2, len(data) - 2} {
			changed := bytes.Clone(data)
			changed[at] ^= 0x01
			c := maps(files)
			c[name] = changed
			failsOn(t, fmt.Sprintf("%s byte %d", name, at), check(t, rezip(t, names, c)), name)
		}
		c := maps(files)
		delete(c, name)
		rest := without(names, name)
		if rep := check(t, rezip(t, rest, c)); rep.OK() {
			t.Errorf("without %s: verified", name)
		}
	}
	c := maps(files)
	c["extra.txt"] = []byte("x")
	failsOn(t, "an extra file", check(t, rezip(t, append(names, "extra.txt"), c)), "extra.txt")
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func without(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// resign rewrites the manifest over files as they are, signed with key:
// what someone holding the log's key (but no sensor's, and not the
// witness) could do.
func resign(t testing.TB, key ed25519.PrivateKey, names []string, files map[string][]byte) []byte {
	t.Helper()
	var m bytes.Buffer
	fmt.Fprintf(&m, "%s\ntarget T-LAB-1\ncreated 2026-11-23T15:34:13Z\n", verify.ManifestOrigin)
	for _, n := range names {
		if n != verify.FileManifest {
			fmt.Fprintf(&m, "%x  %s\n", sha256sum(files[n]), n)
		}
	}
	s, err := evidence.Signer(key)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: m.String()}, s)
	if err != nil {
		t.Fatal(err)
	}
	c := maps(files)
	c[verify.FileManifest] = signed
	return rezip(t, names, c)
}

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

// changed returns v changed: another value of the same JSON type where
// there is one.
func changed(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "x"
		}
		return x[:len(x)-1] + string(rune(x[len(x)-1])^1)
	case json.Number:
		if x == "0" {
			return json.Number("1")
		}
		return json.Number(x.String() + "1")
	case bool:
		return !x
	case []any:
		if len(x) == 0 {
			return []any{"x"}
		}
		y := slices.Clone(x)
		y[0] = changed(y[0])
		return y
	case map[string]any: // the build: each member changed
		y := make(map[string]any, len(x))
		for k, v := range x {
			y[k] = changed(v)
		}
		return y
	case nil:
		return json.Number("1")
	}
	panic(fmt.Sprintf("%T", v))
}

// TestEveryChangedFieldFails changes each field of each observation in
// turn and signs the manifest again with the log's key: the inclusion
// proof (and, for a transcript, its checks) still catches it, naming the
// observation's line.
func TestEveryChangedFieldFails(t *testing.T) {
	f := newFixture(t, signed(t, sample(3)))
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, f.ids))
	if rep := check(t, resign(t, f.key, names, files)); !rep.OK() {
		t.Fatalf("re-signed unchanged bundle: %v", rep.Problems)
	}
	lines := bytes.Split(bytes.TrimSuffix(files[verify.FileObservations], []byte("\n")), []byte("\n"))
	for li, line := range lines {
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			mm := maps2(m)
			mm[k] = changed(v)
			nl, err := json.Marshal(mm)
			if err != nil {
				t.Fatal(err)
			}
			ls := slices.Clone(lines)
			ls[li] = nl
			c := maps(files)
			c[verify.FileObservations] = append(bytes.Join(ls, []byte("\n")), '\n')
			rep := check(t, resign(t, f.key, names, c))
			what := fmt.Sprintf("line %d key %s", li+1, k)
			if rep.OK() {
				t.Errorf("%s: verified", what)
				continue
			}
			if p := rep.Problems[0]; !strings.Contains(p.String(), fmt.Sprintf("line %d", li+1)) && !strings.Contains(p.String(), "entries") {
				t.Errorf("%s: problems do not name the line: %v", what, rep.Problems)
			}
		}
	}
}

func maps2(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestProofAndCheckpointChangesFail: a changed proof hash or leaf index,
// or a checkpoint of another root, fails even with the manifest signed
// again.
func TestProofAndCheckpointChangesFail(t *testing.T) {
	f := newFixture(t, sample(5))
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, f.ids))
	var ps verify.Proofs
	if err := json.Unmarshal(files[verify.FileProofs], &ps); err != nil {
		t.Fatal(err)
	}
	for i := range ps.Entries {
		for j := range ps.Entries[i].Hashes {
			q := cloneProofs(ps)
			q.Entries[i].Hashes[j][0] ^= 1
			c := maps(files)
			c[verify.FileProofs], _ = json.Marshal(q)
			failsOn(t, fmt.Sprintf("entries[%d].hashes[%d]", i, j), check(t, resign(t, f.key, names, c)), verify.FileObservations)
		}
		q := cloneProofs(ps)
		q.Entries[i].LeafIndex ^= 1
		c := maps(files)
		c[verify.FileProofs], _ = json.Marshal(q)
		failsOn(t, fmt.Sprintf("entries[%d].leaf_index", i), check(t, resign(t, f.key, names, c)), verify.FileObservations)
	}
	// A checkpoint signed by the log key over another root.
	other, err := evidence.CheckpointNote(5, make([]byte, 32), t0, f.key)
	if err != nil {
		t.Fatal(err)
	}
	c := maps(files)
	c[verify.FileCheckpoint] = other
	failsOn(t, "another root", check(t, resign(t, f.key, names, c)), verify.FileObservations)
	// A checkpoint signed by another key.
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	other, _ = evidence.CheckpointNote(5, make([]byte, 32), t0, stranger)
	c = maps(files)
	c[verify.FileCheckpoint] = other
	failsOn(t, "another key", check(t, resign(t, f.key, names, c)), verify.FileCheckpoint)
}

func cloneProofs(p verify.Proofs) verify.Proofs {
	q := verify.Proofs{Size: p.Size}
	for _, e := range p.Entries {
		hs := make([][]byte, len(e.Hashes))
		for i, h := range e.Hashes {
			hs[i] = bytes.Clone(h)
		}
		q.Entries = append(q.Entries, verify.Proof{ID: e.ID, LeafIndex: e.LeafIndex, Hashes: hs})
	}
	return q
}

// TestPinnedLogKey: a bundle made with another log key fails when the
// reader pins the published one.
func TestPinnedLogKey(t *testing.T) {
	f := newFixture(t, sample(2))
	f.checkpoint(t)
	b := f.bundle(t, f.ids)
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	pinned, _ := evidence.VerifierKey(stranger.Public().(ed25519.PublicKey))
	rep, err := verify.Verify(bytes.NewReader(b), int64(len(b)), verify.Options{LogKey: pinned})
	if err != nil {
		t.Fatal(err)
	}
	failsOn(t, "pinned key", rep, verify.FileKeys)
}

// TestEditedRowIsNotExported: a row edited in the database after it was
// logged no longer hashes to its leaf; export refuses it.
func TestEditedRowIsNotExported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs := sample(2)
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE observations SET port = port + 1`); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "T", IDs: []string{obs[0].ID}})
	if err == nil || !strings.Contains(err.Error(), "no longer hashes to its leaf") {
		t.Fatalf("edited row: err %v", err)
	}
}

// TestStoredRowsHashToTheirLeaves: every field the store keeps reads back
// as the line whose leaf was appended, strange text included (a client
// name that is not UTF-8, quotes, an address with a zone).
func TestStoredRowsHashToTheirLeaves(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var obs []observe.Observation
	for i := range 12 {
		obs = append(obs, storetest.Observation(r, t0.Add(time.Duration(i)*time.Second), i))
	}
	obs[1].Client.Name = "bad \xff utf-8 \"q\" <&>"
	obs[2].Endpoint.IP = netip.MustParseAddr("fe80::1%lo")
	obs[3].Possession = observe.Possession{Level: observe.Acknowledged, PiecesHave: 0, PiecesTotal: 7}
	obs = append(obs, announced(20))
	f := newFixture(t, obs)
	f.checkpoint(t)
	var buf bytes.Buffer
	if err := evidence.WriteBundle(context.Background(), &buf, f.st, f.key, evidence.Export{Target: "T", IDs: f.ids}); err != nil {
		t.Fatal(err)
	}
}

// collect is a bus.Publisher that keeps what it is handed.
type collect struct{ obs []observe.Observation }

func (c *collect) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

var sensorKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))

// signed publishes obs through a BatchSigner (batches of 4) and returns
// what reached the bus.
func signed(t testing.TB, obs []observe.Observation) []observe.Observation {
	t.Helper()
	c := &collect{}
	s := evidence.NewBatchSigner(c, sensorKey, evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	for _, o := range obs {
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

func TestSignedBundleVerifies(t *testing.T) {
	obs := sample(10)
	// A sensor publishes as its probes end, not in time order.
	obs[1], obs[2] = obs[2], obs[1]
	obs[5].Time = obs[5].Time.Add(time.Hour)
	f := newFixture(t, signed(t, obs))
	f.checkpoint(t)
	rep := check(t, f.bundle(t, []string{f.ids[1], f.ids[5], f.ids[6], f.ids[9]}))
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	// Observations 1, 5-6 and 9 (in the order published) lie in batches
	// 1-4, 5-8 and 9-10.
	if rep.Signed != 4 || rep.Batches != 3 || rep.Unsigned != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestHubThatChangesAFieldIsCaught: a hub (or anyone before ingest)
// changes what a sensor signed; the log then commits to the changed
// observation, but its sensor hash is not the one the sensor signed.
func TestHubThatChangesAFieldIsCaught(t *testing.T) {
	for _, change := range []struct {
		name string
		fn   func(o *observe.Observation)
	}{
		{"port", func(o *observe.Observation) { o.Endpoint.Port++ }},
		{"possession", func(o *observe.Observation) { o.Possession.PiecesHave-- }},
		{"time", func(o *observe.Observation) { o.Time = o.Time.Add(time.Hour) }},
		{"marks", func(o *observe.Observation) { o.Marks = nil }},
		{"chain_seq", func(o *observe.Observation) { o.Chain.Seq++ }},
		{"batch_sig", func(o *observe.Observation) { o.Chain.BatchSig[0] ^= 1 }},
	} {
		t.Run(change.name, func(t *testing.T) {
			unsigned := sample(4)
			unsigned[3].Marks = []string{observe.MarkMalformedBitfield}
			obs := signed(t, unsigned)
			change.fn(&obs[3])
			f := newFixture(t, obs)
			f.checkpoint(t)
			var buf bytes.Buffer
			err := evidence.WriteBundle(context.Background(), &buf, f.st, f.key, evidence.Export{Target: "T", IDs: f.ids[3:]})
			if err != nil {
				// The store cannot even gather the batch (a seq moved).
				if !strings.Contains(err.Error(), "missing from the store") {
					t.Fatal(err)
				}
				return
			}
			failsOn(t, change.name, check(t, buf.Bytes()), verify.FileObservations)
		})
	}
}

// TestChangedBatchFails changes each field of each batch in batches.json
// and signs the manifest again with the log's key: the chain or the
// sensor's signature no longer checks.
func TestChangedBatchFails(t *testing.T) {
	f := newFixture(t, signed(t, sample(6)))
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, f.ids))
	var bs []map[string]any
	d := json.NewDecoder(bytes.NewReader(files[verify.FileBatches]))
	d.UseNumber()
	if err := d.Decode(&bs); err != nil || len(bs) != 2 {
		t.Fatalf("batches: %v (%d)", err, len(bs))
	}
	for i := range bs {
		for k, v := range bs[i] {
			c2 := make([]map[string]any, len(bs))
			for j := range bs {
				c2[j] = maps2(bs[j])
			}
			c2[i][k] = changed(v)
			c := maps(files)
			c[verify.FileBatches], _ = json.Marshal(c2)
			rep := check(t, resign(t, f.key, names, c))
			if rep.OK() {
				t.Errorf("batch %d %s changed: verified", i, k)
			}
		}
	}
}

var updateFixture = flag.Bool("update-fixture", false, "rewrite internal/evidence/verify/testdata/bundle-form2 (the checked-in bundle of evidence form 2 'vigil verify' must keep verifying; bundle-v1, of form 1, is never rewritten)")

// TestWriteFixtureBundle writes the checked-in fixture bundle of evidence
// form 2 (verify/testdata/bundle-form2), unzipped (text files), with
// -update-fixture: synthetic observations (random bytes, lab addresses),
// signed by a sensor, logged, checkpointed. The verify package's
// TestFixtureForm2BundleStillVerifies checks it. bundle-v1, written so
// by an earlier Vigil in form 1, is kept as it is.
func TestWriteFixtureBundle(t *testing.T) {
	if !*updateFixture {
		t.Skip("-update-fixture not given")
	}
	f := newFixture(t, signed(t, sample(7)))
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, f.ids[1:6]))
	dir := filepath.Join("verify", "testdata", "bundle-form2")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Both fixtures are under the one log key of bundle-v1.logkey.
	vkey, _ := evidence.VerifierKey(f.key.Public().(ed25519.PublicKey))
	if b, err := os.ReadFile(filepath.Join("verify", "testdata", "bundle-v1.logkey")); err != nil || strings.TrimSpace(string(b)) != vkey {
		t.Fatalf("bundle-v1.logkey is not the fixture's log key %s (%v)", vkey, err)
	}
}

// TestChainCheckerAtIngest: observations as a sensor published them check,
// across ingest batches; a field changed on the way fails its batch.
func TestChainCheckerAtIngest(t *testing.T) {
	obs := signed(t, sample(10))
	c := evidence.NewChainChecker()
	r1, r2 := c.Check(obs[:3]), c.Check(obs[3:])
	if len(r1.Failures)+len(r2.Failures) != 0 || r1.Signed+r2.Signed != 10 || r1.Batches+r2.Batches != 3 {
		t.Fatalf("untouched: %+v %+v", r1, r2)
	}
	obs = signed(t, sample(10))
	obs[5].Endpoint.Port++
	r := evidence.NewChainChecker().Check(obs)
	if len(r.Failures) != 1 || r.Signed != 6 || r.Batches != 2 || !strings.Contains(r.Failures[0].Error(), "seq 8") {
		t.Fatalf("changed port: %+v", r)
	}
}

// TestCheckpointOfAnUnchangedLogIsStored: a witness never holds a
// checkpoint the store lacks, also when the log did not grow.
func TestCheckpointOfAnUnchangedLogIsStored(t *testing.T) {
	f := newFixture(t, sample(2))
	w := filepath.Join(t.TempDir(), "w")
	for i := range 2 {
		if _, err := evidence.MakeCheckpoint(context.Background(), f.st, f.key, t0.Add(time.Duration(i)*time.Minute), audit.FileWitness{Path: w}); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := f.st.LogCheckpoints(context.Background())
	if err != nil || len(cps) != 2 || !cps[1].Time.After(cps[0].Time) {
		t.Fatalf("stored %d checkpoints (%v)", len(cps), err)
	}
	b, _ := os.ReadFile(w)
	if n := strings.Count(string(b), verify.LogOrigin); n != 2 {
		t.Fatalf("witness holds %d notes", n)
	}
}

// TestNoCheckpointOverAChangedLog: a leaf rewritten in the database (the
// triggers dropped first, as someone with the file could) stops the next
// checkpoint.
func TestNoCheckpointOverAChangedLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InsertObservations(ctx, sample(5)); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertObservations(ctx, sample(7)[5:]); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range zeroLeaf2 {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, err = evidence.MakeCheckpoint(ctx, st, key, t0.Add(time.Minute))
	if !errors.Is(err, evidence.ErrLogChanged) {
		t.Fatalf("checkpoint over a changed leaf: err %v", err)
	}
}

// TestTranscriptClaimsAreChecked: observations whose transcript does not
// say what they claim fail, each naming its line and the transcript.
func TestTranscriptClaimsAreChecked(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	overstated := probe(r, 0, 3, 10)
	overstated.Possession.PiecesHave = 4 // the bitfield shows 3
	complete := probe(r, 1, 3, 10)
	complete.Possession.Level, complete.Possession.PiecesHave = observe.Complete, 3
	unknownComplete := probe(r, 2, 3, 10)
	unknownComplete.Possession = observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1}
	otherHash := probe(r, 3, 3, 10)
	otherHash.Item.Hash = hashkind.MustNew(hashkind.BTIH, bytes.Repeat([]byte{1}, 20))
	otherPeer := probe(r, 4, 3, 10)
	otherPeer.Client.PeerID = bytes.Repeat([]byte{2}, 20)
	noTranscript := probe(r, 5, 3, 10)
	noTranscript.Transcript = observe.Transcript{}
	badSum := probe(r, 6, 3, 10)
	badSum.Transcript.SHA256 = make([]byte, 32)
	obs := []observe.Observation{overstated, complete, unknownComplete, otherHash, otherPeer, noTranscript, badSum}
	f := newFixture(t, obs)
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids))
	bad := map[int]bool{}
	for _, p := range rep.Problems {
		var line int
		if _, err := fmt.Sscanf(p.Field, "line %d", &line); err == nil && p.File == verify.FileObservations {
			bad[line] = true
		}
	}
	for i := range obs {
		if !bad[i+1] {
			t.Errorf("line %d (%s): no problem named it: %v", i+1, []string{"overstated", "complete", "unknownComplete", "otherHash", "otherPeer", "noTranscript", "badSum"}[i], rep.Problems)
		}
	}
}

// TestReadmeRatesAreThePublishedOnes: the error rates the bundle's README
// quotes are those docs/accuracy.md publishes; when the measurement is
// redone, this fails until the README says the new figures.
func TestReadmeRatesAreThePublishedOnes(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "accuracy.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := evidence.Readme("T", evidence.Checkpoint{})
	for _, pair := range [][2]string{
		{"commit c464fb0", "(commit c464fb0)"},
		{"announced 4.3% false (30 of 690", "| announced | 690 | 660 | 30 | 4.3% |"},
		{"ISP rows 21 of 21", "| 21 | 21 | 0 | 0.0% |"},
		{"0 wrong ISP rows of 37-42", "| seed 2 | 0.0% / 100.0% | 0.0% / 100.0% | 0.0% / 100.0% | 0.0% / 100.0% | 0 (0) | 42 (0) |"},
	} {
		if !strings.Contains(readme, pair[0]) || !strings.Contains(string(doc), pair[1]) {
			t.Errorf("README says %q: docs/accuracy.md no longer has %q (or the README changed)", pair[0], pair[1])
		}
	}
}

// TestNoCheckpointOverALogRewrittenWithItsCheckpointRow: an insider who
// rewrites a leaf and adds a checkpoint row of the same size whose root is
// the rewritten log's (copying the old signed note: they cannot sign; no
// trigger stops an INSERT) must not get a new checkpoint signed over the
// rewritten log, nor a bundle written against that row.
func TestNoCheckpointOverALogRewrittenWithItsCheckpointRow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs := sample(5)
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	cp, err := evidence.MakeCheckpoint(ctx, st, key, t0)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range zeroLeaf2 {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	root, err := evidence.Root(ctx, st, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO evidence_checkpoints (size, time_ns, root, note) VALUES (?, ?, ?, ?)`,
		int64(cp.Size), t0.Add(time.Second).UnixNano(), root, cp.Note); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0.Add(time.Minute)); !errors.Is(err, evidence.ErrLogChanged) {
		t.Errorf("checkpoint over a rewritten log with a forged checkpoint row: err %v", err)
	}
	var buf bytes.Buffer
	err = evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "T", IDs: []string{obs[4].ID}})
	if !errors.Is(err, evidence.ErrLogChanged) {
		t.Errorf("bundle against a forged checkpoint row: err %v", err)
	}
}

// TestTranscriptNotComparedIsNotCountedAsCompared: a transcript of a
// method whose claims the verifier does not compare (a PEX message, a
// tracker's list) is not counted among the transcripts "compared with
// their claims": the report would overstate what was checked.
func TestTranscriptNotComparedIsNotCountedAsCompared(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pex := probe(r, 0, 3, 10)
	pex.Method = observe.MethodPEX
	pex.Possession = observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}
	pex.Marks = []string{observe.MarkThirdParty}
	f := newFixture(t, []observe.Observation{pex, probe(r, 1, 3, 10)})
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids))
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Transcripts != 1 || rep.TranscriptsNotCompared != 1 {
		t.Fatalf("transcripts compared %d (want 1), not compared %d (want 1)", rep.Transcripts, rep.TranscriptsNotCompared)
	}
}

// TestNoCheckpointOverALogRewrittenWithItsCheckpointsDeleted: an insider
// who rewrites a leaf and deletes every stored checkpoint (the triggers
// dropped first) leaves the witness file outside the store: the next
// checkpoint compares the log with the witness's notes and signs nothing.
func TestNoCheckpointOverALogRewrittenWithItsCheckpointsDeleted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InsertObservations(ctx, sample(5)); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	w := witnessFile(filepath.Join(dir, "evidence-log.witness"))
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0, w); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append(zeroLeaf2[:2:2],
		`DROP TRIGGER evidence_checkpoints_no_delete`, `DELETE FROM evidence_checkpoints`) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0.Add(time.Minute), w); !errors.Is(err, evidence.ErrLogChanged) {
		t.Fatalf("checkpoint over a rewritten log whose checkpoints were deleted: err %v", err)
	}
}

// zeroLeaf2 overwrites the log's leaf 1 (its second) with zeros in a
// SQLite store whose log is in evidence_blocks (migration 0021), as
// someone with the file could.
var zeroLeaf2 = []string{`DROP TRIGGER evidence_blocks_no_update`,
	`UPDATE evidence_blocks SET leaves = CAST(substr(leaves, 1, 32) || zeroblob(32) || substr(leaves, 65) AS BLOB) WHERE first = 1`}

func witnessFile(path string) evidence.Witness { return evidence.FileWitness{Path: path} }

// TestTranscriptOfAnotherEndpointFails: the endpoint is what an ISP row
// names; a transcript of a conversation with another address (or port)
// does not back an observation of this one, whatever it says.
func TestTranscriptOfAnotherEndpointFails(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 11))
	otherIP := probe(r, 0, 3, 10)
	otherIP.Endpoint.IP = netip.MustParseAddr("127.0.0.99")
	otherPort := probe(r, 1, 3, 10)
	otherPort.Endpoint.Port++
	mapped := probe(r, 2, 3, 10) // the same address written IPv4-mapped: still the endpoint
	mapped.Endpoint.IP = netip.AddrFrom16(mapped.Endpoint.IP.As16())
	f := newFixture(t, []observe.Observation{otherIP, otherPort, mapped})
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids))
	bad := map[int]bool{}
	for _, p := range rep.Problems {
		var line int
		if _, err := fmt.Sscanf(p.Field, "line %d", &line); err == nil && p.File == verify.FileObservations && strings.HasSuffix(p.Field, "transcript") {
			bad[line] = true
		}
	}
	if !bad[1] || !bad[2] || bad[3] {
		t.Fatalf("lines failed %v, want 1 and 2 (another address, another port), not 3: %v", bad, rep.Problems)
	}
}
