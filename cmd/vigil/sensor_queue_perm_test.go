package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
)

// A sensor whose NATS user may only publish to its subject (the users of
// docs/deployment.md, "NATS users and permissions") and finds no stream
// says it may not create it, naming the permission, and keeps observing
// into its --queue-dir; once an admin user made the stream and the
// consumer, its next run publishes what it left, and an ingest whose user
// may only consume stores it all. No password reaches an output.
func TestSensorQueuesWhenItMayNotCreateTheStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts, err := server.ProcessConfigFile("../../internal/bus/jetstream/testdata/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", freePort(t), t.TempDir(), true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	defer srv.Shutdown()
	hp := fmt.Sprintf("127.0.0.1:%d", opts.Port)
	const sensorPass, ingestPass = "sensor-test-password", "ingest-test-password"

	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 29, Server: true, Files: 1, Clients: 2,
		Base: netip.MustParseAddr("127.97.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "sensor.db")}
	f := edk.Files[0]
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	queue := filepath.Join(dir, "queue")
	sensor := func(d string) []string {
		return []string{"sensor", "ed2k", "--id", "bt-lab-1", "--server", edk.Server.Addr().String(), "--listen", "127.97.255.1", "--lab",
			"--duration", d, "--bus", "nats://sensor-bt-lab-1:" + sensorPass + "@" + hp, "--bus-inbox", "_INBOX_bt-lab-1", "--queue-dir", queue}
	}
	code, out, errOut := vigilRun(t, env, "", sensor("4s")...)
	if code != exitOK {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, sensorPass) {
		t.Fatalf("the password reached the output:\n%s\n%s", out, errOut)
	}
	for _, want := range []string{"stream VIGIL_OBSERVATIONS does not exist and this NATS user may not create it", "$JS.API.STREAM.CREATE.VIGIL_OBSERVATIONS"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the log does not say %q:\n%s", want, errOut)
		}
	}
	m := regexp.MustCompile(`(\d+) observations queued, 0 dropped \(queue full\); 0 published to the bus .*, (\d+) still queued`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" || m[1] != m[2] {
		t.Fatalf("first run's summary does not say what was queued and is still queued:\n%s", out)
	}
	queued, _ := strconv.Atoi(m[1])

	nc, err := nats.Connect("nats://vigil-admin:admin-test-password@" + hp)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	admin, _ := js.New(nc)
	d := jetstream.DefaultConfig("")
	st, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
		AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = vigilRun(t, env, "", sensor("1s")...)
	if code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	m = regexp.MustCompile(`(\d+) observations queued, 0 dropped \(queue full\); (\d+) published to the bus .*, 0 still queued`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("second run's summary:\n%s\n%s", out, errOut)
	}
	again, _ := strconv.Atoi(m[1])
	if published, _ := strconv.Atoi(m[2]); published != queued+again {
		t.Fatalf("second run published %d, want the %d the first run left and its own %d:\n%s", published, queued, again, out)
	}

	ictx, icancel := context.WithTimeout(ctx, 8*time.Second)
	defer icancel()
	var ob, eb strings.Builder
	code = run(ictx, []string{"--db", filepath.Join(dir, "hub.db"), "ingest", "--bus", "nats://vigil-ingest:" + ingestPass + "@" + hp,
		"--bus-inbox", "_INBOX_ingest"}, strings.NewReader(""), &ob, &eb, func(string) string { return "" })
	if code != exitOK || !strings.Contains(ob.String(), fmt.Sprintf("%d observations stored", queued+again)) {
		t.Fatalf("ingest with consume-only rights: exit %d, want %d stored:\n%s\n%s", code, queued+again, ob.String(), eb.String())
	}
	if strings.Contains(ob.String()+eb.String(), ingestPass) {
		t.Fatalf("the password reached ingest's output:\n%s\n%s", ob.String(), eb.String())
	}
}
