package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

func evidenceCommand() *command {
	return &command{
		name:    "evidence",
		summary: "Sign the evidence log and export a target's evidence bundle.",
		usage:   "vigil evidence COMMAND",
		help: `
Every observation the store keeps is a leaf of the evidence log, an
append-only RFC 6962 Merkle log kept in the store (docs/evidence.md,
"The evidence log"). Its checkpoints are signed with the log's ed25519
key (a file in --key-dir, made when missing, kept outside the store) and
appended to a witness file outside the store.
`,
		subs: []*command{evidenceCheckpointCommand(), evidenceExportCommand()},
	}
}

// keyDir is the folder of the signing keys: the flag, else
// $VIGIL_KEY_DIR, else vigil/keys in the user's config folder
// ($XDG_CONFIG_HOME, else $HOME/.config), else (no home: a service
// account, a test) the store's path + ".keys", which the log says.
func (a *app) keyDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d := a.getenv("VIGIL_KEY_DIR"); d != "" {
		return d, nil
	}
	if d := a.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "vigil", "keys"), nil
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "vigil", "keys"), nil
	}
	if a.dbPath == "" || strings.Contains(a.dbPath, "://") {
		return "", usagef("--key-dir: no $HOME to put the keys under: give --key-dir")
	}
	d := a.dbPath + ".keys"
	a.log.Warn("no $HOME: signing keys kept beside the store; give --key-dir to keep them elsewhere", "key_dir", d)
	return d, nil
}

// logKeyFile and logWitnessFile are the evidence log's key and default
// witness file in a key folder.
const (
	logKeyFile     = "evidence-log.key"
	logWitnessFile = "evidence-log.witness"
)

func (a *app) logKey(dirFlag string) (ed25519.PrivateKey, string, error) {
	dir, err := a.keyDir(dirFlag)
	if err != nil {
		return nil, "", err
	}
	key, err := evidence.LoadOrCreateKey(filepath.Join(dir, logKeyFile))
	return key, dir, err
}

func (a *app) logWitnesses(dir, path, url string) []evidence.Witness {
	if path == "" {
		path = filepath.Join(dir, logWitnessFile)
	}
	// The file is read back too: each checkpoint is compared with the
	// witness's notes as well as the store's (evidence.WitnessReader).
	ws := []evidence.Witness{evidence.FileWitness{Path: path}}
	if url != "" {
		// Read back too: a GET of the URL returns the notes it holds.
		ws = append(ws, evidence.URLWitness{HTTPWitness: audit.HTTPWitness{URL: url}})
	}
	return ws
}

