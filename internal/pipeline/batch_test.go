package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/evidence"
)

// A sensor with a queue (--queue-dir) that starts while NATS is down
// signs its batches, queues them whole, and once NATS is up drains them
// in order as one message a signed batch: the stream holds one message
// for each batch, not one for each observation, and they decode to the
// observations in the sensor's order.
func TestSignedBatchesCrossTheQueueAndNATSWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := jetstream.DefaultConfig(fmt.Sprintf("nats://127.0.0.1:%d", port))
	jb, err := jetstream.OpenLazy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jb.Close()
	qc := spool.DefaultConfig(t.TempDir())
	qc.RetryEvery = 20 * time.Millisecond
	p, err := New(context.Background(), Config{Store: openStore(t), Remote: jb, Queue: &qc,
		SensorKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)), Signer: evidence.SignerConfig{BatchSize: 10, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	obs := bustest.Observations(95)
	emitted, back := make(chan struct{}), make(chan struct{})
	if err := p.AddSensor("cut-off", func(ctx context.Context) error {
		for _, o := range obs {
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
		}
		close(emitted)
		<-back
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-emitted
	deadline := time.Now().Add(10 * time.Second)
	for d := p.Delivery(); d.Queue.Queued != 90; d = p.Delivery() {
		if time.Now().After(deadline) {
			t.Fatalf("queue while NATS is down: %+v, want the 9 full batches (90)", d.Queue)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	defer s.Shutdown()
	close(back) // the sensor stops: the last, partial batch is signed and queued
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := p.Delivery(); d.Queue.Published != 95 || d.Queue.Pending != 0 || d.Queue.Dropped != 0 {
		t.Fatalf("after the run: %+v", d.Queue)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := j.Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Fatalf("the stream holds %d messages for 95 observations, want 10: one a signed batch", info.State.Msgs)
	}
	var seq uint64
	for n := uint64(1); n <= 10; n++ {
		m, err := st.GetMsg(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		got, bad, _ := jetstream.DecodeMessage(m.Data)
		if len(bad) > 0 || len(got) != 10 && !(n == 10 && len(got) == 5) {
			t.Fatalf("message %d: %d observations, %v", n, len(got), bad)
		}
		for i := range got {
			if seq++; got[i].Chain.Seq != seq || got[i].ID != obs[seq-1].ID {
				t.Fatalf("message %d holds seq %d (%s), want seq %d (%s)", n, got[i].Chain.Seq, got[i].ID, seq, obs[seq-1].ID)
			}
		}
		if len(got[len(got)-1].Chain.BatchSig) == 0 {
			t.Fatalf("message %d does not end with its batch's signature", n)
		}
	}
}
