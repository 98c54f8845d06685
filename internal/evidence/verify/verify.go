// Package verify checks an evidence bundle ('vigil evidence export') with
// nothing but the bundle: no store, no network, no key but those the
// bundle carries (and one the caller pins). It is kept small so that a
// defence expert can read it in an afternoon; docs/evidence.md, "Checking
// a bundle", says the same in words.
//
// What it checks, in order: the manifest's signature and every file's
// SHA-256 against it; the checkpoint's signature; each observation's
// inclusion proof (RFC 6962) against the checkpoint; each sensor batch's
// hash chain and signature; and that each observation's transcript says
// what the observation claims. Every failure names the file and the field.
//
// It must never open a socket, a store or a file other than the bundle.
package verify

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// Problem is one thing that did not check: which file, which field (an
// observation id and key, a proof entry, a line), and what.
type Problem struct {
	File   string `json:"file"`
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.File + ": " + p.Detail
	}
	return p.File + ": " + p.Field + ": " + p.Detail
}

// Report is what Verify found.
type Report struct {
	Target string `json:"target"`
	LogKey string `json:"log_key"` // the log's verifier key
	// LogKeyPinned is whether LogKey was given by the caller (Options):
	// when false it is the bundle's own, and everything else checks only
	// against it: a forger who rewrote every file and signed with a key of
	// their own gets the same report. The examiner must compare LogKey
	// with the key the operator publishes (and the witness's notes).
	LogKeyPinned bool   `json:"log_key_pinned"`
	Checkpoint   string `json:"checkpoint"`   // size and root, as text
	Files        int    `json:"files"`        // files whose SHA-256 checked
	Observations int    `json:"observations"` // observations read
	Proofs       int    `json:"proofs"`       // inclusion proofs that checked
	Batches      int    `json:"batches"`      // sensor batch signatures that checked
	Signed       int    `json:"signed"`       // observations under a checked batch signature
	Unsigned     int    `json:"unsigned"`     // observations no sensor signed (imports)
	// SignatureFailed are those of Unsigned that ingest stored marked
	// signature_failed: received as a sensor's, but no signature of a
	// trusted sensor key covered them (not sensor evidence either).
	SignatureFailed int `json:"signature_failed"`
	Transcripts     int `json:"transcripts"` // transcripts decoded and compared with their claims
	// Purged are the target's observations purged under retention
	// (purged.json) whose leaf proof checked: the log shows each was
	// logged; its content is gone and is not checked. PurgedTranscripts
	// of them kept their row without the transcript.
	Purged            int `json:"purged"`
	PurgedTranscripts int `json:"purged_transcripts"`
	// TranscriptsNotCompared are transcripts that decoded (and matched
	// their transcript_sha256) but whose observation's method has no
	// claim the verifier compares (a tracker's list, a PEX message, a
	// DHT get_peers answer, ...).
	TranscriptsNotCompared int `json:"transcripts_not_compared"`
	// SensorKeys are the sensor keys whose batches checked, as keys.json
	// names them, with how many observations each signed. They come from
	// the store's log, under the log key: whoever can write to the
	// database can add observations signed with a key of their own, so
	// the examiner compares each with the key its sensor published.
	SensorKeys    []SensorKeyUse `json:"sensor_keys"`
	Problems      []Problem      `json:"problems"` // empty when everything checks
	ManifestNotes []string       `json:"-"`
}

// SensorKeyUse is a sensor key and the observations it signed.
type SensorKeyUse struct {
	Sensor       string `json:"sensor"`
	PublicKey    string `json:"public_key"`
	FirstSeen    string `json:"first_seen"`
	Observations int    `json:"observations"`
}

// OK reports whether everything checked.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) fail(file, field, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{File: file, Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Options are what the caller may pin.
type Options struct {
	// LogKey, if set, is the log's verifier key the caller trusts (from
	// the witness or the operator): the bundle's must be it.
	LogKey string
}

// MaxFile bounds one file read from a bundle, and MaxBundle all of them:
// the sizes the zip's entries declare are checked against both before
// anything is unpacked (archive/zip refuses an entry that unpacks to more
// than it declares), so that a forged bundle of a few KiB that unpacks to
// gigabytes is refused rather than read into memory.
const (
	MaxFile   = 1 << 30
	MaxBundle = 2 << 30
)

// bundleFiles are the names a bundle has; an entry of another name is a
// problem, and is never unpacked.
var bundleFiles = map[string]bool{
	FileManifest: true, FileReadme: true, FileObservations: true, FileProofs: true, FileCheckpoint: true,
	FileKeys: true, FileBatches: true, FileWatchlist: true, FileLinks: true, FileISPAnnex: true, FilePurged: true,
}