func evidenceCheckpointCommand() *command {
	return &command{
		name:    "checkpoint",
		summary: "Sign the evidence log's current size and root now.",
		usage:   "vigil evidence checkpoint [--key-dir DIR] [--witness PATH] [--witness-url URL]",
		help: `
Reads every leaf of the evidence log, computes its RFC 6962 root, signs
size and root as a C2SP tlog-checkpoint note (origin
"vigil/evidence-log/v1", key name "vigil-evidence-log", a "time" line),
stores the checkpoint, then appends the note to the witness file
(--witness, default evidence-log.witness in --key-dir) and, with
--witness-url, POSTs it there. The checkpoint is stored before any witness
sees it. Nothing is signed when the leaves no longer give the root of a
checkpoint signed before, the store's or a witness's (a leaf changed or
removed in the database). A --witness-url is read back like the file: a
GET of the URL must return the notes it holds (each followed by a blank
line); the log is compared with the largest checkpoint it returns, a
witness that holds fewer checkpoints than the store or the other witness
(rolled back, or lost notes) is reported once the new checkpoint is
signed, and one that does not return the note just POSTed is reported as
not keeping it (exit 1 in both cases, the checkpoint stored).

It prints the size, the root and the log's verifier key (for 'vigil verify
--log-key').

Examples:
  vigil evidence checkpoint
  vigil evidence checkpoint --key-dir /etc/vigil/keys --witness /mnt/worm/evidence.witness
`,
		setup: func(fs *flag.FlagSet) runFunc {
			keyDir := fs.String("key-dir", "", "`folder` of Vigil's signing keys, outside the store (default $VIGIL_KEY_DIR, else vigil/keys in the user's config folder, else beside the store)")
			witness := fs.String("witness", "", "witness `file` the signed checkpoint is appended to (default evidence-log.witness in --key-dir)")
			witnessURL := fs.String("witness-url", "", "also POST the signed checkpoint to this `URL`, and read it back (GET returns the notes it holds)")
			return func(ctx context.Context, a *app, args []string) error {
				key, dir, err := a.logKey(*keyDir)
				if err != nil {
					return err
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				sq, ok := st.(store.LogStore)
				if !ok {
					return fmt.Errorf("store %s keeps no evidence log", redactDSN(a.dbPath))
				}
				c, err := evidence.MakeCheckpoint(ctx, sq, key, time.Now(), a.logWitnesses(dir, *witness, *witnessURL)...)
				if c.Note == nil {
					return err
				}
				vkey, _ := evidence.VerifierKey(key.Public().(ed25519.PublicKey))
				fmt.Fprintf(a.stdout, "evidence log checkpoint: size %d, root %x\nlog key %s\n", c.Size, c.Root, vkey)
				return err
			}
		},
	}
}

func evidenceExportCommand() *command {
	return &command{
		name:    "export",
		summary: "Write a target's evidence bundle (a zip file that 'vigil verify' checks).",
		usage:   "vigil evidence export --target ID --out FILE.zip [--case NUMBER] [--key-dir DIR] [--witness PATH]",
		help: `
Writes one zip file with the target's observations as stored (each with its
transcript), an inclusion proof of each in the evidence log against a
signed checkpoint, the sensors' batch signatures and public keys, the
watch-list entries the items matched (hash, list, list version, category:
never content), the target's device links, the annex of its ISP request,
and a README for a court (levels, marks, the error rates of
docs/accuracy.md, how to check by hand). A manifest of every file's
SHA-256 is signed with the log's key.

Before it writes, each observation's stored row is hashed again and
compared with its leaf: a row edited after it was logged stops the export.
When the latest checkpoint does not cover every observation of the target,
a new one is signed first (and handed to the witness, as 'vigil evidence
checkpoint' does).

The export is recorded in the audit trail, with --case as its purpose
(default "evidence bundle").

Examples:
  vigil evidence export --target T-000001-95 --out T-000001-95.zip
  vigil verify T-000001-95.zip
`,
		setup: func(fs *flag.FlagSet) runFunc {
			id := fs.String("target", "", "target `ID` (required)")
			out := fs.String("out", "", "the bundle `FILE.zip` to write (required)")
			caseNo := fs.String("case", "", "the case `number` the bundle is made for, recorded in the audit trail")
			keyDir := fs.String("key-dir", "", "`folder` of Vigil's signing keys, outside the store (default $VIGIL_KEY_DIR, else vigil/keys in the user's config folder, else beside the store)")
			witness := fs.String("witness", "", "witness `file` a new checkpoint is appended to (default evidence-log.witness in --key-dir)")
			return func(ctx context.Context, a *app, args []string) error {
				if *id == "" || *out == "" {
					return usagef("--target and --out are required")
				}
				purpose := "evidence bundle"
				if *caseNo != "" {
					p, err := audit.RequirePurpose(*caseNo)
					if err != nil {
						return usagef("--case: %v", err)
					}
					purpose = p
				}
				key, dir, err := a.logKey(*keyDir)
				if err != nil {
					return err
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				e, err := bundleOf(ctx, sq, *id, purpose, time.Now())
				if err != nil {
					return err
				}
				if err := a.auditCLIPurpose(ctx, sq, audit.ActionExport, "target:"+*id, purpose,
					map[string]any{"what": "evidence-bundle", "observations": len(e.IDs), "purged": len(e.Purged), "file": filepath.Base(*out)}); err != nil {
					return err
				}
				ids := slices.Clone(e.IDs)
				for _, p := range e.Purged {
					ids = append(ids, p.ID)
				}
				if err := coverCheckpoint(ctx, a, sq, key, dir, *witness, ids); err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := evidence.WriteBundle(ctx, &buf, sq, key, e); err != nil {
					return err
				}
				if err := os.WriteFile(*out, buf.Bytes(), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "wrote %s: target %s, %d observations\n", *out, *id, len(e.IDs))
				if len(e.Purged) > 0 {
					fmt.Fprintf(a.stdout, "%d more purged under retention: leaves and proofs only (%s)\n", len(e.Purged), verify.FilePurged)
				}
				return nil
			}
		},
	}
}

// coverCheckpoint signs a checkpoint when the latest does not cover ids.
func coverCheckpoint(ctx context.Context, a *app, sq backend, key ed25519.PrivateKey, dir, witness string, ids []string) error {
	cps, err := sq.LogCheckpoints(ctx)
	if err != nil {
		return err
	}
	idx, err := sq.LogIndexes(ctx, ids)
	if err != nil {
		return err
	}
	need := uint64(0)
	for _, i := range idx {
		need = max(need, i+1)
	}
	ws := a.logWitnesses(dir, witness, "")
	if len(cps) > 0 && cps[len(cps)-1].Size >= need {
		// No new checkpoint: the witness file is still read back and
		// compared with the log, as before a checkpoint is signed.
		behind, err := evidence.CheckWitnessed(ctx, sq, key, ws...)
		if behind != nil {
			a.log.Warn("evidence export: a witness is behind the store's checkpoints", "err", behind)
		}
		return err
	}
	_, err = evidence.MakeCheckpoint(ctx, sq, key, time.Now(), ws...)
	return err
}

// bundleOf gathers what a target's bundle holds besides the log: its
// observations (oldest first), the watch-list entries of their items, its
// links and its ISP request's annex.
// purgedOf moves the target's observations whose transcript was purged
// under retention from e.IDs to e.Purged (their rows no longer hash to
// their leaves), and adds those whose rows were purged.
func purgedOf(ctx context.Context, sq backend, target string, e *evidence.Export) error {
	ps, err := sq.PurgedObservations(ctx, e.IDs)
	if err != nil {
		return err
	}
	kept := e.IDs[:0]
	for _, id := range e.IDs {
		if p, ok := ps[id]; ok {
			e.Purged = append(e.Purged, evidence.PurgedObservation{ID: id, What: string(p.What), Time: p.Time, At: p.At})
			continue
		}
		kept = append(kept, id)
	}
	e.IDs = kept
	gone, err := sq.PurgedOfTarget(ctx, target)
	if err != nil {
		return err
	}
	for _, p := range gone {
		e.Purged = append(e.Purged, evidence.PurgedObservation{ID: p.ObservationID, What: string(p.What), Time: p.Time, At: p.At})
	}
	return nil
}

func bundleOf(ctx context.Context, sq backend, id, purpose string, now time.Time) (evidence.Export, error) {
	d, err := sq.TargetWithTimeline(ctx, id, analysis.AllAgencies, 1<<20)
	if errors.Is(err, analysis.ErrNotFound) {
		return evidence.Export{}, fmt.Errorf("target %s: no such target", id)
	}
	if err != nil {
		return evidence.Export{}, err
	}
	e := evidence.Export{Target: d.ID, Now: now}
	seen := map[string]bool{}
	for _, t := range slices.Backward(d.Timeline) {
		e.IDs = append(e.IDs, t.ID)
		key := t.Kind + ":" + t.Hash
		if seen[key] {
			continue
		}
		seen[key] = true
		k, err := hashkind.ParseKind(t.Kind)
		if err != nil {
			return e, err
		}
		digest, err := hex.DecodeString(t.Hash)
		if err != nil {
			return e, fmt.Errorf("timeline hash %q: %w", t.Hash, err)
		}
		h, err := hashkind.New(k, digest)
		if err != nil {
			return e, err
		}
		recs, err := sq.Lookup(ctx, h)
		if err != nil {
			return e, err
		}
		for _, r := range recs {
			e.Watch = append(e.Watch, verify.WatchEntry{ItemKind: t.Kind, Item: t.Hash, List: r.List.Name,
				Version: r.List.Version, Category: r.Entry.Category})
		}
	}
	if err := purgedOf(ctx, sq, d.ID, &e); err != nil {
		return e, err
	}
	// links.json: the links as recorded, and the sentence that each is
	// an inference, never an identification.
	links := struct {
		Warning isp.Note        `json:"warning"`
		Links   []analysis.Link `json:"links"`
	}{isp.LinksWarning(), d.Links}
	if links.Links == nil {
		links.Links = []analysis.Link{}
	}
	if e.Links, err = json.Marshal(links); err != nil {
		return e, err
	}
	req, err := buildISPRequest(ctx, sq, id, analysis.AllAgencies, purpose, isp.DefaultRetention(), now, nil)
	if err != nil {
		return e, err
	}
	if e.Annex, err = json.Marshal(req.Annex); err != nil {
		return e, err
	}
	return e, nil
}

func verifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "Check an evidence bundle with nothing but the bundle.",
		usage:   "vigil verify FILE.zip [--log-key KEY] [--sensor-keys FILE] [--json]",
		help: `
Checks an evidence bundle ('vigil evidence export') offline: it opens no
store and no network connection. It checks the manifest's signature and
every file's SHA-256; the checkpoint's signature; each observation's RFC
6962 inclusion proof against the checkpoint; each sensor batch's hash chain
and ed25519 signature, and that each signed observation is the one its
sensor signed; and it decodes each transcript and compares it with what
the observation claims, from the bytes the transcript keeps (the handshake
names the info-hash and the peer id, the peer said more than its handshake
or held the connection, the pieces claimed are no more than the peer
advertised within the piece count, the listen port is its extension
handshake's, an eD2K client's file status backs its level, a DHT announce
carries the token the sensor gave). It prints what it
checked and every problem, naming the file and the field.

--log-key pins the log's verifier key (as 'vigil evidence checkpoint'
prints it, or as the witness's notes are signed): without it, the bundle's
own key is used, and a forger who rewrote every file could have signed
them with a key of their own.

--sensor-keys FILE pins the sensor keys (one hexadecimal ed25519 public key
a line, '#' comments, as 'vigil sensor key rotate' prints them and 'vigil
ingest --sensor-keys' reads them): a batch signed by any other key then
covers nothing, and its observations fail. A key followed on its line by
a sensor's name (its --id) is bound to that sensor (list the key on one
line per sensor that shares it): an observation it signed that names
another sensor fails, naming both. Without it, every key the bundle's
keys.json lists is taken: whoever could write to the store could have
added observations under a key of their own ('vigil ingest' stores what
a key it does not trust signed as signature_failed, never in the sensor
chains a bundle checks). Either way, a signed observation must name a
sensor that keys.json lists with its key (the sensor whose chain the
log holds under it): one signed in another sensor's name fails.

Exit status: 0 when everything checks, 1 otherwise.

A sensors.keys file:
  # key                                                              sensor
  6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1 bittorrent-1
  6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1 ed2k-1

Examples:
  vigil verify T-000001-95.zip
  vigil verify --log-key 'vigil-evidence-log+5e1c6a2f+AQ...' --json T-000001-95.zip
  vigil verify --log-key 'vigil-evidence-log+5e1c6a2f+AQ...' --sensor-keys sensors.keys T-000001-95.zip
`,
		setup: func(fs *flag.FlagSet) runFunc {
			logKey := fs.String("log-key", "", "the evidence log's verifier `key` to trust (name+hash+key)")
			keysFile := fs.String("sensor-keys", "", "`file` of the sensor keys to trust, one hexadecimal ed25519 public key a line, optionally followed by the name of the sensor it signs for (# comments); default: every key the bundle lists")
			asJSON := fs.Bool("json", false, "print the report as one JSON object")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) != 1 {
					return usagef("want one bundle FILE.zip")
				}
				opt := verify.Options{LogKey: *logKey}
				if *keysFile != "" {
					data, err := os.ReadFile(*keysFile)
					if err != nil {
						return fmt.Errorf("--sensor-keys: %w", err)
					}
					keys, names, err := evidence.ParseSensorKeys(*keysFile, data)
					if err != nil {
						return fmt.Errorf("--sensor-keys: %w", err)
					}
					for _, k := range keys {
						opt.SensorKeys = append(opt.SensorKeys, hex.EncodeToString(k))
						if ns, ok := names[string(k)]; ok {
							if opt.SensorNames == nil {
								opt.SensorNames = map[string][]string{}
							}
							opt.SensorNames[hex.EncodeToString(k)] = ns
						}
					}
				}
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return err
				}
				rep, err := verify.Verify(f, st.Size(), opt)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if *asJSON {
					if err := writeIndentedJSON(a.stdout, rep); err != nil {
						return err
					}
				} else {
					printVerifyReport(a, args[0], rep)
				}
				if !rep.OK() {
					return errSilent
				}
				return nil
			}
		},
	}
}

