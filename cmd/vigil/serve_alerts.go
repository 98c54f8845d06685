package main

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/web"
)

// alertChannels are the senders of alert deliveries vigil serve has. The
// e-mail and webhook senders (internal/notify) are wired here: until they
// are, e-mail and webhook deliveries fail permanently, saying that no
// sender is configured, and the alerts still reach the overview and the
// live feed. (To wire: an SMTP server's settings whose Email returns a
// copy with To = []string{to}; the webhooks by id.)
func (f *serveFlags) alertChannels() (alerts.Channels, error) {
	return alerts.Channels{}, nil
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
	ch, err := f.alertChannels()
	if err != nil {
		return nil, err
	}
	ev := &alerts.Evaluator{Store: sq, Source: sq, Config: cfg, Log: a.log, OnAlert: wa.AgencyAlert}
	wk := &alerts.Worker{Store: sq, Channels: ch, Audit: &audit.Log{Store: sq}, Visible: sq.VisibleTargets, Config: cfg, Log: a.log}
	return func(ctx context.Context) error { return alerts.Run(ctx, f.alertEvery, ev, wk) }, nil
}
