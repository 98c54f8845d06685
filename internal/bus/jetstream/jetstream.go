// Package jetstream carries observations between machines over NATS
// JetStream: sensors publish (Bus is a bus.Publisher), ingest consumes into
// the store (Consumer is a bus.Consumer). Several ingest processes may read
// one stream through one shared durable consumer: JetStream hands each
// message to one of them at a time, and to another only if the first does
// not acknowledge it within AckWait (it crashed, or was too slow); the
// store's insert skips an id it already holds, so such a redelivery is
// never stored twice. Stream, subject and consumer are named in Config,
// so that two deployments can share one NATS.
//
// Delivery is at least once and nothing is lost on a crash. A sensor's
// Publish (PublishBatch) returns only when JetStream has stored the
// message (a file stream by default) and acknowledged it; the message id
// is derived from the observation ids, so a sensor that re-publishes
// after a lost ack is de-duplicated by the server. The consumer
// acknowledges a message only after ingest has placed, routed and
// committed every observation in it to the store (Batch.Ack, AckSome); a
// crash before that redelivers the message, and the store skips ids it
// already holds.
//
// A message is a sensor's signed batch (or a run of it, under
// MaxMessageBytes): its observations in the JSON Lines form of package
// observe, one flat object a line (package wire), so that what crosses
// the wire is what an analyst can read and what 'vigil observations
// import' accepts. A message of one line, what sensors sent before
// batches travelled whole, is read alike.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Config names the stream and consumer.
type Config struct {
	// URL of the NATS server, e.g. nats://127.0.0.1:4222, or several
	// separated by commas. It may carry the NATS user's name and password
	// (nats://user:password@host:4222) or a token (nats://token@host);
	// tls:// asks for TLS. What is printed of it (logs, errors) is
	// RedactURL's.
	URL string
	// Creds is a NATS credentials file (a user's JWT and nkey seed), or
	// "" for none.
	Creds string
	// InboxPrefix is the prefix of the subjects NATS answers this
	// process on ("" for NATS's _INBOX): with a prefix of its own for
	// each user, a user may subscribe only to its own answers, and a
	// sensor's credentials cannot read what is fetched for ingest.
	InboxPrefix string
	// Stream is the JetStream stream (created if missing), Subject the
	// subject prefix: observations go to Subject + "." + sensor id.
	Stream, Subject string
	// Consumer is the durable consumer ingest reads with.
	Consumer string
	// MaxAge bounds how long the stream keeps observations nobody consumed
	// (ingest down for a long time); 0 keeps them until consumed.
	MaxAge time.Duration
	// Dedupe is the server's duplicate window for message ids.
	Dedupe time.Duration
	// Batch is the most observations the consumer hands over at once.
	Batch int
	// AckWait is how long a fetched message may stay unacknowledged
	// before JetStream hands it to another fetch (another ingest): longer
	// than a batch's commit. Default 1 minute.
	AckWait time.Duration
	// MaxAckPending is the most messages handed out and not yet
	// acknowledged, across the consumer's ingests, before JetStream stops
	// delivering (0: 4 × Batch; negative: no limit). Ingests that hold
	// observations for their batch's signature (ingest's gate) need room
	// for all they may hold together, or the heads they wait for are
	// never delivered: 'vigil ingest' sets no limit, each ingest's gate
	// bounding what it holds.
	MaxAckPending int
}

// DefaultConfig is a file-backed stream "VIGIL_OBSERVATIONS" on subject
// "vigil.obs.>" with a durable consumer "ingest".
func DefaultConfig(url string) Config {
	return Config{URL: url, Stream: "VIGIL_OBSERVATIONS", Subject: "vigil.obs", Consumer: "ingest",
		Dedupe: 10 * time.Minute, Batch: 1000, AckWait: time.Minute}
}

