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
// The two large files, the observations and their proofs, are never held
// whole: each is read once, checked as it is hashed (streams.go), and of
// each observation only what the later checks need is kept.
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
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
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
	// Form1 and Form2 are the observations read in each evidence form
	// (docs/evidence.md, "Evidence forms"): what their hashes cover.
	Form1    int `json:"form1"`
	Form2    int `json:"form2"`
	Proofs   int `json:"proofs"`   // inclusion proofs that checked
	Batches  int `json:"batches"`  // sensor batch signatures that checked
	Signed   int `json:"signed"`   // observations under a checked batch signature
	Unsigned int `json:"unsigned"` // observations no sensor signed (imports)
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
	SensorKeys []SensorKeyUse `json:"sensor_keys"`
	// SensorKeysPinned is whether the sensor keys were given by the
	// caller (Options.SensorKeys): when false, any key keys.json lists
	// is taken.
	SensorKeysPinned bool `json:"sensor_keys_pinned"`
	// Gaps are the signed batches whose chain the bundle gives from a
	// later position than its sensor's batch began at, the store says,
	// because it lacks a position between (Batch.SignedFrom): the
	// observations checked from there are signed, and the positions
	// named are not in the store's chain. Where the batch began and what
	// is missing are the store's word (the manifest's log key covers
	// them; the sensor signs a head, never where its batch began): a
	// bundle without them whose batch starts late verifies the same.
	// Not a problem of what the bundle holds; said, never passed over.
	Gaps          []Gap     `json:"gaps,omitempty"`
	Problems      []Problem `json:"problems"` // empty when everything checks
	ManifestNotes []string  `json:"-"`
}

// Gap is a signed batch of which the store lacks a position: its sensor
// signed seqs SignedFrom to Head; the bundle checks them from FirstSeq;
// Missing are the positions not in the store's chain.
type Gap struct {
	Chain      string   `json:"chain"`
	SignedFrom uint64   `json:"signed_from"`
	FirstSeq   uint64   `json:"first_seq"`
	Head       uint64   `json:"head"`
	Missing    []uint64 `json:"missing"`
}

// String says the gap in words.
func (g Gap) String() string {
	return fmt.Sprintf("chain %s: the store says its sensor signed seqs %d to %d as one batch (no signature says where a batch began); seq %s not in the store (refused at ingest, never received, stored marked signature_failed, or deleted after it was stored): checked from seq %d on",
		g.Chain, g.SignedFrom, g.Head, joinSeqs(g.Missing), g.FirstSeq)
}

func joinSeqs(seqs []uint64) string {
	s := make([]string, len(seqs))
	for i, q := range seqs {
		s[i] = strconv.FormatUint(q, 10)
	}
	return strings.Join(s, ", ")
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
	// SensorKeys, if set, are the sensor keys the caller trusts (the
	// sensors' published ed25519 public keys, in hexadecimal): a batch
	// under any other key covers nothing, and its observations fail.
	SensorKeys []string
	// SensorNames binds pinned keys (hexadecimal, as in SensorKeys) to the
	// sensor names they may sign for (a note of 'vigil verify
	// --sensor-keys'): an observation signed under a key listed here that
	// names another sensor fails, naming both. A key not listed signs for
	// any name.
	SensorNames map[string][]string
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
	// The files but the two large ones are unpacked into memory; those
	// two are read as they are checked (streams.go).
	largeFiles := map[string]*largeFile{}
	for _, f := range open {
		if large[f.Name] {
			largeFiles[f.Name] = newLargeFile(f)
			continue
		}
		data, err := unpack(f)
		if err != "" {
			rep.fail(f.Name, "", "%s", err)
			continue
		}
		files[f.Name] = data
	}
	v := &verifier{rep: rep, files: files, large: largeFiles}
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
	files map[string][]byte // the files unpacked, by name
	large map[string]*largeFile
	logV  note.Verifier
	size  uint64
	root  []byte
	obs   []observation
	// leaves are the leaf indexes proofs.json proves for observations.jsonl.
	leaves map[uint64]string
	// pinned are the sensor keys the caller trusts (nil: any listed).
	pinned map[string]bool
	// pinnedNames binds pinned keys to sensor names (Options.SensorNames).
	pinnedNames map[string][]string
}