// Verify checks the bundle in r (a zip file of size bytes).
func Verify(r io.ReaderAt, size int64, opt Options) (*Report, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a zip file: %w", err)
	}
	rep := &Report{Problems: []Problem{}}
	var declared uint64
	for _, f := range zr.File {
		declared += min(f.UncompressedSize64, MaxBundle+1)
	}
	if declared > MaxBundle {
		return nil, fmt.Errorf("the zip's entries declare %d bytes or more in all, over the %d a bundle may hold", declared, uint64(MaxBundle))
	}
	files := map[string][]byte{}
	seen := map[string]bool{}
	var open []*zip.File
	for _, f := range zr.File {
		if seen[f.Name] {
			rep.fail(f.Name, "", "the zip holds this name twice")
			continue
		}
		seen[f.Name] = true
		if !bundleFiles[f.Name] {
			rep.fail(f.Name, "", "not a file of a bundle (not in the manifest; not unpacked)")
			continue
		}
		if f.UncompressedSize64 > MaxFile {
			rep.fail(f.Name, "", "declares %d bytes, over the %d a file of a bundle may hold (not unpacked)", f.UncompressedSize64, MaxFile)
			continue
		}
		open = append(open, f)
	}
	// The files are unpacked at once, on the machine's cores (the
	// observations and the proofs are the large ones).
	data, errs := make([][]byte, len(open)), make([]string, len(open))
	parallel(len(open), func(i int) { data[i], errs[i] = unpack(open[i]) })
	for i, f := range open {
		if errs[i] != "" {
			rep.fail(f.Name, "", "%s", errs[i])
			continue
		}
		files[f.Name] = data[i]
	}
	v := &verifier{rep: rep, files: files}
	v.run(opt)
	return rep, nil
}

// unpack reads f whole, into a buffer of the size it declares (the zip
// reader refuses more bytes than declared), or says why it cannot.
func unpack(f *zip.File) ([]byte, string) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Sprintf("cannot open: %v", err)
	}
	defer rc.Close()
	buf := bytes.NewBuffer(make([]byte, 0, int(f.UncompressedSize64)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(rc, MaxFile+1))
	if err != nil || buf.Len() > MaxFile {
		return nil, fmt.Sprintf("cannot read (damaged, or over %d bytes): %v", MaxFile, err)
	}
	return buf.Bytes(), ""
}

type verifier struct {
	rep   *Report
	files map[string][]byte
	logV  note.Verifier
	size  uint64
	root  []byte
	obs   []obsLine
	// leaves are the leaf indexes proofs.json proves for observations.jsonl.
	leaves map[uint64]string
}

func (v *verifier) run(opt Options) {
	if !v.keys(opt) || !v.manifest() {
		return
	}
	if !v.checkpoint() {
		return
	}
	// proofs.json is decoded while the lines are read (both are large).
	var ps Proofs
	decoded := make(chan error, 1)
	go func() { decoded <- strictJSON(v.files[FileProofs], &ps) }()
	v.observations()
	v.proofs(&ps, <-decoded)
	v.purged()
	v.batches()
	for i := range v.obs {
		v.transcript(&v.obs[i])
	}
}

// keys reads keys.json and the log's verifier key.
func (v *verifier) keys(opt Options) bool {
	b, ok := v.files[FileKeys]
	if !ok {
		v.rep.fail(FileKeys, "", "missing")
		return false
	}
	var k Keys
	if err := strictJSON(b, &k); err != nil {
		v.rep.fail(FileKeys, "", "not the keys' JSON: %v", err)
		return false
	}
	if opt.LogKey != "" && opt.LogKey != k.Log {
		v.rep.fail(FileKeys, "log", "the bundle's log key %q is not the one given (%q)", k.Log, opt.LogKey)
		return false
	}
	lv, err := note.NewVerifier(k.Log)
	if err != nil || lv.Name() != LogKeyName {
		v.rep.fail(FileKeys, "log", "not a %s verifier key: %q", LogKeyName, k.Log)
		return false
	}
	v.logV, v.rep.LogKey, v.rep.LogKeyPinned = lv, k.Log, opt.LogKey != ""
	return true
}

