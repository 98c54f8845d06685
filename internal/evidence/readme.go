package evidence

import (
	"fmt"
	"time"
)

// Readme is the bundle's README.txt: what the bundle holds, what each
// level and mark means, the published error rates, and how to check it.
// The figures are those of docs/accuracy.md at the time of this build.
func Readme(target string, cp Checkpoint) string {
	return fmt.Sprintf(readmeText, target, cp.Size, cp.Root, cp.Time.UTC().Format(time.RFC3339))
}

const readmeText = `EVIDENCE BUNDLE FOR TARGET %s

This bundle was written by Vigil ('vigil evidence export'). It holds the
observations Vigil recorded of one target, and what anyone needs to check
them without trusting Vigil, its operator or its database. The check needs
nothing but this file: 'vigil verify BUNDLE.zip' (no network, no database),
or the steps at the end by hand.

The evidence log's signed checkpoint used here: %d observations, root
%x, signed %s.

FILES

  manifest.note       the SHA-256 of every other file, signed by the log's
                      key (a signed note, https://c2sp.org/signed-note)
  observations.jsonl  the target's observations, one JSON object a line, as
                      stored, each with the raw protocol exchange
                      ("transcript", base64) behind it
  checkpoint.note     a signed checkpoint of the evidence log
                      (https://c2sp.org/tlog-checkpoint): how many
                      observations the log held and the Merkle root
                      (RFC 6962) over all of them
  proofs.json         for each observation, its position in the log and the
                      hashes that lead from it to that root
  keys.json           the log's public key, and every sensor key ever used
  batches.json        the sensors' signed batches that cover the
                      observations (empty when the sensors did not sign)
  watchlist.json      the watch-list entries the items matched: hash, list,
                      version and category; never any content
  links.json          the target's links between devices, as recorded:
                      each an inference from identifiers a peer chooses
                      or can copy, never an identification
  isp_annex.json      the annex of the target's ISP request: what was seen
                      but does not make a request row, and why
  README.txt          this text

POSSESSION LEVELS (weakest first; Vigil never states more than the protocol
showed)

  announced     a third party (DHT node, tracker, another peer) named the
                endpoint, or the endpoint announced itself or searched for
                the item. It does not show that the endpoint held any of it.
  acknowledged  the endpoint itself accepted a BitTorrent handshake (or an
                eD2K file request) for the item. A downloader that has
                nothing yet does this too.
  partial       the endpoint advertised some pieces, counted only within
                the file's real piece count.
  complete      the endpoint advertised every piece. A client may lie.
  verified      a piece fetched from that endpoint alone matched its hash
                (hashed in memory, never kept). Off by default.

MARKS (what a reader must know before relying on an observation)

  third_party         someone else named the endpoint; it said nothing itself
  spoofable_source    rests on one UDP datagram whose source could be forged
  unsigned_import     read from a file, or received without a sensor's
                      signature: proves no conversation and is not sensor
                      evidence
  signature_failed    received as a sensor's, but no trusted sensor's
                      signature covered it at ingest (changed, forged,
                      reordered or replayed on the way): not sensor
                      evidence, raises no possession level
  malformed_bitfield, malformed_have
                      the peer broke the protocol; only the valid part counted.
                      A malformed bitfield is never complete: one recorded
                      complete (by a sensor before that rule) counts as
                      partial, or acknowledged with the piece count unknown
  transcript_cut, transcript_paused
                      bytes are missing from the transcript; a record in it
                      says where and how many
  node_id_unchecked, node_id_via_ping
                      the DHT node id may be another's; it links nothing
  non_public_address  the address names no subscriber on its own
  infohash_mismatch   the peer named another file; proves nothing

Only first-hand observations (the endpoint itself talked to the sensor over
TCP or uTP, or announced with a valid DHT token) become rows of an ISP
request; everything else is in the annex.

PUBLISHED ERROR RATES (docs/accuracy.md: 'vigil lab accuracy', a laboratory
network whose truth is known, with peers that lie, forge and replay; it
cannot measure the internet)

  BitTorrent, after the fixes of issue 10 (commit c464fb0), seeds 1-3:
    false-positive rate 0.0%% at every level (announced, acknowledged,
    partial, complete); recall 100%% of detectable pairs; no wrong device
    link; 0 wrong ISP rows of 37-42.
  eD2K and Kad (seeds 1-3 alike): announced 4.3%% false (30 of 690: Kad
    nodes repeating one forged publication that named an innocent
    address; third parties' claims, marked spoofable_source, never ISP
    rows); partial and complete 0.0%%; ISP rows 21 of 21 right.

HOW TO CHECK, BY HAND

  1. manifest.note: check its ed25519 signature with the log key in
     keys.json (signed-note format), then the SHA-256 of each file it lists.
     Compare the log key with the one the operator published or a witness
     holds: a forger could replace every file and the key with them.
  2. checkpoint.note: check its signature with the same key; it gives the
     log's size and root. A witness outside Vigil's database keeps copies
     of these checkpoints: ask for the one of this size.
  3. Each line of observations.jsonl: its canonical form is the JSON object
     without the members whose value is null, "", [] or {}, and so also
     inside the objects it holds, and inside objects that are elements of
     its arrays (in "build", an empty "commit" is left out; an object left
     empty so is {} and is left out too), keys sorted by their bytes, no
     spaces (Go's encoding/json escaping, HTML escaping off), numbers as
     written. What it hashes depends on its evidence form:
     - form 1 (no "evidence_form" in the line): the leaf hash is
       SHA-256(0x00 || canonical form) (RFC 6962);
     - form 2 ("evidence_form":2): the leaf hash is SHA-256(0x00 ||
       canonical form of an object of the line's ingest keys (below) and
       batch_sig, plus "ingest_marks": the line's ingest marks (below),
       in its order, when it has any, and "sensor_sha256": the sensor
       hash of step 4, in lower-case hex).
     proofs.json gives its leaf index and the proof; the RFC 6962
     inclusion proof must lead to the checkpoint's root.
  4. Each observation a sensor signed names its sensor key, chain and
     sequence number. Its sensor hash is SHA-256 of the canonical form
     without the keys ingest adds (country, subdivisions, city, latitude,
     longitude, asn, org, vpn, hosting, geo_db, geo_db_build, agency,
     agency_rule) and batch_sig, and with "marks" without the marks ingest
     sets after the sensor signed (time_implausible; "marks" left out when
     nothing else is in it); in form 2 also without transcript, whose
     bytes it covers only through transcript_sha256: the SHA-256 of the
     transcript's bytes (its base64 decoded) must be transcript_sha256, and
     in form 2 a transcript without transcript_sha256, or a
     transcript_sha256 without its transcript (unless transcript_ref says
     where it is kept), fails. batches.json lists the sensor hashes
     of a batch; each chain step is SHA-256("vigil/sensor-chain/v1\n" ||
     previous || sensor hash), and the sensor's ed25519 signature covers
     "vigil/sensor-batch/v1\nchain <chain>\nseq <n>\nhead <hex>\n".
     A batch with signed_from began at that seq when its sensor signed
     it, the store says, but the store lacks the positions listed in
     missing (refused at ingest, never received, stored marked
     signature_failed, or deleted after it was stored): its chain is
     given from first_seq, which prev links to the signed head; 'vigil
     verify' reports each such gap. No sensor's signature covers
     signed_from or missing: a sensor signs a head, not where its batch
     began, so a batch given from a later seq without them verifies too.
     keys.json lists the sensor keys the store's log holds observations
     of: compare each with the key its sensor published (whoever can
     write to the database could add observations signed with a key of
     their own), or give the published keys to 'vigil verify
     --sensor-keys FILE'.
  5. The transcript (base64) is a sequence of records (docs/evidence.md,
     "Transcripts"), each naming the address it went to or came from: only
     what came from the observation's own ip and port backs it. For a
     BitTorrent peer_probe, the peer's 68-byte
     handshake must name the item's info-hash; the pieces claimed must be
     no more than the peer's bitfield, have and have_all messages name
     within the piece count. For a dht_announce, the peer's announce_peer
     must name the item and carry the token the sensor gave.
`
