package jetstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// startServerWithUsers runs a real NATS server configured by
// testdata/nats-permissions.conf (the excerpt in docs/deployment.md), on
// a loopback port of its choosing, storing in a temporary directory. It
// returns the server's host:port.
func startServerWithUsers(t *testing.T) string {
	t.Helper()
	opts, err := server.ProcessConfigFile("testdata/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, t.TempDir(), true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return strings.TrimPrefix(s.ClientURL(), "nats://")
}

const (
	adminPassword  = "admin-test-password"
	sensorPassword = "sensor-test-password"
	ingestPassword = "ingest-test-password"
)

// asAdmin creates what operations create before any sensor or ingest
// runs: the stream and the durable consumer, as Vigil's defaults want
// them ('vigil ingest' asks for no limit on acks pending).
func asAdmin(t *testing.T, hostPort string) js.JetStream {
	t.Helper()
	return jetStreamAt(t, "nats://vigil-admin:"+adminPassword+"@"+hostPort)
}

// jetStreamAt connects to url for the test's length.
func jetStreamAt(t *testing.T, url string) js.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func createStreamAndConsumer(t *testing.T, admin js.JetStream) {
	t.Helper()
	ctx := context.Background()
	d := DefaultConfig("")
	st, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
		AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>"}); err != nil {
		t.Fatal(err)
	}
}

func sensorConfig(hostPort string) Config {
	c := DefaultConfig("nats://sensor-bt-lab-1:" + sensorPassword + "@" + hostPort)
	c.InboxPrefix = "_INBOX_bt-lab-1"
	return c
}

func ingestConfig(hostPort string) Config {
	c := DefaultConfig("nats://vigil-ingest:" + ingestPassword + "@" + hostPort)
	c.InboxPrefix, c.MaxAckPending = "_INBOX_ingest", -1
	return c
}

// A sensor whose NATS user may only publish to its subject (not even read
// the stream's info) publishes into the stream operations created, and an
// ingest whose user may only consume and acknowledge stores it all: neither
// creates nor updates anything.
func TestLeastPrivilegeSensorAndIngest(t *testing.T) {
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	createStreamAndConsumer(t, admin)
	publishedThenStored(t, hp, 20)
}

// publishedThenStored has n observations published by the doc's sensor
// user and consumed by its ingest user into a new store, and fails t
// unless every one is stored.
func publishedThenStored(t *testing.T, hp string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sensor, err := Open(ctx, sensorConfig(hp), nil)
	if err != nil {
		t.Fatalf("sensor with publish-only rights: %v", err)
	}
	defer sensor.Close()
	obs := observations(n)
	if err := sensor.PublishBatch(ctx, obs); err != nil {
		t.Fatalf("sensor publish: %v", err)
	}
	ingest, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatalf("ingest with consume-only rights: %v", err)
	}
	defer ingest.Close()
	st := openStore(t)
	if err := consumeUntil(t, ingest, st, len(obs), nil); err != nil {
		t.Fatal(err)
	}
	got := stored(t, st)
	for _, o := range obs {
		if _, ok := got[o.ID]; !ok {
			t.Fatalf("observation %s not stored", o.ID)
		}
	}
}

