package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A sensor's NATS user learns nothing of the other sensors: not their
// subjects (which name their sensor ids) nor how many messages each has
// waiting. Before, its user could read the stream's info, and a request
// with a subjects_filter answered every subject in the stream with its
// count. Every request below is refused by NATS (no answer comes), and
// the sensor still publishes (TestLeastPrivilegeSensorAndIngest).
func TestSensorUserCannotLearnOtherSensors(t *testing.T) {
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	createStreamAndConsumer(t, admin)
	ctx := context.Background()
	d := DefaultConfig("")
	for range 3 {
		if _, err := admin.Publish(ctx, d.Subject+".bt-lab-2", []byte("another sensor's")); err != nil {
			t.Fatal(err)
		}
	}
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
