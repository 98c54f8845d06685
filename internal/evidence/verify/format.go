package verify

import "encoding/json"

// The bundle's files. Every file but the manifest is listed in the
// manifest with its SHA-256; the manifest is a signed note.
const (
	FileManifest     = "manifest.note"      // signed: every other file's SHA-256
	FileReadme       = "README.txt"         // for a court: levels, marks, error rates, how to check
	FileObservations = "observations.jsonl" // the target's observations, one JSON line each, as stored
	FileProofs       = "proofs.json"        // an inclusion proof of each observation against the checkpoint
	FileCheckpoint   = "checkpoint.note"    // the signed checkpoint the proofs lead to
	FileKeys         = "keys.json"          // the log's key and every sensor key ever used
	FileBatches      = "batches.json"       // sensors' signed batches covering the observations
	FileWatchlist    = "watchlist.json"     // the watch-list entries matched: hash, list, version
	FileLinks        = "links.json"         // the target's links between devices
	FileISPAnnex     = "isp_annex.json"     // the annex of the target's ISP request
	FilePurged       = "purged.json"        // only when some were purged: the target's observations purged under retention, each leaf with its proof
)

// Names in the signed notes.
const (
	// LogOrigin is the first line of every checkpoint of the evidence log
	// (C2SP tlog-checkpoint).
	LogOrigin = "vigil/evidence-log/v1"
	// LogKeyName names the log's key in its notes' signature lines.
	LogKeyName = "vigil-evidence-log"
	// ManifestOrigin is the first line of a bundle's manifest note.
	ManifestOrigin = "vigil/evidence-bundle/v1"
	// BatchContext is the first line of what a sensor signs for a batch.
	BatchContext = "vigil/sensor-batch/v1"
	// ChainContext prefixes each step of a sensor's hash chain.
	ChainContext = "vigil/sensor-chain/v1\n"
)

// Proofs is proofs.json.
type Proofs struct {
	// Size is the checkpoint's size the proofs lead to.
	Size uint64 `json:"size"`
	// Entries has one proof per observation, in the order of
	// observations.jsonl.
	Entries []Proof `json:"entries"`
}

// Proof is the inclusion proof of one observation.
type Proof struct {
	ID        string   `json:"id"`
	LeafIndex uint64   `json:"leaf_index"`
	Hashes    [][]byte `json:"hashes"` // base64 in JSON
}

// Purged is purged.json, in a bundle only when some of the target's
// observations were purged under retention (docs/deployment.md): their
// content is gone, their leaves are not. Each entry's leaf is proven in
// the log at the checkpoint, so that the bundle shows the observation
// existed and was logged; what it said cannot be checked.
type Purged struct {
	Note    string        `json:"note"`
	Entries []PurgedEntry `json:"entries"`
}

// PurgedEntry is one purged observation.
type PurgedEntry struct {
	ID string `json:"id"`
	// What is "transcripts" (the row stays, without its transcript:
	// Remaining) or "observations" (the row is gone).
	What      string   `json:"what"`
	Time      string   `json:"time"`      // the observation's time, RFC 3339
	PurgedAt  string   `json:"purged_at"` // RFC 3339
	LeafIndex uint64   `json:"leaf_index"`
	Leaf      []byte   `json:"leaf"`   // the leaf hash the log holds (base64 in JSON)
	Hashes    [][]byte `json:"hashes"` // its inclusion proof to the checkpoint
	// Remaining is the row as now stored (its JSON line), for a purged
	// transcript: it no longer hashes to Leaf and is not checked.
	Remaining json.RawMessage `json:"remaining,omitempty"`
}

// Keys is keys.json.
type Keys struct {
	// Log is the signed-note verifier key of the log (name+hash+key).
	Log string `json:"log"`
	// Sensors are every sensor key the log has seen, oldest first.
	Sensors []SensorKey `json:"sensors"`
}

// SensorKey is one sensor's public key.
type SensorKey struct {
	Sensor    string `json:"sensor"`
	PublicKey string `json:"public_key"` // hex ed25519
	FirstSeen string `json:"first_seen"` // RFC 3339
}

// Batch is one sensor batch in batches.json: the chain hashes from the
// first observation the bundle needs to the signed head.
type Batch struct {
	SensorKey string   `json:"sensor_key"` // hex ed25519 public key
	Chain     string   `json:"chain"`      // the chain's id (hex)
	FirstSeq  uint64   `json:"first_seq"`  // seq of Leaves[0]
	Prev      string   `json:"prev"`       // hex chain hash before FirstSeq
	Leaves    []string `json:"leaves"`     // hex sensor hash of each observation FirstSeq..head
	Head      string   `json:"head"`       // hex chain hash of the head
	Signature string   `json:"signature"`  // hex ed25519 over BatchMessage
	// SignedFrom, when not 0, is the seq its sensor's signed batch began
	// at, the store says, before FirstSeq: the store's chain lacks a
	// position between (Missing: refused at ingest, never received,
	// stored marked signature_failed, or deleted after it was stored),
	// so the chain is given from FirstSeq, where the signature still
	// covers it through Prev. 'vigil verify' reports it (Report.Gaps).
	// Absent in bundles of whole batches. No sensor's signature covers
	// either field (a sensor signs a head, not where its batch began).
	SignedFrom uint64   `json:"signed_from,omitempty"`
	Missing    []uint64 `json:"missing,omitempty"` // positions SignedFrom..FirstSeq-1 not in the store's chain
}

// WatchEntry is one watch-list entry an observation's item matched.
type WatchEntry struct {
	ItemKind string `json:"item_kind"`
	Item     string `json:"item"`
	List     string `json:"list"`
	Version  string `json:"version"`
	Category string `json:"category"`
}
