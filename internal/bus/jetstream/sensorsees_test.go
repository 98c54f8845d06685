package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// A sensor's NATS user learns nothing of the other sensors: not their
// subjects (which name their sensor ids) nor how many messages each has
// waiting. Before, its user could read the stream's info, and a request
// with a subjects_filter answered every subject in the stream with its
// count. Every request below is refused by NATS (no answer comes), and
// the sensor still publishes (TestLeastPrivilegeSensorAndIngest).
func TestSensorUserCannotLearnOtherSensors(t *testing.T) {
	admin, hp := withAnotherSensorsMessages(t)
	ctx := context.Background()
	d := DefaultConfig("")
	nc, err := nats.Connect("nats://sensor-bt-lab-1:"+sensorPassword+"@"+hp, nats.CustomInboxPrefix("_INBOX_bt-lab-1"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, req := range []struct{ subject, body string }{
		{"$JS.API.STREAM.INFO." + d.Stream, `{"subjects_filter":">"}`},
		{"$JS.API.STREAM.INFO." + d.Stream, ``},
		{"$JS.API.STREAM.LIST", `{"subject":"vigil.obs.>"}`},
		{"$JS.API.STREAM.NAMES", `{"subject":"vigil.obs.>"}`},
		{"$JS.API.INFO", ``},
		{"$JS.API.STREAM.MSG.GET." + d.Stream, `{"last_by_subj":"vigil.obs.bt-lab-2"}`},
		{"$JS.API.DIRECT.GET." + d.Stream, `{"last_by_subj":"vigil.obs.bt-lab-2"}`},
		{"$JS.API.CONSUMER.INFO." + d.Stream + "." + d.Consumer, ``},
		{"$JS.API.CONSUMER.LIST." + d.Stream, ``},
	} {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		m, err := nc.RequestWithContext(rctx, req.subject, []byte(req.body))
		cancel()
		if err == nil {
			t.Errorf("sensor user asked %s %s and was answered: %.200s", req.subject, req.body, m.Data)
			if strings.Contains(string(m.Data), "bt-lab-2") {
				t.Errorf("the answer names another sensor")
			}
		}
	}
	sub, err := nc.SubscribeSync(d.Subject + ".>")
	if err == nil {
		defer sub.Unsubscribe()
		_ = nc.Flush()
		if _, err := admin.Publish(ctx, d.Subject+".bt-lab-2", []byte("another sensor's")); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
			t.Errorf("sensor user read another sensor's message on %s", m.Subject)
		}
	}
}

// What a sensor's user can still learn, as docs/deployment.md says: a
// publish whose header Nats-Expected-Last-Subject-Sequence-Subject names
// another subject is refused with the last sequence stored under that
// subject (NATS checks permissions on the subject published to, never on
// a header), so a sensor that guesses another's id learns whether it has
// messages waiting and the sequence of its latest; the refused message is
// not stored. This pins the documented limit: if a NATS release closes
// it, this test fails and the doc is to be changed.
func TestSensorUserCanProbeAGuessedSensorsLastSequence(t *testing.T) {
	admin, hp := withAnotherSensorsMessages(t)
	ctx := context.Background()
	d := DefaultConfig("")
	sensor, err := Open(ctx, sensorConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sensor.Close()
	probe := func(subject string) string {
		m := nats.NewMsg(d.Subject + ".bt-lab-1")
		m.Header.Set("Nats-Expected-Last-Subject-Sequence", "999")
		m.Header.Set("Nats-Expected-Last-Subject-Sequence-Subject", subject)
		_, err := sensor.js.PublishMsg(ctx, m)
		if err == nil {
			t.Fatalf("probe of %s stored", subject)
		}
		return err.Error()
	}
	if got := probe(d.Subject + ".bt-lab-2"); !strings.Contains(got, "wrong last sequence: 3") {
		t.Errorf("probe of a guessed sensor with messages waiting: %s", got)
	}
	if got := probe(d.Subject + ".bt-lab-9"); !strings.Contains(got, "wrong last sequence: 0") {
		t.Errorf("probe of a sensor without: %s", got)
	}
	st, err := admin.Stream(ctx, d.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("the stream holds %d messages after the probes, want the 3 before", n)
	}
}

// withAnotherSensorsMessages starts a NATS server of the doc's users, has
// its admin make the stream and consumer, and publishes three messages
// on sensor bt-lab-2's subject. It returns the admin and the host:port.
func withAnotherSensorsMessages(t *testing.T) (js.JetStream, string) {
	t.Helper()
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	createStreamAndConsumer(t, admin)
	for range 3 {
		if _, err := admin.Publish(context.Background(), DefaultConfig("").Subject+".bt-lab-2", []byte("another sensor's")); err != nil {
			t.Fatal(err)
		}
	}
	return admin, hp
}
