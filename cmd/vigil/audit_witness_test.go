package main

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// witnessedTrail makes 30 audit records with a checkpoint (in the store
// and in a witness file) after the 30th, and returns the witness, the
// public key and the database.
func witnessedTrail(t *testing.T) (env map[string]string, db, witness, pub string) {
	t.Helper()
	env, db = accessEnv(t)
	dir := t.TempDir()
	witness = filepath.Join(dir, "witness", "vigil.witness")
	keyFile := writeFile(t, dir, "audit.key", randHex(t, 32)+"\n")
	withService(t, db, func(svc *access.Service) {
		for i := range 29 {
			if err := svc.Audit(context.Background(), access.CLIActor("tester"), audit.ActionViewTarget, fmt.Sprintf("target:%d", i), "PV 1", nil); err != nil {
				t.Fatal(err)
			}
		}
	})
	// The checkpoint command audits itself first: record 30.
	out := mustRun(t, env, "", "audit", "checkpoint", "--key", keyFile, "--witness", witness)
	m := regexp.MustCompile(`checkpoint at seq 30,[^\n]*\npublic key ([0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("checkpoint output %q", out)
	}
	if fi, err := os.Stat(witness); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness file: %v %v", fi, err)
	}
	return env, db, witness, m[1]
}

func sqlExec(t *testing.T, db string, qs ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range qs {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestAuditVerifyFindsACutTail(t *testing.T) {
	cutTail := []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq > 20`}
	cutCheckpoints := []string{`DROP TRIGGER audit_checkpoints_no_delete`, `DELETE FROM audit_checkpoints`}
	cases := []struct {
		name     string
		tamper   []string
		kind     string
		seq      int64
		lastGood int64
	}{
		{"tail cut", cutTail, audit.BreakTruncated, 21, 20},
		{"tail and checkpoints cut", append(append([]string{}, cutTail...), cutCheckpoints...), audit.BreakTruncated, 21, 20},
		{"checkpoints cut", cutCheckpoints, audit.BreakCheckpointGone, 30, 31}, // 31: the first verify's own record
		{"one record edited", []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET object = 'target:999' WHERE seq = 12`}, audit.BreakChanged, 12, 11},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, db, witness, pub := witnessedTrail(t)
			if out := mustRun(t, env, "", "audit", "verify", "--pubkey", pub, "--witness", witness); !strings.Contains(out, "1 witness checkpoints") {
				t.Fatalf("before tampering: %s", out)
			}
			sqlExec(t, db, c.tamper...)
			code, out, errOut := vigilRun(t, env, "", "audit", "verify", "--pubkey", pub, "--witness", witness)
			want := fmt.Sprintf("broken at seq %d (%s)", c.seq, c.kind)
			if code != exitRejected || !strings.Contains(errOut, want) || !strings.Contains(errOut, fmt.Sprintf("record %d is the last that still verifies", c.lastGood)) {
				t.Fatalf("exit %d, want 1 and %q\n%s%s", code, want, out, errOut)
			}
			code, out, _ = vigilRun(t, env, "", "audit", "verify", "--pubkey", pub, "--witness", witness, "--json")
			var v verifyJSON
			if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitRejected || v.OK || v.Broken == nil ||
				v.Broken.Seq != c.seq || v.LastGood != c.lastGood || !v.Signed {
				t.Fatalf("--json: exit %d %s", code, out)
			}
		})
	}
}

// Without the witness, the store's own checkpoints still show a tail cut
// alone (the old verify said "unbroken"), but not one cut together with
// them: that is what the witness is for.
func TestAuditVerifyWithoutWitness(t *testing.T) {
	env, db, _, pub := witnessedTrail(t)
	sqlExec(t, db, `DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq > 20`)
	if code, out, errOut := vigilRun(t, env, "", "audit", "verify"); code != exitRejected || !strings.Contains(errOut, "broken at seq 21 (truncated)") {
		t.Fatalf("tail cut, no key: exit %d\n%s%s", code, out, errOut)
	}
	sqlExec(t, db, `DROP TRIGGER audit_checkpoints_no_delete`, `DELETE FROM audit_checkpoints`)
	if code, _, _ := vigilRun(t, env, "", "audit", "verify", "--pubkey", pub); code != exitOK {
		t.Fatalf("the store alone cannot show a cut tail and checkpoints: exit %d", code)
	}
}

// A witness signed by another key is refused, not silently trusted.
func TestAuditVerifyRefusesAForeignWitness(t *testing.T) {
	env, _, witness, _ := witnessedTrail(t)
	other := randHex(t, 32)
	otherPub := fmt.Sprintf("%x", ed25519PubOf(t, other))
	code, _, errOut := vigilRun(t, env, "", "audit", "verify", "--pubkey", otherPub, "--witness", witness)
	if code == exitOK || !strings.Contains(errOut, "not signed by the audit checkpoint key") {
		t.Fatalf("foreign key: exit %d %s", code, errOut)
	}
}

func ed25519PubOf(t *testing.T, seedHex string) []byte {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}