func printVerifyReport(a *app, name string, rep *verify.Report) {
	w := visibleLines{a.stdout}
	fmt.Fprintf(w, "bundle %s, target %s\n", name, rep.Target)
	if rep.LogKeyPinned {
		fmt.Fprintf(w, "log key %s: the key given with --log-key\n", rep.LogKey)
	} else {
		fmt.Fprintf(w, "log key %s: taken from the bundle itself and NOT compared with a published key.\n", rep.LogKey)
		fmt.Fprintln(w, "  Every signature below is checked against it, and sensor keys are those it signed: compare it")
		fmt.Fprintln(w, "  with the key the operator publishes ('vigil evidence checkpoint' prints it; the witness's notes")
		fmt.Fprintln(w, "  are signed with it), or run again with --log-key KEY.")
	}
	fmt.Fprintf(w, "checkpoint %s\n", rep.Checkpoint)
	fmt.Fprintf(w, "files checked against the signed manifest: %d\n", rep.Files)
	fmt.Fprintf(w, "observations: %d (evidence form 1: %d, form 2: %d); inclusion proofs checked: %d\n", rep.Observations, rep.Form1, rep.Form2, rep.Proofs)
	fmt.Fprintf(w, "sensor batches checked: %d; observations under a checked sensor signature: %d\n", rep.Batches, rep.Signed)
	if rep.SensorKeysPinned {
		fmt.Fprintln(w, "sensor keys: the keys given with --sensor-keys; a batch under any other key covers nothing")
	}
	if len(rep.SensorKeys) > 0 {
		if !rep.SensorKeysPinned {
			fmt.Fprintln(w, "sensor keys that signed them (from keys.json, under the log key; whoever can write to the database")
			fmt.Fprintln(w, "  can add observations signed with a key of their own: compare each with the key its sensor published,")
			fmt.Fprintln(w, "  or run again with --sensor-keys FILE):")
		} else {
			fmt.Fprintln(w, "sensor keys that signed them:")
		}
		for _, k := range rep.SensorKeys {
			fmt.Fprintf(w, "  %s %s: %d observations (first seen %s)\n", k.Sensor, k.PublicKey, k.Observations, k.FirstSeen)
		}
	}
	if rep.Unsigned > 0 {
		fmt.Fprintf(w, "observations no sensor signed (not sensor evidence: imports, or stored before sensors signed): %d\n", rep.Unsigned)
		if rep.SignatureFailed > 0 {
			fmt.Fprintf(w, "  of which marked signature_failed (received as a sensor's, but no trusted sensor's signature covered them at ingest: changed, forged, reordered or replayed on the way): %d\n", rep.SignatureFailed)
		}
	}
	fmt.Fprintf(w, "transcripts compared with their claims: %d\n", rep.Transcripts)
	if rep.TranscriptsNotCompared > 0 {
		fmt.Fprintf(w, "transcripts decoded, of methods whose claims are not compared (tracker, PEX, DHT get_peers, ...): %d\n", rep.TranscriptsNotCompared)
	}
	if rep.Purged > 0 {
		fmt.Fprintf(w, "PURGED under retention: %d observations of the target (%d of them only their transcript): the log proves each leaf\n", rep.Purged, rep.PurgedTranscripts)
		fmt.Fprintf(w, "  was logged (%s), but their content is gone and was not checked\n", verify.FilePurged)
	}
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "GAP in a signed sensor batch: %s\n", g)
		fmt.Fprintln(w, "  the observations of the bundle checked from there on are signed; those positions are not in the store's chain")
	}
	gaps := ""
	if len(rep.Gaps) > 0 {
		gaps = " (with the gap above)"
		if len(rep.Gaps) > 1 {
			gaps = fmt.Sprintf(" (with the %d gaps above)", len(rep.Gaps))
		}
	}
	if rep.OK() && rep.LogKeyPinned {
		fmt.Fprintf(w, "OK: everything checks%s\n", gaps)
		return
	}
	if rep.OK() {
		fmt.Fprintf(w, "OK against the bundle's own log key: everything checks%s, but who signed it is shown only once that key is compared with the published one (--log-key)\n", gaps)
		return
	}
	fmt.Fprintf(w, "FAILED: %d problems\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// visibleLines writes what it is given with every character that is
// not printable, but its line breaks, written as observe.EscapeText
// writes it: a verify report prints what a bundle (hostile input) says,
// and a terminal escape, a carriage return or a bidi override in it
// would rewrite what the reader sees (ESC [8m hides every line after).
type visibleLines struct{ w io.Writer }

func (v visibleLines) Write(b []byte) (int, error) {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = observe.EscapeText(l)
	}
	if _, err := io.WriteString(v.w, strings.Join(lines, "\n")); err != nil {
		return 0, err
	}
	return len(b), nil
}

