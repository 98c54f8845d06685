package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/pipeline"
)

// busFlags name the NATS JetStream bus a sensor publishes to or an ingest
// reads from, and a sensor's on-disk queue.
type busFlags struct {
	url, creds, inbox         *string
	stream, subject, consumer *string
	ackWait                   *time.Duration
	queueDir                  *string
	queueMax                  *int64
	queueSync                 *time.Duration
}

// defineBusFlags defines --bus, --stream and --subject; for an ingest
// also --consumer and --ack-wait, for a sensor --queue-dir, --queue-max
// and --queue-sync.
func defineBusFlags(fs *flag.FlagSet, ingest bool, busHelp string) *busFlags {
	d := jetstream.DefaultConfig("")
	f := &busFlags{
		url:     fs.String("bus", "", busHelp),
		creds:   fs.String("bus-creds", "", "with --bus: NATS credentials `FILE` (the user's JWT and nkey seed), instead of a user:password in the URL"),
		inbox:   fs.String("bus-inbox", "", "with --bus: `PREFIX` of the subjects NATS answers this process on (default _INBOX): give each NATS user its own, and let it subscribe to PREFIX.> only (docs/deployment.md, NATS users and permissions)"),
		stream:  fs.String("stream", d.Stream, "JetStream stream `NAME` (created if missing): two deployments sharing one NATS use two names"),
		subject: fs.String("subject", d.Subject, "subject `PREFIX` of the stream: observations go to PREFIX.<sensor id> (unique per deployment)"),
	}
	if ingest {
		f.consumer = fs.String("consumer", d.Consumer, "durable consumer `NAME`: ingests that share it share the work, each message going to one of them")
		f.ackWait = fs.Duration("ack-wait", d.AckWait, "how long a fetched batch may stay unacknowledged before JetStream hands it to another ingest")
		return f
	}
	q := spool.DefaultConfig("")
	f.queueDir = fs.String("queue-dir", "", "with --bus: keep observations in a bounded on-disk queue in `DIR` while NATS is unreachable, and publish them in order when it returns")
	f.queueMax = fs.Int64("queue-max", q.MaxBytes, "with --queue-dir: most `bytes` the queue holds on disk; observations beyond are dropped and counted")
	f.queueSync = fs.Duration("queue-sync", q.SyncEvery, "with --queue-dir: fsync the queue this often (0: every observation)")
	return f
}

// jetstream returns the bus configuration, checked.
func (f *busFlags) jetstream() (jetstream.Config, error) {
	c := jetstream.DefaultConfig(*f.url)
	c.Stream, c.Subject, c.Creds, c.InboxPrefix = *f.stream, *f.subject, *f.creds, *f.inbox
	if f.consumer != nil {
		c.Consumer, c.AckWait = *f.consumer, *f.ackWait
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	if (c.Creds != "" || c.InboxPrefix != "") && c.URL == "" {
		return c, usagef("--bus-creds and --bus-inbox need --bus")
	}
	return c, nil
}

// queue returns the sensor queue's configuration, nil without
// --queue-dir.
func (f *busFlags) queue() (*spool.Config, error) {
	if f.queueDir == nil || *f.queueDir == "" {
		return nil, nil
	}
	if *f.url == "" {
		return nil, usagef("--queue-dir needs --bus: the queue holds what waits for the bus")
	}
	q := spool.DefaultConfig(*f.queueDir)
	q.MaxBytes, q.SyncEvery = *f.queueMax, *f.queueSync
	if err := q.Validate(); err != nil {
		return nil, usagef("--queue-dir, --queue-max, --queue-sync: %v", err)
	}
	return &q, nil
}

// queueHelp is the sensors' --help on the bus and the queue.
const queueHelp = `
With --bus the observations go to a NATS JetStream stream instead (--stream,
--subject), for a 'vigil ingest --bus' on the store's machine; the sensor's
own --db then only holds its watch-lists. Each signed batch (256
observations or a quarter of a second) is one NATS message of JSON Lines,
one observation a line (a few messages when it passes 512 KiB). The
sensor's NATS user (nats://USER:PASSWORD@HOST:4222, or --bus-creds; its
own --bus-inbox) needs only to publish to SUBJECT.<sensor id> and read
the stream's info when operations created the stream: it then creates
and changes nothing; one
that may not create a missing stream says so, naming the permission, and
with --queue-dir keeps observing into the queue (docs/deployment.md, "NATS
users and permissions"). No password of the URL is printed. Without
--queue-dir the sensor must reach NATS when it starts, and an observation
that NATS does not acknowledge is lost and counted (publish_failed). With
--queue-dir DIR the sensor starts and keeps observing while NATS is
unreachable: every signed batch is appended to segment files in DIR as one
record (with a CRC-32C; written before the sensor goes on, fsynced every
--queue-sync) and published from there in order, the queue's cursor moving
past each record only once NATS acknowledged it; on restart what an earlier run left is published first,
and a record a crash cut short is skipped and counted. The queue holds at
most --queue-max bytes (default 1 GiB, about 590,000 observations of 1.8 KB):
beyond, new observations are dropped and counted, one by one (of a batch
that does not fit, what fits is kept, without its signed head: ingest
stores it marked signature_failed after its --head-wait), never silently. With
--metrics, /healthz says "queue: not ok" while NATS is unreachable or once
anything was dropped, and /metrics has vigil_queue_*. The summary says how
many were queued, dropped, published, and are still queued. DIR (made
0700 when missing) must belong to the sensor's account and be writable by
it alone, or the sensor refuses to start: whoever may write there could
plant observations it would publish as its own. docs/deployment.md has
the details.
`

// printDelivery says where a sensor's observations went: stored here,
// published, queued or dropped. total is the table's total.
func printDelivery(w io.Writer, total int, d pipeline.Delivery, queueDir string) {
	switch q := d.Queue; {
	case !d.Remote:
		fmt.Fprintf(w, "%d observations stored\n", total)
	case q == nil:
		fmt.Fprintf(w, "%d observations published to the bus; %d not published (the bus refused them or was unreachable: counted as publish_failed)\n", total, d.Failed)
	default:
		fmt.Fprintf(w, "%d observations queued, %d dropped (queue full); %d published to the bus (with any an earlier run left), %d still queued in %s (published when the bus returns, or by the next run)",
			q.Queued, q.Dropped, q.Published, q.Pending, queueDir)
		if q.Torn > 0 {
			fmt.Fprintf(w, "; %d torn records skipped", q.Torn)
		}
		fmt.Fprintln(w)
	}
}
