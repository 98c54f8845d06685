package jetstream

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// operatorServer runs a real NATS server in operator mode (decentralised
// JWT users): it trusts one operator, which signed one account with
// JetStream enabled. It returns the server's host:port and a function
// that writes a credentials file for a new user of that account with the
// given publish and subscribe allowances (none: every subject).
func operatorServer(t *testing.T) (string, func(name string, pub, sub []string) string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "vigil-test-operator"

	// The system account the server needs in operator mode.
	newAccount := func(name string, jetstream bool) (nkeys.KeyPair, string, string) {
		akp, err := nkeys.CreateAccount()
		must(err)
		apub, err := akp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		if jetstream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		ajwt, err := ac.Encode(okp)
		must(err)
		return akp, apub, ajwt
	}
	_, syspub, sysjwt := newAccount("SYS", false)
	oc.SystemAccount = syspub
	ojwt, err := oc.Encode(okp)
	must(err)
	ocl, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)
	akp, apub, ajwt := newAccount("VIGIL", true)

	res := &server.MemAccResolver{}
	must(res.Store(syspub, sysjwt))
	must(res.Store(apub, ajwt))
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, TrustedOperators: []*jwt.OperatorClaims{ocl}, AccountResolver: res, SystemAccount: syspub}
	s, err := server.NewServer(opts)
	must(err)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)

	dir := t.TempDir()
	creds := func(name string, pub, sub []string) string {
		t.Helper()
		ukp, err := nkeys.CreateUser()
		must(err)
		upub, err := ukp.PublicKey()
		must(err)
		seed, err := ukp.Seed()
		must(err)
		uc := jwt.NewUserClaims(upub)
		uc.Name = name
		uc.Pub.Allow.Add(pub...)
		uc.Sub.Allow.Add(sub...)
		ujwt, err := uc.Encode(akp)
		must(err)
		file, err := jwt.FormatUserConfig(ujwt, seed)
		must(err)
		path := filepath.Join(dir, name+".creds")
		must(os.WriteFile(path, file, 0o600))
		return path
	}
	return strings.TrimPrefix(s.ClientURL(), "nats://"), creds
}

// --bus-creds with NATS's decentralised JWT users: an admin user makes the
// stream and consumer, a sensor user allowed its own subject and inbox
// publishes, an ingest user allowed to consume and acknowledge stores it
// all; a sensor user's credentials do not reach another sensor's subject.
func TestCredsFileUsersPublishAndIngest(t *testing.T) {
	hp, creds := operatorServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin := DefaultConfig("nats://" + hp)
	admin.Creds, admin.MaxAckPending = creds("vigil-admin", nil, nil), -1 // as vigil ingest asks
	ab, err := Open(ctx, admin, nil)
	if err != nil {
		t.Fatalf("admin through a credentials file: %v", err)
	}
	if _, err := ab.Consumer(ctx); err != nil {
		t.Fatalf("admin makes the consumer: %v", err)
	}
	ab.Close()

	d := DefaultConfig("")
	sensor := sensorConfig(hp)
	sensor.URL = "nats://" + hp
	sensor.Creds = creds("sensor-bt-lab-1",
		[]string{d.Subject + ".bt-lab-1"}, []string{"_INBOX_bt-lab-1.>"})
	sb, err := Open(ctx, sensor, nil)
	if err != nil {
		t.Fatalf("sensor through a credentials file: %v", err)
	}
	defer sb.Close()
	obs := observations(25)
	if err := sb.PublishBatch(ctx, obs); err != nil {
		t.Fatalf("sensor publish: %v", err)
	}
	stray := observations(len(obs) + 1)[len(obs):] // an id of its own
	stray[0].Sensor.ID = "bt-lab-2"
	if err := sb.PublishBatch(ctx, stray); err == nil {
		t.Fatal("a sensor's credentials published as another sensor")
	}

	ingest := ingestConfig(hp)
	ingest.URL = "nats://" + hp
	ingest.Creds = creds("vigil-ingest", []string{"$JS.API.STREAM.INFO." + d.Stream,
		"$JS.API.CONSUMER.INFO." + d.Stream + "." + d.Consumer,
		"$JS.API.CONSUMER.MSG.NEXT." + d.Stream + "." + d.Consumer,
		"$JS.ACK." + d.Stream + "." + d.Consumer + ".>"}, []string{"_INBOX_ingest.>"})
	ib, err := Open(ctx, ingest, nil)
	if err != nil {
		t.Fatalf("ingest through a credentials file: %v", err)
	}
	defer ib.Close()
	st := openStore(t)
	if err := consumeUntil(t, ib, st, len(obs), nil); err != nil {
		t.Fatal(err)
	}
	got := stored(t, st)
	if len(got) != len(obs) {
		t.Fatalf("stored %d observations, want %d (the other sensor's must not be there)", len(got), len(obs))
	}
	for _, o := range obs {
		if _, ok := got[o.ID]; !ok {
			t.Fatalf("observation %s not stored", o.ID)
		}
	}
}