// manifest checks the signed manifest and every file's SHA-256 against it.
func (v *verifier) manifest() bool {
	b, ok := v.files[FileManifest]
	if !ok {
		v.rep.fail(FileManifest, "", "missing")
		return false
	}
	n, err := note.Open(b, note.VerifierList(v.logV))
	if err != nil {
		v.rep.fail(FileManifest, "signature", "not signed by the log key: %v", err)
		return false
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != ManifestOrigin || !strings.HasPrefix(lines[1], "target ") {
		v.rep.fail(FileManifest, "header", "want %q, a target line and a created line", ManifestOrigin)
		return false
	}
	v.rep.Target = strings.TrimPrefix(lines[1], "target ")
	listed := map[string]bool{FileManifest: true}
	for i, l := range lines[3:] {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			v.rep.fail(FileManifest, fmt.Sprintf("line %d", i+4), "want \"<sha256>  <file>\"")
			continue
		}
		listed[name] = true
		data, ok := v.files[name]
		if !ok {
			v.rep.fail(name, "", "listed in the manifest, missing from the bundle")
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			v.rep.fail(name, "sha256", "the file's SHA-256 is %x, the manifest says %s: the file was changed", got, sum)
			continue
		}
		v.rep.Files++
	}
	for name := range v.files {
		if !listed[name] {
			v.rep.fail(name, "", "in the bundle but not in the manifest")
		}
	}
	return v.rep.OK()
}

// checkpoint checks the checkpoint note's signature and reads its size and
// root (C2SP tlog-checkpoint: origin, size, base64 root).
func (v *verifier) checkpoint() bool {
	n, err := note.Open(v.files[FileCheckpoint], note.VerifierList(v.logV))
	if err != nil {
		v.rep.fail(FileCheckpoint, "signature", "not signed by the log key: %v", err)
		return false
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		v.rep.fail(FileCheckpoint, "body", "%v", err)
		return false
	}
	v.size, v.root = cp.Size, cp.Hash
	v.rep.Checkpoint = fmt.Sprintf("size %d, root %x", cp.Size, cp.Hash)
	return true
}

// obsLine is what the verifier reads of an observation line; the line
// itself is what the hashes cover.
type obsLine struct {
	line             []byte
	n                int      // 1-based line number
	ID               string   `json:"id"`
	Network          string   `json:"network"`
	Method           string   `json:"method"`
	IP               string   `json:"ip"`
	Port             uint16   `json:"port"`
	ItemKind         string   `json:"item_kind"`
	Item             string   `json:"item"`
	Possession       string   `json:"possession"`
	PiecesHave       *int     `json:"pieces_have"`
	PiecesTotal      *int     `json:"pieces_total"`
	Marks            []string `json:"marks"`
	PeerID           string   `json:"peer_id"`
	Transcript       []byte   `json:"transcript"`
	TranscriptSHA256 string   `json:"transcript_sha256"`
	SensorKey        string   `json:"sensor_key"`
	Chain            string   `json:"chain"`
	ChainSeq         uint64   `json:"chain_seq"`
	ChainPrev        string   `json:"chain_prev"`
	BatchSig         string   `json:"batch_sig"`
	leaf             [32]byte
	sensorHash       [32]byte
}

func (o *obsLine) field(key string) string {
	return fmt.Sprintf("line %d (observation %s) %s", o.n, o.ID, key)
}

func (v *verifier) observations() {
	data := v.files[FileObservations]
	if len(data) > 0 && data[len(data)-1] != '\n' {
		v.rep.fail(FileObservations, "", "the last line has no newline: the file was cut short or changed")
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(data) > 0 {
			v.obs = append(v.obs, obsLine{line: line, n: n + 1})
		}
	}
	// Each line is read and hashed on its own: across the machine's cores.
	errs := make([]string, len(v.obs))
	parallel(len(v.obs), func(i int) {
		o := &v.obs[i]
		if err := json.Unmarshal(o.line, o); err != nil {
			errs[i] = fmt.Sprintf("not an observation: %v", err)
			return
		}
		full, sensor, err := canon.Forms(o.line, canon.IngestKeys)
		if err != nil {
			errs[i] = err.Error()
			return
		}
		o.leaf, o.sensorHash = canon.LeafHash(full), sha256.Sum256(sensor)
	})
	seen := map[string]bool{}
	kept := v.obs[:0]
	for i, o := range v.obs {
		switch {
		case errs[i] != "":
			v.rep.fail(FileObservations, fmt.Sprintf("line %d", o.n), "%s", errs[i])
		case o.ID == "" || seen[o.ID]:
			v.rep.fail(FileObservations, o.field("id"), "empty or repeated")
		default:
			seen[o.ID] = true
			kept = append(kept, o)
		}
	}
	v.obs = kept
	v.rep.Observations = len(v.obs)
}

