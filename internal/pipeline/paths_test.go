package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vigil-oss/vigil/examples/jurisdictions"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// labEnrichment is the lab's loopback geo database, to place with, and
// the shipped French rules, to route with.
func labEnrichment(t *testing.T) (*geo.Locator, *jurisdiction.Rules) {
	t.Helper()
	files, err := lab.WriteGeo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gc := geo.DefaultConfig()
	gc.PlaceFiles, gc.ASNFiles, gc.ProviderFile = []string{files.City}, []string{files.ASN}, files.Providers
	loc, err := geo.Open(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	b, err := jurisdictions.FS.ReadFile("france.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := jurisdiction.Parse(b, "france.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return loc, rules
}

// asSent returns observations as a sensor sends them: no place, no
// agency (ingest adds both).
func asSent(n int) []observe.Observation {
	obs := bustest.Observations(n)
	for i := range obs {
		obs[i].Place, obs[i].Jurisdiction = observe.Place{}, observe.Jurisdiction{}
	}
	return obs
}

func stored(t *testing.T, st store.Store) []observe.Observation {
	t.Helper()
	var out []observe.Observation
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		out = append(out, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// One ingest: the same observations, come from the sensors' in-process
// bus, from NATS JetStream, or from a file, are stored as the same rows
// with the same place and agency.
func TestEveryPathStoresTheSameRowsAndEnrichment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc, rules := labEnrichment(t)
	const n = 60
	sent := asSent(n)

	// The sensors' path: published on the in-process bus.
	viaBus := openStore(t)
	p, err := New(ctx, Config{Store: viaBus, Geo: loc, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	addSensor(t, p, "sensor", func(ctx context.Context) error {
		for _, o := range slices.Clone(sent) {
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}

	// The remote path: published on JetStream, ingested by 'vigil ingest'.
	viaNATS := openStore(t)
	url := startNATS(t)
	jb, err := jetstream.Open(ctx, jetstream.DefaultConfig(url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jb.Close()
	for _, o := range slices.Clone(sent) {
		if err := jb.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := jb.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	committed := 0
	p, err = New(ctx, Config{Store: viaNATS, Geo: loc, Rules: rules, Consumer: cons, OnCommit: func(b []observe.Observation) {
		if committed += len(b); committed >= n {
			rcancel() // as an operator's Ctrl-C once the stream is empty
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(rctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("JetStream ingest stored %d of %d in a minute", committed, n)
	}

	// The file's path: 'vigil observations import'.
	viaFile := openStore(t)
	icfg := ingest.DefaultConfig()
	icfg.BatchSize = n
	p, err = New(ctx, Config{Store: viaFile, Geo: loc, Rules: rules, Consumer: inproc.NewSlice(slices.Clone(sent)), Ingest: icfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}

	want := stored(t, viaBus)
	if len(want) != n {
		t.Fatalf("the in-process path stored %d, want %d", len(want), n)
	}
	for _, o := range want {
		if o.Endpoint.IP.Is4() && !o.Place.Found() || o.Jurisdiction.Agency == "" {
			t.Fatalf("%s (%s) not placed or routed at ingest: %+v %+v", o.ID, o.Endpoint.IP, o.Place, o.Jurisdiction)
		}
	}
	for name, got := range map[string][]observe.Observation{"JetStream": stored(t, viaNATS), "file": stored(t, viaFile)} {
		if len(got) != len(want) {
			t.Fatalf("the %s path stored %d, the in-process one %d", name, len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(&want[i]) {
				t.Fatalf("the %s path stored\n%+v\nthe in-process one\n%+v", name, got[i], want[i])
			}
		}
	}
}

func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}
