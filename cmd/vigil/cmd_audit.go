package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

func auditCommand() *command {
	return &command{
		name:    "audit",
		summary: "Read and verify the audit trail.",
		usage:   "vigil audit COMMAND",
		help: `
The audit trail records every view of a target, export, search, login and
change: who, when, from where, what and the stated purpose. It is
append-only and hash-chained; 'vigil audit verify' proves it unbroken.
Reading it is itself audited.
`,
		subs: []*command{auditListCommand(), auditVerifyCommand(), auditCheckpointCommand()},
	}
}

func auditListCommand() *command {
	return &command{
		name:    "list",
		summary: "List audit records, filtered by actor, action, object and time.",
		usage:   "vigil audit list [--actor NAME] [--action A] [--object O] [--since T] [--until T] [--limit N] [--json]",
		help: `
Lists records oldest first (--newest: newest first). Times are RFC 3339.
With --json, one object per line:
  {"seq","time","actor","actor_agency","role","remote","action","object",
   "purpose","detail","prev_hash","hash"}  (hashes in base64)

Examples:
  vigil audit list --actor j.dupont --since 2026-11-01T00:00:00Z
  vigil audit list --action export --json | jq -r .purpose
  vigil audit list --object target:42 --newest --limit 20
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var f audit.Filter
			fs.StringVar(&f.Actor, "actor", "", "only this actor's records")
			fs.StringVar(&f.Action, "action", "", "only this `action` (login, view_target, export, ...)")
			fs.StringVar(&f.Object, "object", "", "only this `object` (e.g. target:42)")
			fs.StringVar(&f.ActorAgency, "agency", "", "only actors of this agency `id`")
			since := fs.String("since", "", "from this `time` (RFC 3339)")
			until := fs.String("until", "", "before this `time` (RFC 3339)")
			fs.IntVar(&f.Limit, "limit", 0, "at most `N` records")
			fs.BoolVar(&f.Desc, "newest", false, "newest first")
			asJSON := fs.Bool("json", false, "one JSON object per line")
			return func(ctx context.Context, a *app, args []string) error {
				for _, p := range []struct {
					s   string
					t   *time.Time
					flg string
				}{{*since, &f.Since, "since"}, {*until, &f.Until, "until"}} {
					if p.s == "" {
						continue
					}
					t, err := time.Parse(time.RFC3339Nano, p.s)
					if err != nil {
						return usagef("--%s %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", p.flg, p.s)
					}
					*p.t = t
				}
				svc, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				enc := json.NewEncoder(a.stdout)
				if !*asJSON {
					fmt.Fprintln(tw, "SEQ\tTIME (UTC)\tACTOR\tAGENCY\tREMOTE\tACTION\tOBJECT\tPURPOSE")
				}
				n := 0
				err = sq.AuditRecords(ctx, f, func(r audit.Record) error {
					n++
					if *asJSON {
						return enc.Encode(r)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("2006-01-02 15:04:05.000"), r.Actor,
						r.ActorAgency, r.Remote, r.Action, r.Object, r.Purpose)
					return nil
				})
				if err != nil {
					return err
				}
				if !*asJSON {
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				return svc.Audit(ctx, a.cliActor(), audit.ActionReadAudit, "audit", "",
					map[string]any{"actor": f.Actor, "action": f.Action, "object": f.Object, "since": *since, "until": *until, "records": n})
			}
		},
	}
}

// verifyJSON is the --json output of 'audit verify' (a contract).
type verifyJSON struct {
	OK bool `json:"ok"`
	audit.Report
}

func auditVerifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "Prove the audit trail unbroken; exit 1 at the first break.",
		usage:   "vigil audit verify [--pubkey HEX] [--witness PATH] [--json]",
		help: `
Walks the whole chain: each record must match its hash and chain onto the
one before, with no sequence number missing. Exit 0 when unbroken; exit 1
naming the first broken record and why (a field changed, records deleted,
a record inserted or replaced).

A bare hash chain cannot show that records were cut off its end, or that
someone with write access rewrote it from some point on and recomputed
every hash. With --pubkey (the hex ed25519 public key whose private half
signs checkpoints, see 'vigil audit checkpoint'), verify also checks every
signed checkpoint's signature. Checkpoints are compared with the chain
with or without --pubkey: a checkpointed record that is gone or different
is a break (without --pubkey, whoever rewrote the store could have forged
its checkpoints too).

Checkpoints kept in the store can be deleted with the records they
vouch for. --witness PATH reads the copies a witness kept outside the
store ('vigil serve --audit-witness', 'vigil audit checkpoint --witness'):
a cut tail, a rewritten chain and a checkpoint the store no longer has
are each a break. Give --pubkey with it, or the witness's signatures are
not checked (said on stderr).

On a break, exit 1 naming the first missing or changed record and the
last record that still verifies.

Output with --json (one object):
  {"ok","records","head_seq","head_hash","checkpoints_checked",
   "witness_checkpoints_checked","signatures_checked","last_good_seq",
   "broken":{"seq","kind","reason"}}
kind: changed, deleted, unchained, truncated (the tail was cut),
checkpoint (a bad signature, or the chain differs from a checkpoint),
checkpoint_deleted (the witness holds a checkpoint the store lost).

Examples:
  vigil audit verify
  vigil audit verify --pubkey "$(cat /etc/vigil/audit.pub)" --witness /mnt/worm/vigil.witness --json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			pubHex := fs.String("pubkey", "", "ed25519 public key (`hex`) of the checkpoint signer")
			witness := fs.String("witness", "", "witness `file` of signed checkpoints kept outside the store")
			asJSON := fs.Bool("json", false, "print the result as one JSON object")
			return func(ctx context.Context, a *app, args []string) error {
				var pub ed25519.PublicKey
				if *pubHex != "" {
					b, err := hex.DecodeString(strings.TrimSpace(*pubHex))
					if err != nil || len(b) != ed25519.PublicKeySize {
						return usagef("--pubkey: want %d bytes in hex", ed25519.PublicKeySize)
					}
					pub = b
				}
				svc, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				cps, err := sq.AuditCheckpoints(ctx)
				if err != nil {
					return err
				}
				opts := audit.VerifyOptions{Checkpoints: cps, Pub: pub}
				if *witness != "" {
					f, err := os.Open(*witness)
					if err != nil {
						return fmt.Errorf("--witness: %w", err)
					}
					opts.Witness, err = audit.ReadWitness(f, pub)
					f.Close()
					if err != nil {
						return fmt.Errorf("--witness %s: %w", *witness, err)
					}
					if pub == nil {
						fmt.Fprintf(a.stderr, "vigil audit verify: the witness's signatures are not checked (no --pubkey)\n")
					}
				}
				rep, err := audit.VerifyWith(ctx, sq, opts)
				if err != nil {
					return err
				}
				if *asJSON {
					if err := json.NewEncoder(a.stdout).Encode(verifyJSON{OK: rep.Broken == nil, Report: rep}); err != nil {
						return err
					}
				} else if rep.Broken == nil {
					fmt.Fprintf(a.stdout, "audit trail unbroken: %d records, head seq %d hash %s, %d checkpoints checked",
						rep.Records, rep.HeadSeq, rep.HeadHash, rep.Checkpoints)
					if *witness != "" {
						fmt.Fprintf(a.stdout, ", %d witness checkpoints", rep.WitnessCheckpoints)
					}
					if !rep.Signed && rep.Checkpoints+rep.WitnessCheckpoints > 0 {
						fmt.Fprint(a.stdout, " (signatures not checked: no --pubkey)")
					}
					fmt.Fprintln(a.stdout)
				}
				if rep.Broken != nil {
					if !*asJSON {
						fmt.Fprintf(a.stderr, "vigil audit verify: %v\nvigil audit verify: record %d is the last that still verifies\n", rep.Broken, rep.LastGood)
					}
					return errSilent
				}
				return svc.Audit(ctx, a.cliActor(), audit.ActionVerifyAudit, "audit", "", map[string]any{"records": rep.Records, "head_seq": rep.HeadSeq})
			}
		},
	}
}

