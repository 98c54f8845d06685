package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/internal/pipeline"
)

// metricsFlag is --metrics: a sensor's or an ingest's /metrics and
// /healthz, on an address of the operator's choosing.
type metricsFlag struct {
	addr   *string
	reg    *prometheus.Registry
	health map[string]func() (bool, string)
}

func defineMetricsFlag(fs *flag.FlagSet) *metricsFlag {
	return &metricsFlag{addr: fs.String("metrics", "", "serve /metrics (Prometheus) and /healthz on `IP:PORT`, e.g. 127.0.0.1:9464; default: none"),
		health: map[string]func() (bool, string){}}
}

// registry is the registry to give the pipeline: nil without --metrics.
func (m *metricsFlag) registry() prometheus.Registerer {
	if *m.addr == "" {
		return nil
	}
	if m.reg == nil {
		m.reg = newRegistry()
	}
	return m.reg
}

// addHealth adds a part to /healthz.
func (m *metricsFlag) addHealth(name string, f func() (bool, string)) { m.health[name] = f }

// serve listens on --metrics, if given, and adds the server to p's
// services. /healthz answers 200 "ok" or 503 with the parts that are not
// ok, by name (why is in the log and the summary: the address may be
// reachable by more people than the sensor's operators).
func (m *metricsFlag) serve(a *app, p *pipeline.Pipeline) error {
	if *m.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", *m.addr)
	if err != nil {
		return usagef("--metrics %s: %v", *m.addr, err)
	}
	reg := m.registry().(*prometheus.Registry)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", m.healthz)
	p.Go("metrics", func(ctx context.Context) error { return serveHandler(ctx, a, ln, mux) })
	return nil
}

func (m *metricsFlag) healthz(w http.ResponseWriter, _ *http.Request) {
	var bad []string
	for name, f := range m.health {
		if ok, _ := f(); !ok {
			bad = append(bad, name+": not ok")
		}
	}
	sort.Strings(bad)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(bad) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(bad, "\n"))
		return
	}
	fmt.Fprintln(w, "ok")
}