// sensorKeyFile is a sensor's signing key in a key folder.
const sensorKeyFile = "sensor.key"

// sensorKey reads the sensor key in dir (the --key-dir flag's value, or
// its default), making it on first start, and adds sensor (the sensor's
// --id) to the names the key signs for (sensor.names: an ingest that
// trusts the folder binds the key to them).
func (a *app) sensorKey(dirFlag, sensor string) (ed25519.PrivateKey, error) {
	dir, err := a.keyDir(dirFlag)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, sensorKeyFile)
	key, err := evidence.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	if err := writeSensorPublicKey(path, key.Public().(ed25519.PublicKey)); err != nil {
		// The sensor signs all the same; an ingest of the folder reads
		// the seed instead (and says so).
		a.log.Warn("sensor public key file not written", "err", err)
	}
	if err := addSensorName(path, sensor); err != nil {
		// The sensor signs all the same; an ingest of the folder that
		// binds the key to other names fails what it signs.
		a.log.Warn("sensor name not added to the key's names file: an ingest trusting this key folder may fail this sensor's observations", "sensor", sensor, "err", err)
	}
	a.log.Info("sensor batches signed", "key", path, "public_key", hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	return key, nil
}

// logCheckpointer returns a service that signs the evidence log every
// interval (when it grew) and once more when it stops, and the function
// that signs the last checkpoint once ingest has drained (the service
// stops before ingest does).
func (a *app) logCheckpointer(ls store.LogStore, dirFlag string, interval time.Duration) (service func(context.Context) error, final func(context.Context), err error) {
	key, dir, err := a.logKey(dirFlag)
	if err != nil {
		return nil, nil, err
	}
	ws := a.logWitnesses(dir, "", "")
	var last uint64
	sign := func(ctx context.Context) {
		n, err := ls.LogSize(ctx)
		if err != nil || n == last {
			return
		}
		c, err := evidence.MakeCheckpoint(ctx, ls, key, time.Now(), ws...)
		if err != nil {
			a.log.Error("evidence log checkpoint", "size", c.Size, "err", err)
		}
		if c.Note != nil {
			last = c.Size
		}
	}
	service = func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				sign(ctx)
			}
		}
	}
	return service, sign, nil
}

