package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoints leave the store as signed notes in the C2SP tlog-checkpoint
// layout (https://c2sp.org/tlog-checkpoint, signed with
// https://c2sp.org/signed-note, as Go's checksum database and the
// Sigstore and Trillian witnesses do):
//
//	vigil/audit-chain/v1            origin: which log this is
//	1234                            the chain's length: seq of its head
//	<base64 of record 1234's hash>  the head's hash
//	time 2026-12-06T10:00:00Z       extension line: when it was signed
//
//	— vigil-audit <base64 key hash and ed25519 signature>
//
// Unlike a transparency log's checkpoint, the third line is the hash of
// the chain's last record, not a Merkle tree root: the audit trail is a
// hash chain, and the head's hash commits to every record before it.
const (
	// NoteOrigin is the first line of every checkpoint note.
	NoteOrigin = "vigil/audit-chain/v1"
	// NoteKeyName names the signing key in the note's signature line.
	NoteKeyName = "vigil-audit"
)

// noteSigner is the signed-note form of an ed25519 checkpoint key.
func noteSigner(key ed25519.PrivateKey) (note.Signer, error) {
	vkey, err := note.NewEd25519VerifierKey(NoteKeyName, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	// vkey is name+hash+key; the signer key is PRIVATE+KEY+name+hash+(alg, seed).
	parts := strings.Split(vkey, "+")
	skey := "PRIVATE+KEY+" + NoteKeyName + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	return note.NewSigner(skey)
}

// NoteVerifierKey returns the signed-note verifier key of pub
// ("vigil-audit+<hash>+<base64>"), as other signed-note tools name it.
func NoteVerifierKey(pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(NoteKeyName, pub)
}

// CheckpointNote returns c as a signed note (see NoteOrigin), signed with
// key.
func CheckpointNote(c Checkpoint, key ed25519.PrivateKey) ([]byte, error) {
	s, err := noteSigner(key)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key: %w", err)
	}
	text := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", NoteOrigin, c.Seq, base64.StdEncoding.EncodeToString(c.Hash),
		c.Time.UTC().Format(time.RFC3339Nano))
	return note.Sign(&note.Note{Text: text}, s)
}

// ErrNoteSignature is wrapped by OpenCheckpointNote when a note is not
// signed by the expected key.
var ErrNoteSignature = errors.New("not signed by the audit checkpoint key")

// OpenCheckpointNote parses a checkpoint note. With pub it checks the
// signature (ErrNoteSignature if it does not verify); with pub nil it
// only parses, and the checkpoint is unauthenticated.
func OpenCheckpointNote(msg []byte, pub ed25519.PublicKey) (Checkpoint, error) {
	var n *note.Note
	if pub != nil {
		vkey, err := note.NewEd25519VerifierKey(NoteKeyName, pub)
		if err != nil {
			return Checkpoint{}, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return Checkpoint{}, err
		}
		if n, err = note.Open(msg, note.VerifierList(v)); err != nil {
			return Checkpoint{}, fmt.Errorf("%w (key %s): %v", ErrNoteSignature, KeyID(pub), err)
		}
	} else {
		var err error
		n, err = note.Open(msg, nil)
		var une *note.UnverifiedNoteError
		if !errors.As(err, &une) {
			return Checkpoint{}, fmt.Errorf("malformed checkpoint note: %v", err)
		}
		n = une.Note
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 4 || lines[0] != NoteOrigin {
		return Checkpoint{}, fmt.Errorf("checkpoint note: want the origin %q, a length, a hash and a time", NoteOrigin)
	}
	seq, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || seq < 1 || lines[1] != strconv.FormatInt(seq, 10) {
		return Checkpoint{}, fmt.Errorf("checkpoint note: length %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint note: hash %q", lines[2])
	}
	ts, ok := strings.CutPrefix(lines[3], "time ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint note: time line %q", lines[3])
	}
	c := Checkpoint{Seq: seq, Hash: h, Time: t.UTC()}
	if pub != nil {
		c.KeyID = KeyID(pub)
	}
	return c, nil
}

// MaxWitnessNote bounds one note read from a witness, in bytes.
const MaxWitnessNote = 4 << 10

// ReadWitness reads the notes of a witness file (each note followed by a
// blank line) and opens each as OpenCheckpointNote does. An error names
// the note (1-based) and its line; a torn last note (a write cut short)
// is an error too: the witness is evidence and is read as it is.
func ReadWitness(r io.Reader, pub ed25519.PublicKey) ([]Checkpoint, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), MaxWitnessNote)
	var out []Checkpoint
	var cur bytes.Buffer
	inSigs, line, start := false, 0, 1
	flush := func() error {
		c, err := OpenCheckpointNote(cur.Bytes(), pub)
		if err != nil {
			return fmt.Errorf("witness note %d (line %d): %w", len(out)+1, start, err)
		}
		out = append(out, c)
		cur.Reset()
		inSigs = false
		return nil
	}
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case l == "" && cur.Len() == 0:
			start = line + 1
			continue
		case l == "" && !inSigs:
			inSigs = true
		case l == "" && inSigs:
			if err := flush(); err != nil {
				return out, err
			}
			start = line + 1
			continue
		}
		cur.WriteString(l)
		cur.WriteByte('\n')
		if cur.Len() > MaxWitnessNote {
			return out, fmt.Errorf("witness note %d (line %d): longer than %d bytes", len(out)+1, start, MaxWitnessNote)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("witness line %d: %w", line+1, err)
	}
	if cur.Len() > 0 {
		if !inSigs {
			return out, fmt.Errorf("witness note %d (line %d): cut short, no signature", len(out)+1, start)
		}
		if err := flush(); err != nil {
			return out, err
		}
	}
	return out, nil
}