// Validate reports a Config whose names NATS would refuse.
func (c *Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("jetstream: no NATS URL")
	case !validName(c.Stream):
		return fmt.Errorf("jetstream: stream name %q: want letters, digits, - or _", c.Stream)
	case !validName(c.Consumer):
		return fmt.Errorf("jetstream: consumer name %q: want letters, digits, - or _", c.Consumer)
	case c.InboxPrefix != "" && (strings.ContainsAny(c.InboxPrefix, "*> \t") || strings.HasPrefix(c.InboxPrefix, ".") || strings.HasSuffix(c.InboxPrefix, ".") || strings.Contains(c.InboxPrefix, "..")):
		return fmt.Errorf("jetstream: inbox prefix %q: want dot-separated tokens without wildcards, e.g. _INBOX_ingest", c.InboxPrefix)
	case c.Subject == "" || strings.ContainsAny(c.Subject, "*> \t") || strings.HasPrefix(c.Subject, ".") || strings.HasSuffix(c.Subject, ".") || strings.Contains(c.Subject, ".."):
		return fmt.Errorf("jetstream: subject prefix %q: want dot-separated tokens without wildcards, e.g. vigil.obs", c.Subject)
	}
	return nil
}

// validName is a stream or consumer name NATS accepts everywhere (it
// becomes a file name on the server).
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ErrStreamOfOtherSubjects is a stream, named as this bus's, that takes
// other subjects than its --subject: it is left as it is.
var ErrStreamOfOtherSubjects = errors.New("the stream exists with other subjects")

// ErrUnsafeStream is a stream, named as this bus's, on which a publisher
// can delete other publishers' messages before ingest reads them (it
// allows roll-ups, or drops its oldest messages past a bound, stream-wide
// or per subject), or which
// stores them where ingest does not read (a subject transform), and
// which this NATS user may not make safe. It does not pass by itself.
var ErrUnsafeStream = errors.New("the stream can lose or hide messages before ingest reads them")

// Bus is a connection to the stream.
type Bus struct {
	cfg Config
	nc  *nats.Conn
	js  js.JetStream
	log *slog.Logger

	denied denials // what the server refused this connection

	mu sync.Mutex
	st js.Stream // nil until the stream is created or updated
}

// Open connects, waiting for the server (the URL must be given: there is
// no default server). It does not look at the stream: a publisher (a
// sensor) never reads the stream's info, which would show it the other
// sensors' subjects and counts; it learns of a missing stream from its
// first publish, and creates it then if its NATS user may. Ingest's
// Consumer checks the stream (stream).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	return connect(cfg, log, false)
}

// OpenLazy is Open for a sensor that must start while NATS is away: it
// does not wait for the server and keeps reconnecting in the background.
// Until it reaches it each Publish fails at once (a queue in front of the
// bus, package spool, holds the observations).
func OpenLazy(cfg Config, log *slog.Logger) (*Bus, error) {
	return connect(cfg, log, true)
}

func connect(cfg Config, log *slog.Logger, lazy bool) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = time.Minute
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 4 * cfg.Batch
	}
	if cfg.MaxAckPending < 0 {
		cfg.MaxAckPending = -1 // JetStream's "no limit"
	}
	b := &Bus{cfg: cfg, log: log}
	// No reconnect buffer: a publish while the server is away fails at
	// once instead of waiting in memory for an ack that cannot come.
	opts := []nats.Option{nats.Name("vigil"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(-1), nats.RetryOnFailedConnect(lazy),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("jetstream: disconnected from NATS", "url", b.url(), "err", b.scrub(err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("jetstream: reconnected to NATS", "url", b.url()) }),
		nats.ErrorHandler(b.asyncError)}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect %s: %w", b.url(), b.scrub(err))
	}
	j, err := js.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream %s: %w", b.url(), err)
	}
	b.nc, b.js = nc, j
	return b, nil
}