// What a sensor's credentials allow cannot lose evidence: its user may
// not purge or delete the stream or the consumer, nor change the stream,
// nor publish outside its own subject (another sensor's, another
// deployment's).
func TestSensorUserCannotLoseEvidence(t *testing.T) {
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	createStreamAndConsumer(t, admin)
	adminConn := admin.Conn()
	d := DefaultConfig("")
	nc, err := nats.Connect("nats://sensor-bt-lab-1:"+sensorPassword+"@"+hp, nats.CustomInboxPrefix("_INBOX_bt-lab-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	try := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := f(ctx); err == nil {
			t.Errorf("sensor user could %s", what)
		}
	}
	try("purge the stream", func(ctx context.Context) error {
		nc2, err := nats.Connect("nats://sensor-bt-lab-1:"+sensorPassword+"@"+hp, nats.CustomInboxPrefix("_INBOX_bt-lab-1"))
		if err != nil {
			return nil
		}
		defer nc2.Close()
		_, err = nc2.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+d.Stream, nil)
		return err
	})
	try("delete the stream", func(ctx context.Context) error { return j.DeleteStream(ctx, d.Stream) })
	try("delete the consumer", func(ctx context.Context) error { return j.DeleteConsumer(ctx, d.Stream, d.Consumer) })
	try("change the stream's max age", func(ctx context.Context) error {
		_, err := j.UpdateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
			Storage: js.FileStorage, Retention: js.WorkQueuePolicy, MaxAge: time.Second})
		return err
	})
	try("publish as another sensor", func(ctx context.Context) error {
		_, err := j.Publish(ctx, d.Subject+".bt-lab-2", []byte("{}"))
		return err
	})
	try("publish outside the deployment", func(ctx context.Context) error {
		_, err := j.Publish(ctx, "other.obs.bt-lab-1", []byte("{}"))
		return err
	})
	try("read the ingest's inbox", func(ctx context.Context) error {
		sub, err := nc.SubscribeSync("_INBOX_ingest.>")
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		if err := nc.Flush(); err != nil {
			return err
		}
		if err := adminConn.Publish("_INBOX_ingest.probe", []byte("fetched observations")); err != nil {
			t.Fatal(err)
		}
		_, err = sub.NextMsg(300 * time.Millisecond)
		return err
	})
	ctx := context.Background()
	st, err := admin.Stream(ctx, d.Stream)
	if err != nil {
		t.Fatalf("stream gone: %v", err)
	}
	if st.CachedInfo().Config.MaxAge != 0 {
		t.Errorf("stream's max age changed to %v", st.CachedInfo().Config.MaxAge)
	}
	if _, err := st.Consumer(ctx, d.Consumer); err != nil {
		t.Errorf("consumer gone: %v", err)
	}
}

