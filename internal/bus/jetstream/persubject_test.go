package jetstream

import (
	"context"
	"errors"
	"strings"
	"testing"

	js "github.com/nats-io/nats.go/jetstream"
)

// A stream that bounds the messages kept per subject drops a sensor's
// oldest unread messages once it has published that many (its subject
// is its own: ingest down for a while, or a sensor publishing more than
// the bound, loses them; NATS does so whatever the discard policy,
// unless it discards new per subject). It is not used as it is: a user
// that may update it makes it refuse instead (discard new, per subject,
// the bound kept), one that may not refuses it by name. Before, only the
// stream-wide bounds were looked at, and such a stream was used.
func TestStreamThatDropsMessagesPerSubjectIsNotUsed(t *testing.T) {
	ctx := context.Background()
	d := DefaultConfig("")
	made := func(t *testing.T, c js.StreamConfig) (js.JetStream, string) {
		t.Helper()
		c.Name, c.Subjects, c.Storage, c.Retention, c.Duplicates = d.Stream, []string{d.Subject + ".>"}, js.FileStorage, js.WorkQueuePolicy, d.Dedupe
		hp := startServerWithUsers(t)
		admin := asAdmin(t, hp)
		st, err := admin.CreateStream(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
			AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
			t.Fatal(err)
		}
		// What such a stream does to a sensor's unread messages.
		for range 3 {
			if _, err := admin.Publish(ctx, d.Subject+".bt-lab-1", []byte("unread")); err != nil {
				t.Fatal(err)
			}
		}
		if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
			t.Fatalf("3 published on one subject, bound 2: %d kept (%v)", info.State.Msgs, err)
		}
		if err := st.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		return admin, hp
	}
	for _, c := range []js.StreamConfig{
		{MaxMsgsPerSubject: 2},
		{MaxMsgsPerSubject: 2, Discard: js.DiscardNew},
	} {
		// An ingest whose user may not update the stream refuses it.
		_, hp := made(t, c)
		ib, err := Open(ctx, ingestConfig(hp), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ib.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || ib.Transient(err) || !strings.Contains(err.Error(), "per subject") {
			t.Errorf("ingest on a stream of max msgs per subject %d, discard %v: %v; want refused, naming the bound per subject", c.MaxMsgsPerSubject, c.Discard, err)
		}
		ib.Close()

		// One whose user may makes it refuse instead, the bound kept.
		admin, hp := made(t, c)
		ab, err := Open(ctx, DefaultConfig("nats://vigil-admin:"+adminPassword+"@"+hp), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ab.Consumer(ctx); err != nil {
			t.Fatalf("admin on a stream of max msgs per subject %d, discard %v: %v", c.MaxMsgsPerSubject, c.Discard, err)
		}
		ab.Close()
		st, err := admin.Stream(ctx, d.Stream)
		if err != nil {
			t.Fatal(err)
		}
		got := st.CachedInfo().Config
		if got.MaxMsgsPerSubject != 2 || got.Discard != js.DiscardNew || !got.DiscardNewPerSubject {
			t.Errorf("stream of max msgs per subject %d, discard %v used with max msgs per subject %d, discard %v, discard new per subject %v; want 2, new, true", c.MaxMsgsPerSubject, c.Discard,
				got.MaxMsgsPerSubject, got.Discard, got.DiscardNewPerSubject)
		}
		for i := range 3 {
			_, err := admin.Publish(ctx, d.Subject+".bt-lab-1", []byte("unread"))
			if i < 2 && err != nil || i == 2 && err == nil {
				t.Errorf("publish %d on the stream made safe: %v", i+1, err)
			}
		}
		if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
			t.Errorf("the stream made safe holds %d messages (%v), want the first 2", info.State.Msgs, err)
		}
	}
}