// stream returns the stream, once it has found it as this bus wants it,
// or made it so (ingest's Consumer; a publisher never reads the
// stream's info): a stream that exists as wanted is used as it is, one that
// differs is updated, and a missing one created. A NATS user without the
// right to update is warned of and uses the stream as it is; one without
// the right to create a missing stream gets an error that says so
// (ErrPermission), naming the stream and the permission.
func (b *Bus) stream(ctx context.Context) (js.Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st != nil {
		return b.st, nil
	}
	gctx, done := b.guard(ctx)
	defer done()
	want := b.want()
	old, err := b.js.Stream(gctx, b.cfg.Stream)
	if errors.Is(err, js.ErrStreamNotFound) {
		st, cerr := b.js.CreateStream(gctx, want)
		switch {
		case cerr == nil:
			b.st = st
			return st, nil
		case errors.Is(cerr, js.ErrStreamNameAlreadyInUse): // created meanwhile, otherwise
			old, err = b.js.Stream(gctx, b.cfg.Stream)
		case errors.Is(refusal(gctx, cerr), ErrPermission):
			return nil, fmt.Errorf("jetstream %s: stream %s does not exist and this NATS user may not create it (%w): have it created with an admin user (docs/deployment.md, NATS users and permissions); a sensor's --queue-dir keeps the observations meanwhile",
				b.url(), b.cfg.Stream, refusal(gctx, cerr))
		default:
			return nil, fmt.Errorf("jetstream %s: stream %s: %w", b.url(), b.cfg.Stream, cerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream %s: stream %s: %w", b.url(), b.cfg.Stream, refusal(gctx, err))
	}
	return b.useStream(gctx, old, want)
}

// want is the stream as this bus makes it.
func (b *Bus) want() js.StreamConfig {
	return js.StreamConfig{
		Name:       b.cfg.Stream,
		Subjects:   []string{b.cfg.Subject + ".>"},
		Storage:    js.FileStorage,
		Retention:  js.WorkQueuePolicy, // a message goes once it is acknowledged by ingest
		MaxAge:     b.cfg.MaxAge,
		Duplicates: b.cfg.Dedupe,
	}
}

// useStream uses the stream that exists, updating it where it differs
// from want, when this NATS user may.
func (b *Bus) useStream(gctx context.Context, old js.Stream, want js.StreamConfig) (js.Stream, error) {
	// A stream of that name that takes other subjects is another
	// deployment's (or this one's, with another --subject): updating it
	// would take its subjects from it, its sensors' publishes failing and
	// ours reaching its ingest. Its subjects are kept as they are.
	have := old.CachedInfo().Config
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		return nil, fmt.Errorf("jetstream %s: stream %s: %w: it takes %s, not %s (give each deployment its own --stream and --subject)",
			b.url(), b.cfg.Stream, ErrStreamOfOtherSubjects, strings.Join(have.Subjects, " "), want.Subjects[0])
	}
	// Only what Vigil has a setting for is updated: what operations set
	// by hand (replicas, byte and message bounds) is kept, but for what
	// lets a publisher delete the others' messages (loses), which is
	// turned off, or the stream refused. Storage and retention cannot
	// change on a stream that exists.
	unsafe := loses(have)
	unsafe = joinWhy(unsafe, agesOut(have, want), b.refusesLarge(have))
	if unsafe == "" && have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates {
		b.st = old
		return old, nil
	}
	upd := have
	upd.MaxAge, upd.Duplicates = want.MaxAge, want.Duplicates
	if unsafe != "" {
		upd.AllowRollup, upd.SubjectTransform, upd.RePublish = false, nil, nil
		if upd.MaxMsgs > 0 || upd.MaxBytes > 0 || upd.MaxMsgsPerSubject > 0 {
			upd.Discard = js.DiscardNew // the bound kept: a full stream refuses, and sensors queue
		}
		if upd.MaxMsgsPerSubject > 0 {
			upd.DiscardNewPerSubject = true // else NATS drops a subject's oldest whatever Discard says
		}
		if b.refusesLarge(upd) != "" {
			upd.MaxMsgSize = -1 // NATS's max_payload bounds a message
		}
	}
	st, err := b.js.UpdateStream(gctx, upd)
	if err == nil {
		got := st.CachedInfo().Config
		if still := joinWhy(loses(got), agesOut(got, want), b.refusesLarge(got)); still != "" {
			return nil, fmt.Errorf("jetstream %s: stream %s: %w: %s, and updating it did not change that: have an admin user make it anew (docs/deployment.md, NATS users and permissions)",
				b.url(), b.cfg.Stream, ErrUnsafeStream, still)
		}
		b.st = st
		return st, nil
	}
	err = refusal(gctx, err)
	if unsafe != "" {
		return nil, fmt.Errorf("jetstream %s: stream %s: %w: %s, and this NATS user may not change that (%w): have an admin user do it (docs/deployment.md, NATS users and permissions)",
			b.url(), b.cfg.Stream, ErrUnsafeStream, unsafe, err)
	}
	if !errors.Is(err, ErrPermission) {
		return nil, fmt.Errorf("jetstream %s: stream %s: %w", b.url(), b.cfg.Stream, err)
	}
	b.log.Warn("jetstream: the stream differs from this process's settings and its NATS user may not update it: it is used as it is",
		"stream", b.cfg.Stream, "storage", have.Storage.String(), "retention", have.Retention.String(),
		"max_age", have.MaxAge, "duplicates", have.Duplicates, "err", err)
	b.st = old
	return old, nil
}

// joinWhy joins the reasons that are not "".
func joinWhy(why ...string) string {
	return strings.Join(slices.DeleteFunc(why, func(s string) bool { return s == "" }), "; ")
}

// refusesLarge says how a stream of settings c refuses messages that
// NATS carries ("" if it does not): a bound on a message's size under the
// server's max_payload. A sensor's message over it is refused at every
// try, its queue stopping behind it, filling, and dropping new
// observations; a sensor, which reads nothing of the stream, cannot see
// the bound.
func (b *Bus) refusesLarge(c js.StreamConfig) string {
	mp := b.nc.MaxPayload()
	if c.MaxMsgSize <= 0 || mp <= 0 || int64(c.MaxMsgSize) >= mp {
		return ""
	}
	return fmt.Sprintf("it refuses messages larger than %d bytes, under the %d NATS carries (a sensor's message over it is refused at every try: its queue stops behind it, fills, and drops new observations)", c.MaxMsgSize, mp)
}

// agesOut says how a stream of settings have deletes messages ingest has
// not read by their age, where want (Vigil's Config.MaxAge, none by
// default) keeps them longer ("" if it does not): ingest away for longer
// than the stream's maximum age loses every sensor's unread observations.
func agesOut(have, want js.StreamConfig) string {
	if have.MaxAge <= 0 || want.MaxAge > 0 && have.MaxAge >= want.MaxAge {
		return ""
	}
	keep := "until ingest stores them"
	if want.MaxAge > 0 {
		keep = "for " + want.MaxAge.String()
	}
	return fmt.Sprintf("its maximum age is %v: it deletes what ingest has not read by then (ingest away for longer loses every sensor's unread observations; Vigil keeps them %s)", have.MaxAge, keep)
}

// loses says how, on a stream of these settings, a publisher can delete
// other publishers' messages that ingest has not read, or ingest not
// read them at all, or others read them ("" if none): roll-ups ("Nats-Rollup: all" purges
// the stream), a bound on messages or bytes past which the oldest are
// discarded (one publisher pushes the others' out), a bound on messages
// per subject past which a subject's oldest are (NATS drops them whatever
// the discard policy, unless it discards new per subject), a subject transform
// (messages stored under subjects ingest's consumer does not read),
// memory storage (a restart loses them), interest retention (a message
// published while no consumer exists is acknowledged and not stored),
// or others read them: republishing (every stored message copied to a
// subject that users other than ingest may be allowed to read). A
// maximum age shorter than Vigil's is agesOut's.
func loses(c js.StreamConfig) string {
	var d []string
	if c.AllowRollup {
		d = append(d, "it allows roll-ups (any publisher may purge it with a Nats-Rollup header)")
	}
	if c.Discard == js.DiscardOld && (c.MaxMsgs > 0 || c.MaxBytes > 0) {
		d = append(d, fmt.Sprintf("it discards its oldest messages past %d messages or %d bytes (a publisher may push the others' out; discard new keeps the bound and refuses instead)", c.MaxMsgs, c.MaxBytes))
	}
	if c.MaxMsgsPerSubject > 0 && !(c.Discard == js.DiscardNew && c.DiscardNewPerSubject) {
		d = append(d, fmt.Sprintf("it keeps at most %d messages per subject and drops a subject's oldest past that (a sensor's subject is its own: ingest away, or a sensor publishing more, loses its unread messages; discard new per subject keeps the bound and refuses instead)", c.MaxMsgsPerSubject))
	}
	if c.Storage == js.MemoryStorage {
		d = append(d, "it keeps its messages in memory (a NATS restart loses every one ingest has not stored, which the sensors no longer hold; storage cannot change on a stream that exists)")
	}
	if c.Retention == js.InterestPolicy {
		d = append(d, "it keeps a message only while a consumer wants it (interest retention: one published while no consumer exists, before ingest's is made or while it is made anew, is acknowledged to its sensor and not stored; retention cannot change to work-queue on a stream that exists)")
	}
	if c.RePublish != nil {
		d = append(d, fmt.Sprintf("it republishes the messages it stores (%s to %s: whoever may subscribe there, a sensor's user under its inbox say, reads every sensor's observations)", c.RePublish.Source, c.RePublish.Destination))
	}
	if c.SubjectTransform != nil {
		d = append(d, fmt.Sprintf("it stores messages under other subjects (%s to %s: ingest, reading the deployment's subjects, would read none of them)", c.SubjectTransform.Source, c.SubjectTransform.Destination))
	}
	return strings.Join(d, "; ")
}

// Transient reports whether err, returned by this bus, may pass by
// itself: the connection is down, or NATS did not answer in time (a
// restart, a server under load). Anything else is NATS refusing.
func (b *Bus) Transient(err error) bool {
	if errors.Is(err, ErrPermission) {
		return false
	}
	return !b.nc.IsConnected() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, js.ErrNoStreamResponse)
}

