package jetstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Attack (h-rev9), or a second deployment's slip: its sensors and ingest
// take their own --subject but keep the default --stream. Before, the
// first of them to start rewrote the existing stream's subjects to its
// own (CreateOrUpdateStream): the first deployment's sensors then had
// no stream to publish to (observations lost, or queued, until its own
// ingest rewrote it back, and so on), and the second's observations went
// into the first's stream, read by the first's ingest (its consumer
// takes the whole stream) and stored in the first's store. A stream that
// exists with other subjects must be refused, by name, and left as it
// was.
func TestStreamOfOtherSubjectsIsNotRewritten(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	obs := observations(20)
	paris := DefaultConfig(url)
	pb, err := Open(ctx, paris, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	for _, o := range obs[:5] {
		if err := pb.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	lyon := DefaultConfig(url)
	lyon.Subject, lyon.Consumer = "lyon.obs", "lyon-ingest" // --stream left as it was
	lb, err := OpenLazy(lyon, nil)                          // a sensor with a queue
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	for deadline := time.Now().Add(10 * time.Second); !lb.nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the lazy bus did not connect")
		}
	}
	err = lb.Publish(ctx, obs[10])
	if !errors.Is(err, ErrStreamOfOtherSubjects) || !strings.Contains(err.Error(), paris.Stream) || !strings.Contains(err.Error(), "vigil.obs.>") {
		t.Fatalf("a sensor with another subject on the stream %s: publish = %v, want it refused, naming the stream and its subjects", paris.Stream, err)
	}
	if _, err := lb.Consumer(ctx); !errors.Is(err, ErrStreamOfOtherSubjects) || !strings.Contains(err.Error(), "vigil.obs.>") {
		t.Fatalf("an ingest with another subject on the stream %s: consumer made", paris.Stream)
	}
	// Paris's sensors go on publishing (a bus of its own: the one above
	// knows the stream already), and its ingest reads its own alone.
	pb2, err := Open(ctx, paris, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pb2.Close()
	for _, o := range obs[5:10] {
		if err := pb2.Publish(ctx, o); err != nil {
			t.Fatalf("paris's sensor after lyon's start: %v", err)
		}
	}
	c, err := pb2.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Fetch(ctx, 100, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := bt.Observations(); len(got) != 10 {
		t.Fatalf("paris's ingest: %d observations, want its own 10", len(got))
	}
}
