package jetstream

import (
	"context"
	"fmt"
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
	subject := d.Subject + ".bt-lab-1"
	publish3 := func(admin js.JetStream) []error {
		var errs []error
		for range 3 {
			_, err := admin.Publish(ctx, subject, []byte("unread"))
			errs = append(errs, err)
		}
		return errs
	}
	kept := func(admin js.JetStream) (uint64, error) {
		st, err := admin.Stream(ctx, d.Stream)
		if err != nil {
			return 0, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.State.Msgs, nil
	}
	for _, c := range []js.StreamConfig{
		{Storage: js.FileStorage, MaxMsgsPerSubject: 2},
		{Storage: js.FileStorage, MaxMsgsPerSubject: 2, Discard: js.DiscardNew},
	} {
		unsafeStream{what: fmt.Sprintf("of max msgs per subject 2, discard %v", c.Discard), cfg: c, named: "per subject",
			// What such a stream does to a sensor's unread messages.
			premise: func(t *testing.T, admin js.JetStream, _ string) {
				for _, err := range publish3(admin) {
					if err != nil {
						t.Fatal(err)
					}
				}
				if n, err := kept(admin); err != nil || n != 2 {
					t.Fatalf("3 published on one subject, bound 2: %d kept (%v)", n, err)
				}
				st, err := admin.Stream(ctx, d.Stream)
				if err == nil {
					err = st.Purge(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			},
			// Made safe: it refuses instead, the bound kept.
			safe: func(_ *testing.T, admin js.JetStream, got js.StreamConfig) string {
				if got.MaxMsgsPerSubject != 2 || got.Discard != js.DiscardNew || !got.DiscardNewPerSubject {
					return fmt.Sprintf("max msgs per subject %d, discard %v, discard new per subject %v; want 2, new, true",
						got.MaxMsgsPerSubject, got.Discard, got.DiscardNewPerSubject)
				}
				errs := publish3(admin)
				if errs[0] != nil || errs[1] != nil || errs[2] == nil {
					return fmt.Sprintf("3 publishes: %v; want the third refused", errs)
				}
				if n, err := kept(admin); err != nil || n != 2 {
					return fmt.Sprintf("%d messages held (%v), want the first 2", n, err)
				}
				return ""
			}}.refusedOrMadeSafe(t)
	}
}