// Close closes the connection. The disconnect handler is removed first:
// it would log, from NATS's own goroutine, after the caller is done.
func (b *Bus) Close() {
	b.nc.SetDisconnectErrHandler(nil)
	b.nc.SetReconnectHandler(nil)
	b.nc.Close()
}

// subjectToken makes a sensor id safe as one subject token.
func subjectToken(s string) string {
	if s == "" {
		return "unnamed"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// Encode is the message body of o: one JSON Lines line.
func Encode(o *observe.Observation) ([]byte, error) {
	return observe.MarshalLine(o)
}

// Decode reads a message body.
func Decode(b []byte) (observe.Observation, error) {
	var o observe.Observation
	err := observe.DecodeLine(b, &o)
	return o, err
}

// Publish stores o in the stream and waits for the server's ack. An
// observation without an id is given one first, so that a retry is
// recognised as the same message.
func (b *Bus) Publish(ctx context.Context, o observe.Observation) error {
	if o.ID == "" {
		o.ID = observe.NewID(o.Time)
	}
	body, err := Encode(&o)
	if err != nil {
		return err
	}
	if err := b.publish(ctx, subjectToken(o.Sensor.ID), body, o.ID); err != nil {
		return fmt.Errorf("jetstream publish %s: %w", o.ID, err)
	}
	return nil
}

// publish stores one message in the stream, under Subject.token, and
// waits for the server's ack. It reads nothing of the stream: the
// message carries the stream's name (Nats-Expected-Stream), so that
// NATS stores it there or refuses it. When no stream takes the subject
// it creates the stream, if this NATS user may, and publishes again; a
// user that may not gets an error that says so (ErrPermission).
func (b *Bus) publish(ctx context.Context, token string, body []byte, id string) error {
	gctx, done := b.guard(ctx)
	defer done()
	m := &nats.Msg{Subject: b.cfg.Subject + "." + token, Data: body}
	_, err := b.js.PublishMsg(gctx, m, js.WithMsgID(id), js.WithExpectStream(b.cfg.Stream))
	err = refusal(gctx, err)
	if !errors.Is(err, js.ErrNoStreamResponse) || !b.nc.IsConnected() {
		return err
	}
	if err := b.create(ctx, m.Subject); err != nil {
		return err
	}
	_, err = b.js.PublishMsg(gctx, m, js.WithMsgID(id), js.WithExpectStream(b.cfg.Stream))
	return refusal(gctx, err)
}

// create makes the stream that no stream taking subject was found for,
// as stream would, without first reading its info (a sensor's user may
// not). A stream of that name that exists already takes other subjects
// (or was made meanwhile): stream then says which, or uses it.
func (b *Bus) create(ctx context.Context, subject string) error {
	gctx, done := b.guard(ctx)
	defer done()
	_, err := b.js.CreateStream(gctx, b.want())
	switch {
	case err == nil:
		b.log.Info("jetstream: no stream took this sensor's subject: created it", "stream", b.cfg.Stream, "subject", subject)
		return nil
	case errors.Is(err, js.ErrStreamNameAlreadyInUse):
		_, serr := b.stream(ctx)
		if errors.Is(serr, ErrPermission) {
			return fmt.Errorf("jetstream %s: stream %s: %w: it does not take %s (give each deployment its own --stream and --subject)",
				b.url(), b.cfg.Stream, ErrStreamOfOtherSubjects, subject)
		}
		return serr
	case errors.Is(refusal(gctx, err), ErrPermission):
		return fmt.Errorf("jetstream %s: stream %s does not exist and this NATS user may not create it, or it exists and takes other subjects (no stream takes %s; %w): have it created with an admin user (docs/deployment.md, NATS users and permissions); a sensor's --queue-dir keeps the observations meanwhile",
			b.url(), b.cfg.Stream, subject, refusal(gctx, err))
	}
	return fmt.Errorf("jetstream %s: stream %s: %w", b.url(), b.cfg.Stream, refusal(gctx, err))
}

// PublishBatch implements bus.BatchPublisher: obs travel as few
// messages as fit (DecodeMessage reads one): each a run of one sensor's
// observations in order, of their JSON lines, at most MaxMessageBytes
// and well under the server's max_payload. Each message is stored and
// acknowledged before the next is sent; the first that fails stops the
// batch, so that what reaches the stream is always in order: the
// *bus.BatchError names its observations and those after it. A
// re-publish of the same batch gives the same messages and ids, which
// the server's duplicate window recognises.
func (b *Bus) PublishBatch(ctx context.Context, obs []observe.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	obs = slices.Clone(obs)
	for i := range obs {
		if obs[i].ID == "" {
			obs[i].ID = observe.NewID(obs[i].Time)
		}
	}
	msgs, failed, errs := messages(obs, b.messageLimit())
	for j, m := range msgs {
		if err := b.publish(ctx, m.subject, m.body, m.id); err != nil {
			for _, later := range msgs[j:] {
				for i := later.first; i < later.first+later.n; i++ {
					failed = append(failed, i)
				}
			}
			errs = append(errs, fmt.Errorf("jetstream publish of %d observations %s (and %d messages after it not sent): %w", m.n, m.id, len(msgs)-j-1, err))
			break
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return &bus.BatchError{Failed: failed, Err: errors.Join(errs...)}
}

// messageLimit is the most a message of several observations holds:
// MaxMessageBytes, or less when the server takes less (its max_payload,
// headers included).
func (b *Bus) messageLimit() int {
	limit := MaxMessageBytes
	if mp := int(b.nc.MaxPayload()); mp > 0 {
		limit = min(limit, mp/2)
	}
	return limit
}

// Consume hands batches of observations to handle until ctx ends,
// acknowledging each batch only when handle returned nil. On an error the
// batch is not acknowledged (JetStream redelivers it) and Consume returns
// the error. It is Consumer's Fetch, Ack and Nak in a loop.
func (b *Bus) Consume(ctx context.Context, handle func(ctx context.Context, batch []observe.Observation) error) error {
	c, err := b.Consumer(ctx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		bt, err := c.Fetch(ctx, b.cfg.Batch, 250*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		obs := bt.Observations()
		if len(obs) == 0 {
			continue
		}
		if err := handle(context.WithoutCancel(ctx), obs); err != nil {
			bt.Nak()
			return err
		}
		_ = bt.Ack(context.WithoutCancel(ctx))
	}
	return nil
}