func auditCheckpointCommand() *command {
	return &command{
		name:    "checkpoint",
		summary: "Sign the head of the audit chain with an ed25519 key.",
		usage:   "vigil audit checkpoint --key FILE [--witness PATH] [--witness-url URL]",
		help: `
Signs the current head of the chain (its sequence number and hash) with the
ed25519 private key whose 32-byte seed is in FILE (hex), and stores the
checkpoint. Run it regularly (a timer); keep the key off the database host
if you can. The public key, printed each time, is what 'vigil audit verify
--pubkey' needs. 'vigil serve' also makes checkpoints on its own schedule.

--witness appends the checkpoint, as a signed note (C2SP tlog-checkpoint
layout, origin "vigil/audit-chain/v1"), to a file outside the store, mode
0600; --witness-url POSTs it (text/plain). Keep the witness where the
database's host cannot rewrite it. The checkpoint is stored first: a
witness never holds one the store did not.

Examples:
  umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/vigil/audit.key
  vigil audit checkpoint --key /etc/vigil/audit.key --witness /mnt/worm/vigil.witness
`,
		setup: func(fs *flag.FlagSet) runFunc {
			keyFile := fs.String("key", "", "`file` holding the hex seed of the ed25519 signing key")
			witness := fs.String("witness", "", "also append the signed checkpoint to this witness `file`")
			witnessURL := fs.String("witness-url", "", "also POST the signed checkpoint to this `URL`")
			return func(ctx context.Context, a *app, args []string) error {
				if *keyFile == "" {
					return usagef("--key is required")
				}
				key, err := readAuditKey(*keyFile)
				if err != nil {
					return err
				}
				svc, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.Audit(ctx, a.cliActor(), audit.ActionCheckpoint, "audit", "", map[string]any{"key_id": audit.KeyID(key.Public().(ed25519.PublicKey))}); err != nil {
					return err
				}
				c, err := audit.WitnessCheckpoint(ctx, sq, sq, key, time.Now(), witnesses(*witness, *witnessURL)...)
				if c.Seq == 0 {
					return err
				}
				fmt.Fprintf(a.stdout, "checkpoint at seq %d, hash %x\npublic key %x\n", c.Seq, c.Hash, key.Public())
				return err
			}
		},
	}
}

// readAuditKey reads the hex seed of the audit checkpoint key.
func readAuditKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key %s: want %d bytes in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// loadOrCreateAuditKey reads the key at path, or makes one there (mode
// 0600, its folder 0700) when none exists.
func loadOrCreateAuditKey(path string) (ed25519.PrivateKey, bool, error) {
	k, err := readAuditKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(seed) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	return ed25519.NewKeyFromSeed(seed), true, nil
}

// witnesses returns the witnesses named by a file path and a URL (either
// may be empty).
func witnesses(path, url string) []audit.Witness {
	var ws []audit.Witness
	if path != "" {
		ws = append(ws, audit.FileWitness{Path: path})
	}
	if url != "" {
		ws = append(ws, audit.HTTPWitness{URL: url})
	}
	return ws
}