// keyFlags are the signing flags of the commands that run sensors or
// ingest.
type keyFlags struct {
	dir      string
	interval time.Duration
}

func defineKeyFlags(fs *flag.FlagSet) *keyFlags {
	kf := &keyFlags{}
	fs.StringVar(&kf.dir, "key-dir", "", "`folder` of the signing keys (sensor.key signs the sensor's batches, its public key written beside it as sensor.pub, which ingest reads; evidence-log.key the log's checkpoints; made when missing) and of the log's witness file, outside the store (default $VIGIL_KEY_DIR, else vigil/keys in the user's config folder, else beside the store)")
	fs.DurationVar(&kf.interval, "evidence-interval", 5*time.Minute, "sign the evidence log's checkpoint this often while observations are stored (and once at the end)")
	return kf
}

func sensorKeyCommand() *command {
	return &command{
		name:    "key",
		summary: "Manage the sensor's signing key.",
		usage:   "vigil sensor key COMMAND",
		help: `
A sensor signs each batch of observations it publishes with its ed25519 key,
sensor.key in --key-dir (made on the sensor's first start, kept outside the
store), and writes its public key beside it, sensor.pub (hex), which 'vigil
ingest' reads to trust the sensor, and adds its name (--id) to
sensor.names (one name a line), which binds the key to the sensors that
share the folder: an ingest trusting the folder fails what the key signs
in any other sensor's name. Every key that signed observations stays
published: a bundle lists every sensor key the evidence log holds
observations of, with the sensors that used it.
`,
		subs: []*command{sensorKeyRotateCommand()},
	}
}

