package jetstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// A stream whose maximum age is shorter than Vigil's (none: Config.MaxAge
// 0 keeps an observation until ingest stores it) deletes what ingest has
// not read once it is that old: ingest away for longer, and every sensor's
// unread observations are gone, which the sensors, once NATS acknowledged
// them, no longer hold. A user that may update it sets Vigil's maximum
// age; one that may not (ingest's least-privilege user) refuses it by
// name. Before, it was warned of and used as it is.
func TestStreamThatAgesOutUnreadMessagesIsNotUsed(t *testing.T) {
	ctx := context.Background()
	d := DefaultConfig("")
	made := func(t *testing.T) (js.JetStream, string) {
		t.Helper()
		hp := startServerWithUsers(t)
		admin := asAdmin(t, hp)
		st, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
			Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe, MaxAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
			AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
			t.Fatal(err)
		}
		return admin, hp
	}
	_, hp := made(t)
	ib, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if _, err := ib.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || ib.Transient(err) || !strings.Contains(err.Error(), "maximum age") {
		t.Errorf("ingest on a stream of max age 1h: %v; want refused, naming its maximum age", err)
	}

	admin, hp := made(t)
	ab, err := Open(ctx, DefaultConfig("nats://vigil-admin:"+adminPassword+"@"+hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	if _, err := ab.Consumer(ctx); err != nil {
		t.Fatalf("admin on a stream of max age 1h: %v", err)
	}
	st, err := admin.Stream(ctx, d.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != 0 {
		t.Errorf("stream used with max age %v, want none", got)
	}
}

// A stream that refuses messages larger than a bound under what NATS
// carries (max_msg_size below max_payload) refuses a sensor's message
// over it at every try: the sensor's queue stops behind that record,
// fills, and drops new observations. A user that may update it lifts the
// bound; one that may not refuses it by name. Before, it was used as it
// is (and a sensor, which no longer reads the stream, cannot see it).
func TestStreamThatRefusesLargeMessagesIsNotUsed(t *testing.T) {
	ctx := context.Background()
	d := DefaultConfig("")
	made := func(t *testing.T) (js.JetStream, string) {
		t.Helper()
		hp := startServerWithUsers(t)
		admin := asAdmin(t, hp)
		st, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
			Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe, MaxMsgSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
			AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
			t.Fatal(err)
		}
		return admin, hp
	}
	admin, hp := made(t)
	if _, err := admin.Publish(ctx, d.Subject+".bt-lab-1", make([]byte, 8192)); err == nil {
		t.Fatal("an 8 KB message stored in a stream of max msg size 4096: the premise no longer holds")
	}
	ib, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if _, err := ib.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || ib.Transient(err) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ingest on a stream of max msg size 4096: %v; want refused, naming the bound", err)
	}

	admin, hp = made(t)
	ab, err := Open(ctx, DefaultConfig("nats://vigil-admin:"+adminPassword+"@"+hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	if _, err := ab.Consumer(ctx); err != nil {
		t.Fatalf("admin on a stream of max msg size 4096: %v", err)
	}
	if _, err := admin.Publish(ctx, d.Subject+".bt-lab-1", make([]byte, 8192)); err != nil {
		t.Errorf("an 8 KB message on the stream made safe: %v", err)
	}
}

// A stream that republishes what it stores (RePublish) sends every
// sensor's observations to a subject: anyone allowed to subscribe there (a
// sensor's user, if the subject is under its inbox) reads them all. It is
// not used as it is: one ingest's user may update is set right, one it
// may not is refused by name. Before, it was used.
func TestStreamThatRepublishesIsNotUsed(t *testing.T) {
	ctx := context.Background()
	d := DefaultConfig("")
	made := func(t *testing.T) (js.JetStream, string) {
		t.Helper()
		hp := startServerWithUsers(t)
		admin := asAdmin(t, hp)
		st, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
			Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe,
			RePublish: &js.RePublish{Source: ">", Destination: "_INBOX_bt-lab-1.copy.>"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
			AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
			t.Fatal(err)
		}
		return admin, hp
	}
	_, hp := made(t)
	// The premise: a sensor's user, subscribed under its own inbox, reads
	// what another sensor published.
	spy, err := nats.Connect("nats://sensor-bt-lab-1:" + sensorPassword + "@" + hp)
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	sub, err := spy.SubscribeSync("_INBOX_bt-lab-1.copy.>")
	if err != nil {
		t.Fatal(err)
	}
	admin := asAdmin(t, hp)
	if _, err := admin.Publish(ctx, d.Subject+".bt-lab-2", []byte("another sensor's observation")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(2 * time.Second); err != nil || m.Subject != "_INBOX_bt-lab-1.copy."+d.Subject+".bt-lab-2" {
		t.Fatalf("the premise no longer holds: republished copy %v, %v", m, err)
	}

	ib, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if _, err := ib.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || ib.Transient(err) || !strings.Contains(err.Error(), "republishes") {
		t.Errorf("ingest on a stream that republishes: %v; want refused, naming it", err)
	}

	admin, hp = made(t)
	ab, err := Open(ctx, DefaultConfig("nats://vigil-admin:"+adminPassword+"@"+hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	if _, err := ab.Consumer(ctx); err != nil {
		t.Fatalf("admin on a stream that republishes: %v", err)
	}
	info, err := admin.Stream(ctx, d.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if rp := info.CachedInfo().Config.RePublish; rp != nil {
		t.Errorf("the stream made safe still republishes to %s", rp.Destination)
	}
}