// Without the right to create a missing stream, a sensor says so at once,
// naming the stream and the permission, and the error is not one that
// passes by itself (a sensor's queue keeps the observations meanwhile).
// No password reaches the error or the log.
func TestSensorWithoutRightToCreateSaysSo(t *testing.T) {
	hp := startServerWithUsers(t)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	sb, err := Open(ctx, sensorConfig(hp), log)
	if err != nil {
		t.Fatal(err)
	}
	err = sb.PublishBatch(ctx, observations(1))
	sb.Close()
	if err == nil {
		t.Fatal("sensor created the stream without the right to")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v to say so", took)
	}
	for _, want := range []string{"VIGIL_OBSERVATIONS", "$JS.API.STREAM.CREATE.VIGIL_OBSERVATIONS", "permission"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if !errors.Is(err, ErrPermission) {
		t.Errorf("error %v is not ErrPermission", err)
	}

	if strings.Contains(err.Error()+logged.String(), sensorPassword) {
		t.Errorf("the password reached the error or the log:\n%v\n%s", err, logged.String())
	}
	logged.Reset() // each connection logs a refusal once
	b, err := OpenLazy(sensorConfig(hp), log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.PublishBatch(ctx, observations(3))
	if err == nil || !errors.Is(err, ErrPermission) || b.Transient(err) {
		t.Fatalf("publish without a stream: %v (transient %v), want a permission error that does not pass by itself", err, err != nil && b.Transient(err))
	}
	for range 2 {
		if err := b.PublishBatch(ctx, observations(3)); !errors.Is(err, ErrPermission) {
			t.Fatalf("publish again: %v", err)
		}
	}
	if n := strings.Count(logged.String(), "$JS.API.STREAM.CREATE.VIGIL_OBSERVATIONS"); n != 1 {
		t.Errorf("the refusal logged %d times, want once:\n%s", n, logged.String())
	}
	if strings.Contains(err.Error()+logged.String(), sensorPassword) {
		t.Errorf("the password reached the error or the log:\n%v\n%s", err, logged.String())
	}
}

// The password of a bus URL never reaches an error or a log line: a
// refused login, a disconnection.
func TestBusPasswordNeverShown(t *testing.T) {
	hp := startServerWithUsers(t)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	wrong := "nats://sensor-bt-lab-1:wrong-" + sensorPassword + "@" + hp
	_, err := Open(context.Background(), DefaultConfig(wrong), log)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), sensorPassword) {
		t.Errorf("the password reached the error: %v", err)
	}
	if !strings.Contains(err.Error(), "sensor-bt-lab-1") {
		t.Errorf("error %q does not name the user", err)
	}
	for _, bad := range []string{"nats://u:" + sensorPassword + "@bad host:4222", "nats://u:" + sensorPassword + "@127.0.0.1:notaport",
		"nats://u:" + sensorPassword + "%zz@" + hp, "nats://" + sensorPassword + "@bad host:4222"} {
		if _, err := Open(context.Background(), DefaultConfig(bad), log); err == nil || strings.Contains(err.Error(), sensorPassword) {
			t.Errorf("a malformed URL: the password reached the error: %v", err)
		}
	}
	admin := asAdmin(t, hp)
	createStreamAndConsumer(t, admin)
	b, err := Open(context.Background(), sensorConfig(hp), log)
	if err != nil {
		t.Fatal(err)
	}
	b.log.Warn("jetstream: disconnected from NATS", "url", b.url())
	b.Close()
	if strings.Contains(logged.String(), sensorPassword) {
		t.Errorf("the password reached the log:\n%s", logged.String())
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                "nats://127.0.0.1:4222",
		"nats://user:secret@127.0.0.1:4222":    "nats://user:xxxxx@127.0.0.1:4222",
		"nats://s3cr3t-token@127.0.0.1:4222":   "nats://xxxxx@127.0.0.1:4222",
		"tls://a:b@h1:4222,nats://c:d@h2:4222": "tls://a:xxxxx@h1:4222,nats://c:xxxxx@h2:4222",
		"a:secret@127.0.0.1:4222":              "a:xxxxx@127.0.0.1:4222",
		"nats://u:p%40ss@[::1]:4222":           "nats://u:xxxxx@[::1]:4222",
		"nats://u:pa ss@bad host":              "nats://u:xxxxx@bad host",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The durable consumer reads only the deployment's subjects.
func TestConsumerReadsOnlyItsSubjects(t *testing.T) {
	b, err := Open(context.Background(), DefaultConfig(startServer(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := b.Consumer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := c.cons.CachedInfo().Config.FilterSubject; f != "vigil.obs.>" {
		t.Errorf("consumer's filter %q, want vigil.obs.>", f)
	}
}

// A stream operations made by hand keeps what Vigil has no setting for
// (its byte bound, its message bound) when Vigil, with the right to,
// updates the settings it has (the duplicate window).
func TestUpdateKeepsTheStreamsOtherSettings(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, _ := js.New(nc)
	ctx := context.Background()
	if _, err := j.CreateStream(ctx, js.StreamConfig{Name: "VIGIL_OBSERVATIONS", Subjects: []string{"vigil.obs.>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: 2 * time.Minute, MaxBytes: 1 << 30, MaxMsgs: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	openBus(t, DefaultConfig(url))
	st, err := j.Stream(ctx, "VIGIL_OBSERVATIONS")
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	if c.Duplicates != 10*time.Minute || c.MaxBytes != 1<<30 || c.MaxMsgs != 1<<20 {
		t.Errorf("after Open: duplicates %v, max bytes %d, max msgs %d; want 10m0s, %d, %d", c.Duplicates, c.MaxBytes, c.MaxMsgs, 1<<30, 1<<20)
	}
}

// An ingest whose user may not create the durable consumer operations
// did not make says so, naming it, with an error that does not pass by
// itself ('vigil ingest' then ends instead of waiting as for NATS away).
func TestIngestWithoutRightToCreateTheConsumerSaysSo(t *testing.T) {
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	d := DefaultConfig("")
	if _, err := admin.CreateStream(context.Background(), js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe}); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Consumer(context.Background())
	if err == nil || !errors.Is(err, ErrPermission) || b.Transient(err) {
		t.Fatalf("consumer without the right to create it: %v", err)
	}
	if !strings.Contains(err.Error(), "consumer ingest of stream VIGIL_OBSERVATIONS does not exist") {
		t.Errorf("error %q does not name the consumer", err)
	}
}

// docs/deployment.md shows the configuration the tests run, as it is.
func TestDeploymentDocShowsThePermissionsConfig(t *testing.T) {
	conf, err := os.ReadFile("testdata/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, append([]byte("```\n"), append(conf, []byte("```\n")...)...)) {
		t.Error("docs/deployment.md, NATS users and permissions, does not show testdata/nats-permissions.conf as it is")
	}
}

// Whatever the URL, what RedactURL leaves holds no password or token but
// xxxxx, and redacting again changes nothing.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"nats://u:p@h:4222", "tok@h", "tls://a:b@h1,nats://c@h2", "", "@", "::@@", "nats://h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := RedactURL(s)
		for _, p := range strings.Split(r, ",") {
			if sec := urlSecret(p); sec != "" && sec != "xxxxx" {
				t.Fatalf("RedactURL(%q) = %q: secret %q left", s, r, sec)
			}
		}
		if again := RedactURL(r); again != r {
			t.Fatalf("RedactURL(%q) = %q, again %q", s, r, again)
		}
	})
}

// racingJS makes the stream, with another duplicate window, just before
// the bus's own create: another sensor that started at the same time.
type racingJS struct{ js.JetStream }

func (r racingJS) CreateStream(ctx context.Context, cfg js.StreamConfig) (js.Stream, error) {
	other := cfg
	other.Duplicates = time.Minute
	if _, err := r.JetStream.CreateStream(ctx, other); err != nil {
		return nil, err
	}
	return r.JetStream.CreateStream(ctx, cfg)
}

// A stream made by another process between the bus's look and its
// create is used (and updated as it would have been had it been there).
func TestStreamCreatedMeanwhileIsUsed(t *testing.T) {
	b, err := connect(DefaultConfig(startServer(t)), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.js = racingJS{b.js}
	st, err := b.stream(context.Background())
	if err != nil {
		t.Fatalf("stream made meanwhile: %v", err)
	}
	if d := st.CachedInfo().Config.Duplicates; d != 10*time.Minute {
		t.Errorf("duplicate window %v, want 10m0s", d)
	}
}

// A durable consumer made without a filter (by a version before the
// filter, or by hand) on a stream that holds only the deployment's
// subjects reads what a filtered one reads: it is used as it is, not
// updated, so that an ingest whose NATS user may not update consumers,
// or a server that refuses to change a filter, still starts.
func TestUnfilteredConsumerOnTheDeploymentsStreamIsUsedAsItIs(t *testing.T) {
	info := consumerAfterMadeAs(t, func(*js.ConsumerConfig) {})
	if f := info.Config.FilterSubject; f != "" {
		t.Errorf("the consumer was updated to filter %q; want it used as it is", f)
	}
}

// A durable consumer whose other settings change what ingest reads
// (bodies dropped, a message given up after one delivery, a start past
// the stream's first message, replay at the rate it came) is not "as
// wanted": one the ingest's user may update is set right, and one it may
// not is refused naming it. Before, only the ack settings and the filter
// were compared, and such a consumer was used as it was.
func TestConsumerThatReadsOtherwiseIsNotUsedAsItIs(t *testing.T) {
	ctx := context.Background()
	info := consumerAfterMadeAs(t, func(c *js.ConsumerConfig) {
		c.FilterSubject, c.HeadersOnly, c.MaxDeliver = "vigil.obs.>", true, 1
	})
	if info.Config.HeadersOnly || info.Config.MaxDeliver != -1 {
		t.Errorf("consumer used with headers only %v, max deliver %d; want it updated", info.Config.HeadersOnly, info.Config.MaxDeliver)
	}

	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	d := DefaultConfig("")
	ast, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ast.CreateConsumer(ctx, js.ConsumerConfig{Durable: d.Consumer, AckPolicy: js.AckExplicitPolicy,
		AckWait: d.AckWait, MaxAckPending: -1, FilterSubject: d.Subject + ".>", MaxDeliver: 1}); err != nil {
		t.Fatal(err)
	}
	ib, err := Open(ctx, ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if _, err := ib.Consumer(ctx); !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "max deliver 1") {
		t.Fatalf("consumer giving up after one delivery, user without the right to update it: %v; want refused, naming it", err)
	}
}

// A stream that lets any publisher purge it (roll-ups: a sensor's user
// publishing with "Nats-Rollup: all" deletes every sensor's observations
// not yet ingested) or drops its oldest messages past a bound (a sensor
// publishing enough pushes the others' out) is not used as it is: one
// this user may update is made safe, one it may not is refused by name.
// Before, only the subjects, the maximum age and the duplicate window
// were compared, and such a stream was used.
func TestStreamThatLetsAPublisherLoseOthersEvidenceIsNotUsed(t *testing.T) {
	ctx := context.Background()
	hp := startServerWithUsers(t)
	admin := asAdmin(t, hp)
	d := DefaultConfig("")
	if _, err := admin.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.FileStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe, AllowRollup: true}); err != nil {
		t.Fatal(err)
	}
	// What the sensor's user can do on such a stream.
	if _, err := admin.Publish(ctx, d.Subject+".bt-lab-2", []byte("another sensor's")); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://sensor-bt-lab-1:"+sensorPassword+"@"+hp, nats.CustomInboxPrefix("_INBOX_bt-lab-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sj, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(d.Subject + ".bt-lab-1")
	m.Header.Set("Nats-Rollup", "all")
	if _, err := sj.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	st, err := admin.Stream(ctx, d.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("roll-up left %d messages; the test shows nothing", st.CachedInfo().State.Msgs)
	}
	// A sensor does not read the stream's info (its user may not): the
	// ingest, whose user may but may not update the stream, refuses it.
	b, err := OpenLazy(ingestConfig(hp), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Consumer(ctx); !errors.Is(err, ErrUnsafeStream) || b.Transient(err) || !strings.Contains(err.Error(), "roll-up") {
		t.Errorf("ingest on a stream any publisher may purge: %v; want refused, naming roll-ups", err)
	}

	for _, c := range []js.StreamConfig{{AllowRollup: true}, {MaxMsgs: 1000}, {MaxBytes: 1 << 30},
		{SubjectTransform: &js.SubjectTransformConfig{Source: "vigil.obs.>", Destination: "hidden.>"}}} {
		c.Name, c.Subjects, c.Storage, c.Retention, c.Duplicates = d.Stream, []string{d.Subject + ".>"}, js.FileStorage, js.WorkQueuePolicy, d.Dedupe
		url := startServer(t)
		aj := jetStreamAt(t, url)
		if _, err := aj.CreateStream(ctx, c); err != nil {
			t.Fatal(err)
		}
		ab, err := Open(ctx, DefaultConfig(url), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ab.Close()
		ust, err := ab.stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ust.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Config; got.AllowRollup || got.Discard != js.DiscardNew && (got.MaxMsgs > 0 || got.MaxBytes > 0) || got.SubjectTransform != nil {
			t.Errorf("stream %+v used with roll-ups %v, discard %v, max msgs %d, max bytes %d; want it made safe",
				c, got.AllowRollup, got.Discard, got.MaxMsgs, got.MaxBytes)
		} else if got.MaxMsgs != c.MaxMsgs && c.MaxMsgs > 0 || got.MaxBytes != c.MaxBytes && c.MaxBytes > 0 {
			t.Errorf("the bound set by hand was changed: %d msgs, %d bytes", got.MaxMsgs, got.MaxBytes)
		}
	}
}

// A stream kept in memory loses, at a NATS restart, every observation a
// sensor published (and so dropped from its queue) that ingest had not
// stored: it is refused, by name, even to a user that may update it
// (storage cannot change on a stream that exists). Seen failing first.
func TestStreamInMemoryIsRefused(t *testing.T) {
	ctx := context.Background()
	url := startServer(t)
	j := jetStreamAt(t, url)
	d := DefaultConfig(url)
	if _, err := j.CreateStream(ctx, js.StreamConfig{Name: d.Stream, Subjects: []string{d.Subject + ".>"},
		Storage: js.MemoryStorage, Retention: js.WorkQueuePolicy, Duplicates: d.Dedupe}); err != nil {
		t.Fatal(err)
	}
	b, err := OpenLazy(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.stream(ctx); !errors.Is(err, ErrUnsafeStream) || b.Transient(err) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("stream in memory: %v; want refused, naming it", err)
	}
}

// consumerAfterMadeAs makes the default deployment's stream and its
// durable consumer with ingest's ack settings, changed by change (as an
// earlier version or an operator would have made it), then has the bus
// take it as ingest does and returns the consumer's info as it then is.
func consumerAfterMadeAs(t *testing.T, change func(*js.ConsumerConfig)) *js.ConsumerInfo {
	t.Helper()
	ctx := context.Background()
	b, err := Open(ctx, DefaultConfig(startServer(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := js.ConsumerConfig{Durable: b.cfg.Consumer, AckPolicy: js.AckExplicitPolicy, AckWait: b.cfg.AckWait, MaxAckPending: b.cfg.MaxAckPending}
	change(&cfg)
	if _, err := st.CreateOrUpdateConsumer(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