// run checks the bundle. The manifest comes first: nothing else counts
// unless every file is the one it lists. But the two large files are
// hashed as their content is read (streams.go), so the content is checked
// first, on a report of its own, which replaces the manifest's only if
// every file's SHA-256 is the manifest's.
func (v *verifier) run(opt Options) {
	if !v.keys(opt) {
		return
	}
	listed, ok := v.manifestNote()
	if !ok {
		return
	}
	manifest, content := v.rep, *v.rep
	content.Problems = []Problem{}
	v.rep = &content
	v.content()
	v.rep = manifest
	if v.manifestFiles(listed) {
		content.Files = manifest.Files
		*manifest = content
	}
}

// content checks what the files say, in order.
func (v *verifier) content() {
	if !v.checkpoint() {
		return
	}
	v.observations()
	v.proofs()
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
	if len(opt.SensorKeys) > 0 {
		v.pinned = map[string]bool{}
		for _, sk := range opt.SensorKeys {
			v.pinned[strings.ToLower(sk)] = true
		}
		v.rep.SensorKeysPinned = true
	}
	for k, ns := range opt.SensorNames {
		if v.pinnedNames == nil {
			v.pinnedNames = map[string][]string{}
		}
		v.pinnedNames[strings.ToLower(k)] = ns
	}
	return true
}

// manifestNote checks the manifest's signature and header, and returns
// its lines that list the files.
func (v *verifier) manifestNote() ([]string, bool) {
	b, ok := v.files[FileManifest]
	if !ok {
		v.rep.fail(FileManifest, "", "missing")
		return nil, false
	}
	n, err := note.Open(b, note.VerifierList(v.logV))
	if err != nil {
		v.rep.fail(FileManifest, "signature", "not signed by the log key: %v", err)
		return nil, false
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != ManifestOrigin || !strings.HasPrefix(lines[1], "target ") {
		v.rep.fail(FileManifest, "header", "want %q, a target line and a created line", ManifestOrigin)
		return nil, false
	}
	v.rep.Target = strings.TrimPrefix(lines[1], "target ")
	return lines[3:], true
}

// manifestFiles checks every file's SHA-256 against the manifest's lines
// (listed), and that the bundle has no file it does not list.
func (v *verifier) manifestFiles(listed []string) bool {
	names := map[string]bool{FileManifest: true}
	for i, l := range listed {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			v.rep.fail(FileManifest, fmt.Sprintf("line %d", i+4), "want \"<sha256>  <file>\"")
			continue
		}
		names[name] = true
		var got [32]byte
		var err error
		if data, ok := v.files[name]; ok {
			got = sha256.Sum256(data)
		} else if s, ok := v.large[name]; ok {
			if got, err = s.sum(); err != nil {
				v.rep.fail(name, "", "cannot read (damaged): %v", err)
				continue
			}
		} else {
			v.rep.fail(name, "", "listed in the manifest, missing from the bundle")
			continue
		}
		if hex.EncodeToString(got[:]) != sum {
			v.rep.fail(name, "sha256", "the file's SHA-256 is %x, the manifest says %s: the file was changed", got, sum)
			continue
		}
		v.rep.Files++
	}
	for name := range v.files {
		if !names[name] {
			v.rep.fail(name, "", "in the bundle but not in the manifest")
		}
	}
	for name := range v.large {
		if !names[name] {
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

// observations reads observations.jsonl as it is unpacked: batches of
// lines go to the machine's cores, where each line's hashes and
// transcript are checked, and only what the later checks need of a line
// is kept (observation).
func (v *verifier) observations() {
	s, ok := v.large[FileObservations]
	if !ok {
		return
	}
	type batch struct {
		first int    // the number of its first line
		data  []byte // its lines
		obs   []observation
		errs  []error
	}
	var batches []*batch
	workers := runtime.GOMAXPROCS(0)
	work, free := make(chan *batch, workers), make(chan []byte, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var r lineReader
			for b := range work {
				data := bytes.TrimSuffix(b.data, []byte("\n"))
				for n := b.first; ; n++ {
					line, rest, more := bytes.Cut(data, []byte("\n"))
					o, err := r.read(line, n)
					b.obs, b.errs = append(b.obs, o), append(b.errs, err)
					if data = rest; !more {
						break
					}
				}
				select { // the buffer, for another batch
				case free <- b.data[:cap(b.data)]:
				default:
				}
				b.data = nil
			}
		})
	}
	noNewline, err := readLines(s, 1<<20, free, func(first int, data []byte) {
		b := &batch{first: first, data: data}
		batches = append(batches, b)
		work <- b
	})
	close(work)
	wg.Wait()
	if err != nil {
		v.rep.fail(FileObservations, "", "cannot read: %v", err)
		return
	}
	if noNewline {
		v.rep.fail(FileObservations, "", "the last line has no newline: the file was cut short or changed")
	}
	n := 0
	for _, b := range batches {
		n += len(b.obs)
	}
	v.obs = make([]observation, 0, n)
	seen := make(map[string]bool, n)
	for _, b := range batches {
		for i, o := range b.obs {
			switch {
			case b.errs[i] != nil:
				v.rep.fail(FileObservations, fmt.Sprintf("line %d", o.n), "%v", b.errs[i])
			case o.id == "" || seen[o.id]:
				v.rep.fail(FileObservations, o.field("id"), "empty or repeated")
			default:
				seen[o.id] = true
				v.obs = append(v.obs, o)
				if o.form == 2 {
					v.rep.Form2++
				} else {
					v.rep.Form1++
				}
			}
		}
	}
	v.rep.Observations = len(v.obs)
}

// parallel calls fn on the ranges [lo, hi) that cover 0..n-1, on as many
// goroutines as the machine has cores, and returns when all have
// returned.
func parallel(n int, fn func(lo, hi int)) {
	const chunk = 256
	workers := min(runtime.GOMAXPROCS(0), max((n+chunk-1)/chunk, 1))
	var wg sync.WaitGroup
	next := make(chan int, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				fn(lo, min(lo+chunk, n))
			}
		}()
	}
	for lo := 0; lo < n; lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
}

