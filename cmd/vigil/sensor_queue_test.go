package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
)

// A sensor with --bus and --queue-dir starts while NATS is unreachable,
// keeps observing into its queue, says so on /healthz and in its summary
// (queued, still queued: never "stored"); run again once NATS is up, it
// publishes what the first run left, and 'vigil ingest', started before
// NATS was, stores exactly that many.
func TestSensorQueuesWhileTheBusIsAwayAndSaysSo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 23, Server: true, Files: 1, Clients: 2,
		Base: netip.MustParseAddr("127.98.0.0")})
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
	port := freePort(t)
	busURL := fmt.Sprintf("nats://127.0.0.1:%d", port) // nothing listens there yet
	queue := filepath.Join(dir, "queue")
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sensor := func(d string) []string {
		return []string{"sensor", "ed2k", "--server", edk.Server.Addr().String(), "--listen", "127.98.255.1", "--lab",
			"--duration", d, "--bus", busURL, "--queue-dir", queue, "--metrics", metrics}
	}

	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := vigilRun(t, env, "", sensor("4s")...)
		done <- result{code, out, errOut}
	}()
	waitUntil(t, 20*time.Second, "/healthz to say the queue is not ok", func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "queue: not ok")
	})
	r := <-done
	if r.code != exitOK {
		t.Fatalf("first run: exit %d: %s", r.code, r.err)
	}
	if strings.Contains(r.out, "stored") {
		t.Fatalf("a sensor with --bus says it stored observations:\n%s", r.out)
	}
	m := regexp.MustCompile(`(\d+) observations queued, 0 dropped \(queue full\); 0 published to the bus .*, (\d+) still queued in ` + regexp.QuoteMeta(queue)).FindStringSubmatch(r.out)
	if m == nil || m[1] == "0" || m[1] != m[2] {
		t.Fatalf("first run's summary does not say what was queued and is still queued:\n%s", r.out)
	}
	queued, _ := strconv.Atoi(m[1])

	// An ingest started while NATS is still away waits for it; it stops
	// 15 s from now, long after the second run below has published.
	ingested := make(chan result, 1)
	go func() {
		ictx, icancel := context.WithTimeout(ctx, 15*time.Second)
		defer icancel()
		var ob, eb strings.Builder
		code := run(ictx, []string{"--db", filepath.Join(dir, "hub.db"), "ingest", "--bus", busURL}, strings.NewReader(""), &ob, &eb, func(string) string { return "" })
		ingested <- result{code, ob.String(), eb.String()}
	}()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	defer srv.Shutdown()
	code, out, errOut := vigilRun(t, env, "", sensor("1s")...)
	if code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	m = regexp.MustCompile(`(\d+) observations queued, 0 dropped \(queue full\); (\d+) published to the bus .*, 0 still queued`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("second run's summary:\n%s", out)
	}
	again, _ := strconv.Atoi(m[1])
	if published, _ := strconv.Atoi(m[2]); published != queued+again {
		t.Fatalf("second run published %d, want the %d the first run left and its own %d:\n%s", published, queued, again, out)
	}

	if r := <-ingested; r.code != exitOK || !strings.Contains(r.out, fmt.Sprintf("%d observations stored", queued+again)) {
		t.Fatalf("ingest (started before NATS): exit %d, want %d stored:\n%s\n%s", r.code, queued+again, r.out, r.err)
	}
}
