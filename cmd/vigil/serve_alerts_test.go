package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/notify/notifytest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// vigil serve runs the alerts: a rule's event becomes one alert, and its
// webhook delivery, with no sender configured, fails permanently and says
// why (rather than being retried for ever or lost).
func TestServeEvaluatesAlertRules(t *testing.T) {
	dir := t.TempDir()
	db := emptyStore(t)
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	importAlertObservation(t, dir, env, 4, "192.0.2.19")
	mustRun(t, env, "", "alert", "rule", "add", "--id", "any", "--agency", "fr-lyon", "--kind", "score_passed", "--score", "0.001", "--webhook", "soc")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "100ms", "--alert-every", "100ms", "--log-level", "warn"},
			strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	st, err := sqlite.Open(context.Background(), filepath.Clean(db), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ds []alerts.Delivery
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ds, err = st.Deliveries(context.Background(), "fr-lyon", 10); err == nil && len(ds) == 1 && ds[0].Outcome != alerts.Pending {
			break
		}
	}
	if len(ds) != 1 || ds[0].Outcome != alerts.Failed || !strings.Contains(ds[0].LastError, `no webhook "soc" configured`) {
		t.Fatalf("deliveries: %+v\n%s", ds, errb.String())
	}
	as, err := st.AgencyAlerts(context.Background(), alerts.Query{Agency: "fr-lyon"})
	if err != nil || len(as) != 1 || as[0].Kind != alerts.KindScorePassed || as[0].Target == "" {
		t.Fatalf("alerts: %+v, %v", as, err)
	}
}

// vigil serve --alert-smtp --alert-webhooks sends one rule's alert by
// e-mail to a local SMTP sink and to a local webhook receiver that
// checks the HMAC signature as docs/alerts.md tells receivers to; the
// body's delivery id equals the header's (what a receiver deduplicates
// on, the signed one), and each sending is logged as delivered.
func TestServeSendsAlertsByEmailAndWebhook(t *testing.T) {
	dir := t.TempDir()
	db := emptyStore(t)
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	importAlertObservation(t, dir, env, 5, "192.0.2.20")
	mustRun(t, env, "", "alert", "rule", "add", "--id", "any", "--agency", "fr-lyon", "--kind", "score_passed", "--score", "0.001",
		"--webhook", "soc", "--email", "duty@lyon.example")

	sink := notifytest.NewSMTPSink(t)
	secret := bytes.Repeat([]byte("k"), 40)
	recv := notifytest.NewReceiver(t, secret)
	keyFile := filepath.Join(dir, "soc.key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	hooks := writeFile(t, dir, "hooks.json", `[{"id": "soc", "agency": "fr-lyon", "url": "`+recv.URL+`", "secret_file": "soc.key"}]`)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "100ms", "--alert-every", "100ms",
			"--alert-smtp", "smtp://" + sink.Addr + "?from=alerts@vigil.example", "--alert-webhooks", hooks, "--log-level", "warn"},
			strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	st, err := sqlite.Open(context.Background(), filepath.Clean(db), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ds []alerts.Delivery
	settled := func() bool {
		if len(ds) != 2 {
			return false
		}
		for _, d := range ds {
			if d.Outcome == alerts.Pending {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ds, err = st.Deliveries(context.Background(), "fr-lyon", 10); err == nil && settled() {
			break
		}
	}
	for _, d := range ds {
		if d.Outcome != alerts.Delivered {
			t.Fatalf("deliveries: %+v\n%s", ds, errb.String())
		}
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries: %+v, want one e-mail and one webhook", ds)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "duty@lyon.example" {
		t.Fatalf("e-mails: %+v", msgs)
	}
	m, err := msgs[0].Parse()
	if err != nil || !strings.Contains(m.Header.Get("Subject"), "T-") {
		t.Fatalf("e-mail: %v %+v", err, m)
	}
	got := recv.Deliveries()
	if len(got) != 1 || len(recv.Rejected()) != 0 {
		t.Fatalf("webhook: %d verified, rejected %v", len(got), recv.Rejected())
	}
	var body struct {
		Delivery string `json:"delivery"`
		Target   string `json:"target"`
	}
	if err := json.Unmarshal(got[0].Body, &body); err != nil || body.Delivery == "" || body.Delivery != got[0].ID || body.Target == "" {
		t.Fatalf("webhook body %s (%v): want the signed delivery id %q and the target", got[0].Body, err, got[0].ID)
	}
}

// importAlertObservation stores one observation of ip routed to fr-lyon,
// an hour ago, and the agency fr-lyon.
func importAlertObservation(t *testing.T, dir string, env map[string]string, seed uint64, ip string) {
	t.Helper()
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	o := storetest.Observation(rand.New(rand.NewPCG(15, seed)), time.Now().UTC().Add(-time.Hour), 1)
	o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(ip), 51413
	o.Jurisdiction = observe.Jurisdiction{Agency: "fr-lyon", Rule: "test"}
	if err := enc.Encode(&o); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "", "observations", "import", "--format", "jsonl", writeFile(t, dir, "obs-"+ip+".jsonl", buf.String()))
	mustRun(t, env, "", "agency", "add", "--id", "fr-lyon", "--name", "Lyon")
}