// proofs checks proofs.json: one RFC 6962 inclusion proof per observation,
// in the order of the lines. The entries are read one after another and
// checked in batches on the machine's cores.
func (v *verifier) proofs() {
	type result struct {
		leafIndex uint64
		otherID   bool   // the entry's id is not the observation's:
		id        string // this one
		err       error  // the proof's, when it does not lead to the root
	}
	results := make([]result, len(v.obs))
	// A batch of entries read, to be checked; their hashes are copied
	// into one buffer, reused from batch to batch.
	type pending struct{ i, from, to int } // entry i's hashes are hashes[from:to]
	var batch []pending
	var hashes [][]byte
	var buf []byte
	check := func() {
		parallel(len(batch), func(lo, hi int) {
			for _, p := range batch[lo:hi] {
				o, r := &v.obs[p.i], &results[p.i]
				r.err = proof.VerifyInclusion(treeHasher, r.leafIndex, v.size, o.leaf[:], hashes[p.from:p.to], v.root)
			}
		})
		batch, hashes, buf = batch[:0], hashes[:0], buf[:0]
	}
	s, ok := v.large[FileProofs]
	if !ok {
		v.rep.fail(FileProofs, "", "not the proofs' JSON: missing")
		return
	}
	size, n, err := readProofs(s, func(i int, p *Proof) {
		if i >= len(v.obs) {
			return
		}
		r := &results[i]
		r.leafIndex = p.LeafIndex
		if p.ID != v.obs[i].id {
			r.otherID, r.id = true, p.ID
			return
		}
		from := len(hashes)
		for _, h := range p.Hashes {
			start := len(buf)
			buf = append(buf, h...)
			hashes = append(hashes, buf[start:len(buf):len(buf)])
		}
		batch = append(batch, pending{i, from, len(hashes)})
		if len(batch) == 4096 {
			check()
		}
	})
	if err != nil {
		v.rep.fail(FileProofs, "", "not the proofs' JSON: %v", err)
		return
	}
	check()
	if size != v.size {
		v.rep.fail(FileProofs, "size", "%d, the checkpoint's is %d", size, v.size)
		return
	}
	if n != len(v.obs) {
		v.rep.fail(FileProofs, "entries", "%d proofs for %d observations", n, len(v.obs))
	}
	for i := range min(n, len(v.obs)) {
		o, r := &v.obs[i], &results[i]
		field := fmt.Sprintf("entries[%d]", i)
		if r.otherID {
			v.rep.fail(FileProofs, field+".id", "%q, line %d of %s is %q", r.id, o.n, FileObservations, o.id)
			continue
		}
		if r.err != nil {
			v.rep.fail(FileObservations, o.field(""), "does not hash to leaf %d of the log at the checkpoint in evidence form %d (%v): the line, or its proof (%s %s), was changed", r.leafIndex, o.form, r.err, FileProofs, field)
			continue
		}
		if v.leaves == nil {
			v.leaves = map[uint64]string{}
		}
		v.leaves[r.leafIndex] = o.id
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
	h := treeHasher
	inBundle := make(map[string]bool, len(v.obs))
	for _, o := range v.obs {
		inBundle[o.id] = true
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
