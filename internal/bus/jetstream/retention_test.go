package jetstream

import (
	"context"
	"errors"
	"fmt"
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
	unsafeStream{what: "of max age 1h", cfg: js.StreamConfig{Storage: js.FileStorage, MaxAge: time.Hour}, named: "maximum age",
		safe: func(_ *testing.T, _ js.JetStream, got js.StreamConfig) string {
			if got.MaxAge != 0 {
				return fmt.Sprintf("max age %v, want none", got.MaxAge)
			}
			return ""
		}}.refusedOrMadeSafe(t)
}

// A stream that refuses messages larger than a bound under what NATS
// carries (max_msg_size below max_payload) refuses a sensor's message
// over it at every try: the sensor's queue stops behind that record,
// fills, and drops new observations. A user that may update it lifts the
// bound; one that may not refuses it by name. Before, it was used as it
// is (and a sensor, which no longer reads the stream, cannot see it).
func TestStreamThatRefusesLargeMessagesIsNotUsed(t *testing.T) {
	subject := DefaultConfig("").Subject + ".bt-lab-1"
	unsafeStream{what: "of max msg size 4096", cfg: js.StreamConfig{Storage: js.FileStorage, MaxMsgSize: 4096}, named: "larger than",
		premise: func(t *testing.T, admin js.JetStream, _ string) {
			if _, err := admin.Publish(context.Background(), subject, make([]byte, 8192)); err == nil {
				t.Fatal("an 8 KB message stored in a stream of max msg size 4096: the premise no longer holds")
			}
		},
		safe: func(_ *testing.T, admin js.JetStream, _ js.StreamConfig) string {
			if _, err := admin.Publish(context.Background(), subject, make([]byte, 8192)); err != nil {
				return fmt.Sprintf("an 8 KB message refused: %v", err)
			}
			return ""
		}}.refusedOrMadeSafe(t)
}

// A stream that republishes what it stores (RePublish) sends every
// sensor's observations to a subject: anyone allowed to subscribe there (a
// sensor's user, if the subject is under its inbox) reads them all. It is
// not used as it is: one ingest's user may update is set right, one it
// may not is refused by name. Before, it was used.
func TestStreamThatRepublishesIsNotUsed(t *testing.T) {
	d := DefaultConfig("")
	// The premise: a sensor's user, subscribed under its own inbox, reads
	// what another sensor published.
	premise := func(t *testing.T, admin js.JetStream, hp string) {
		spy, err := nats.Connect("nats://sensor-bt-lab-1:" + sensorPassword + "@" + hp)
		if err != nil {
			t.Fatal(err)
		}
		defer spy.Close()
		sub, err := spy.SubscribeSync("_INBOX_bt-lab-1.copy.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := spy.Flush(); err != nil { // the subscription reaches the server
			t.Fatal(err)
		}
		if _, err := admin.Publish(context.Background(), d.Subject+".bt-lab-2", []byte("another sensor's observation")); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(2 * time.Second); err != nil || m.Subject != "_INBOX_bt-lab-1.copy."+d.Subject+".bt-lab-2" {
			t.Fatalf("the premise no longer holds: republished copy %v, %v", m, err)
		}
	}
	unsafeStream{what: "republishing to a sensor's inbox", cfg: js.StreamConfig{Storage: js.FileStorage, RePublish: &js.RePublish{Source: ">", Destination: "_INBOX_bt-lab-1.copy.>"}},
		named: "republishes", premise: premise,
		safe: func(_ *testing.T, _ js.JetStream, got js.StreamConfig) string {
			if got.RePublish != nil {
				return "it still republishes to " + got.RePublish.Destination
			}
			return ""
		}}.refusedOrMadeSafe(t)
}

// unsafeStream is a stream that lets observations be lost or read, made
// by an admin with the settings of cfg (the name, subjects, storage,
// retention and duplicate window Vigil's) with ingest's consumer, on a
// NATS server of the doc's users.
type unsafeStream struct {
	what string // the stream, for messages
	cfg  js.StreamConfig
	// premise, if set, shows on the stream just made what it does
	// (the admin's connection, the server's host:port).
	premise func(t *testing.T, admin js.JetStream, hp string)
	// named is what the refusal's error must name.
	named string
	// safe says what is still wrong with the stream once an ingest whose
	// user may update it started on it ("" if nothing); admin may publish
	// on it.
	safe func(t *testing.T, admin js.JetStream, got js.StreamConfig) string
}

func (u unsafeStream) made(t *testing.T) (js.JetStream, string) {
	t.Helper()
	ctx := context.Background()
	d := DefaultConfig("")
	c := u.cfg
	c.Name, c.Subjects, c.Duplicates = d.Stream, []string{d.Subject + ".>"}, d.Dedupe
	if c.Retention == js.LimitsPolicy {
		c.Retention = js.WorkQueuePolicy
	}
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
	if u.premise != nil {
		u.premise(t, admin, hp)
	}
	return admin, hp
}

// refusedOrMadeSafe checks that an ingest whose NATS user may not update
// the stream refuses it (ErrUnsafeStream, naming it, not transient) and
// that one whose user may starts on it made safe.
func (u unsafeStream) refusedOrMadeSafe(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, hp := u.made(t)
	ib, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if _, err := ib.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || ib.Transient(err) || !strings.Contains(err.Error(), u.named) {
		t.Errorf("ingest on a stream %s: %v; want refused, naming %q", u.what, err, u.named)
	}

	admin, hp := u.made(t)
	ab, err := Open(ctx, DefaultConfig("nats://vigil-admin:"+adminPassword+"@"+hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	if _, err := ab.Consumer(ctx); err != nil {
		t.Fatalf("admin on a stream %s: %v", u.what, err)
	}
	st, err := admin.Stream(ctx, DefaultConfig("").Stream)
	if err != nil {
		t.Fatal(err)
	}
	if why := u.safe(t, admin, st.CachedInfo().Config); why != "" {
		t.Errorf("the stream %s, once an admin's ingest started: %s", u.what, why)
	}
}