// parallel calls fn(0..n-1) on as many goroutines as the machine has
// cores, and returns when all have returned.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	var wg sync.WaitGroup
	next := make(chan int, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// proofs checks one RFC 6962 inclusion proof per observation (ps, as
// decoded from proofs.json with err), on the machine's cores.
func (v *verifier) proofs(ps *Proofs, err error) {
	if err != nil {
		v.rep.fail(FileProofs, "", "not the proofs' JSON: %v", err)
		return
	}
	if ps.Size != v.size {
		v.rep.fail(FileProofs, "size", "%d, the checkpoint's is %d", ps.Size, v.size)
		return
	}
	if len(ps.Entries) != len(v.obs) {
		v.rep.fail(FileProofs, "entries", "%d proofs for %d observations", len(ps.Entries), len(v.obs))
	}
	h := rfc6962.DefaultHasher
	n := min(len(ps.Entries), len(v.obs))
	bad := make([]error, n)
	parallel(n, func(i int) {
		p, o := &ps.Entries[i], &v.obs[i]
		if p.ID == o.ID {
			bad[i] = proof.VerifyInclusion(h, p.LeafIndex, v.size, o.leaf[:], p.Hashes, v.root)
		}
	})
	for i := range n {
		p, o := &ps.Entries[i], &v.obs[i]
		field := fmt.Sprintf("entries[%d]", i)
		if p.ID != o.ID {
			v.rep.fail(FileProofs, field+".id", "%q, line %d of %s is %q", p.ID, o.n, FileObservations, o.ID)
			continue
		}
		if err := bad[i]; err != nil {
			v.rep.fail(FileObservations, o.field(""), "does not hash to leaf %d of the log at the checkpoint (%v): the line, or its proof (%s %s), was changed", p.LeafIndex, err, FileProofs, field)
			continue
		}
		if v.leaves == nil {
			v.leaves = map[uint64]string{}
		}
		v.leaves[p.LeafIndex] = p.ID
		v.rep.Proofs++
	}
}

// purged checks purged.json, when the bundle has it: each entry's leaf
// with its proof leads to the checkpoint's root.
func (v *verifier) purged() {
	b, ok := v.files[FilePurged]
	if !ok {
		return
	}
	var ps Purged
	if err := strictJSON(b, &ps); err != nil {
		v.rep.fail(FilePurged, "", "not the purged observations' JSON: %v", err)
		return
	}
	h := rfc6962.DefaultHasher
	inBundle := make(map[string]bool, len(v.obs))
	for _, o := range v.obs {
		inBundle[o.ID] = true
	}
	ids, leaves := map[string]bool{}, map[uint64]bool{}
	for i, p := range ps.Entries {
		field := fmt.Sprintf("entries[%d]", i)
		if p.What != "transcripts" && p.What != "observations" {
			v.rep.fail(FilePurged, field+".what", "%q: want transcripts or observations", p.What)
			continue
		}
		// One observation is either in the bundle or purged, once; one
		// leaf is one observation.
		switch {
		case p.ID == "" || ids[p.ID]:
			v.rep.fail(FilePurged, field+".id", "%q: empty or repeated", p.ID)
			continue
		case inBundle[p.ID]:
			v.rep.fail(FilePurged, field+".id", "observation %s is in %s too: it cannot be both stored and purged", p.ID, FileObservations)
			continue
		case leaves[p.LeafIndex]:
			v.rep.fail(FilePurged, field+".leaf_index", "leaf %d is claimed by another purged observation", p.LeafIndex)
			continue
		case v.leaves[p.LeafIndex] != "":
			v.rep.fail(FilePurged, field+".leaf_index", "leaf %d is observation %s's in %s", p.LeafIndex, v.leaves[p.LeafIndex], FileObservations)
			continue
		}
		ids[p.ID], leaves[p.LeafIndex] = true, true
		if err := proof.VerifyInclusion(h, p.LeafIndex, v.size, p.Leaf, p.Hashes, v.root); err != nil {
			v.rep.fail(FilePurged, field, "observation %s: its leaf %d does not lead to the checkpoint's root (%v)", p.ID, p.LeafIndex, err)
			continue
		}
		v.rep.Purged++
		if p.What == "transcripts" {
			v.rep.PurgedTranscripts++
		}
	}
}

// strictJSON decodes b into v, refusing unknown keys and trailing data.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("more after the value")
	}
	return nil
}

// sensorKey decodes a hex ed25519 public key.
func sensorKey(s string) (ed25519.PublicKey, bool) {
	b, err := hex.DecodeString(s)
	return ed25519.PublicKey(b), err == nil && len(b) == ed25519.PublicKeySize
}
