package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/notify"
	"github.com/vigil-oss/vigil/internal/web"
)

// alertChannels are the senders of alert deliveries vigil serve has:
// --alert-smtp (e-mail) and --alert-webhooks (signed webhooks). Without
// them, e-mail and webhook deliveries fail permanently, saying that no
// sender is configured, and the alerts still reach the overview and the
// live feed.
func (f *serveFlags) alertChannels(log *slog.Logger) (alerts.Channels, error) {
	var ch alerts.Channels
	if f.alertSMTP != "" {
		smtp, err := notify.ParseSMTPURL(f.alertSMTP)
		if err != nil {
			return ch, err
		}
		ch.Email = func(to string) (notify.Sender, error) {
			s := smtp
			s.To = []string{to}
			return s, nil
		}
	}
	if f.alertWebhooks != "" {
		entries, err := notify.LoadWebhooks(f.alertWebhooks)
		if err != nil {
			return ch, fmt.Errorf("--alert-webhooks: %w", err)
		}
		ch.Webhooks = map[string]alerts.Webhook{}
		for _, e := range entries {
			if !e.Bound() {
				log.Warn("webhook bound to no agency: no alert is sent to it; give it \"agency\": \"ID\" (or \"national\": true) in the webhooks file",
					"file", f.alertWebhooks, "line", e.Line, "webhook", e.ID)
			}
			ch.Webhooks[e.ID] = alerts.Webhook{Sender: e.Webhook, Agency: e.Agency, National: e.National}
		}
	}
	return ch, nil
}

// alertJob is the alerts' loop in vigil serve: evaluate the rules over
// what the store holds, publish new alerts to the live feed, send the due
// deliveries.
func (f *serveFlags) alertJob(a *app, sq backend, wa *web.App) (func(context.Context) error, error) {
	cfg := alerts.DefaultConfig()
	cfg.MaxAttempts = f.alertAttempts
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--alert-attempts %d: %w", f.alertAttempts, err)
	}
	ch, err := f.alertChannels(a.log)
	if err != nil {
		return nil, err
	}
	ev := &alerts.Evaluator{Store: sq, Source: sq, Config: cfg, Log: a.log, OnAlert: wa.AgencyAlert}
	wk := &alerts.Worker{Store: sq, Channels: ch, Audit: &audit.Log{Store: sq}, Visible: sq.VisibleTargets, Config: cfg, Log: a.log}
	return func(ctx context.Context) error { return alerts.Run(ctx, f.alertEvery, ev, wk) }, nil
}