func sensorKeyRotateCommand() *command {
	return &command{
		name:    "rotate",
		summary: "Replace the sensor's signing key with a new one.",
		usage:   "vigil sensor key rotate [--key-dir DIR]",
		help: `
Renames sensor.key in --key-dir to sensor-<UTC time>.key.retired (its
public key to sensor-<UTC time>.pub.retired, the sensor names it signed
for, sensor.names, copied to sensor-<UTC time>.names.retired) and makes a
new sensor.key and sensor.pub, which signs for the same names; a sensor started afterwards signs with the new key (a
running one keeps the key it started with until it is restarted). Prints
both public keys (hex). Observations signed with the old key still verify:
their bundles carry the key that signed them, and an ingest that trusts
its key folder still trusts the retired key.

Examples:
  vigil sensor key rotate --key-dir /etc/vigil/keys
`,
		setup: func(fs *flag.FlagSet) runFunc {
			keyDir := fs.String("key-dir", "", "`folder` of the signing keys, outside the store (default $VIGIL_KEY_DIR, else vigil/keys in the user's config folder, else beside the store)")
			return func(ctx context.Context, a *app, args []string) error {
				dir, err := a.keyDir(*keyDir)
				if err != nil {
					return err
				}
				path := filepath.Join(dir, sensorKeyFile)
				old, err := evidence.LoadOrCreateKey(path)
				if err != nil {
					return err
				}
				retired := filepath.Join(dir, "sensor-"+time.Now().UTC().Format("20060102T150405.000000000Z")+".key.retired")
				// The retired key's public key and names first: an ingest
				// reading the folder meanwhile finds them, not the seed.
				// sensor.names stays: the same sensors sign with the new key.
				if err := writeSensorPublicKey(retired, old.Public().(ed25519.PublicKey)); err != nil {
					return err
				}
				if err := copySensorNames(path, retired); err != nil {
					return err
				}
				if err := os.Rename(path, retired); err != nil {
					return err
				}
				key, err := evidence.LoadOrCreateKey(path)
				if err != nil {
					return err
				}
				if err := writeSensorPublicKey(path, key.Public().(ed25519.PublicKey)); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "retired %s (public key %x)\nnew %s (public key %x)\n", retired, old.Public(), path, key.Public())
				return nil
			}
		},
	}
}
