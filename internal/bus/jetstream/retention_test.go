package jetstream

import (
	"context"
	"errors"
	"strings"
	"testing"

	js "github.com/nats-io/nats.go/jetstream"
)

// A stream of interest retention keeps a message only while a consumer
// wants it: one published while no consumer exists (before ingest's is
// made, or while an admin makes it anew) is acknowledged to the sensor,
// which then forgets it, and is not stored. Such a stream is refused by
// name, even to a user that may update it (NATS does not change a
// stream's retention to or from work-queue). Before, it was used as it
// is. (Limits retention loses nothing: acknowledged messages stay.)
func TestStreamOfInterestRetentionIsRefused(t *testing.T) {
	ctx := context.Background()
	url := startServer(t)
	j := jetStreamAt(t, url)
	d := DefaultConfig(url)
	st, err := j.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.InterestPolicy, Duplicates: d.Dedupe})
	if err != nil {
		t.Fatal(err)
	}
	// What such a stream does with a sensor's message while no consumer exists.
	if _, err := j.Publish(ctx, d.Subject+".bt-lab-1", []byte("evidence")); err != nil {
		t.Fatalf("publish acknowledged? %v", err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("interest stream without a consumer holds %d messages (%v); the premise (it keeps none) no longer holds", info.State.Msgs, err)
	}
	b, err := Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || b.Transient(err) || !strings.Contains(err.Error(), "interest") {
		t.Errorf("ingest on a stream of interest retention: %v; want refused, naming it", err)
	}
}
