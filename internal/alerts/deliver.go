package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/notify"
)

// Channels are the senders vigil serve configured: what a delivery's
// channel name ("email:ADDR", "webhook:ID") is sent through.
type Channels struct {
	// Email returns the sender of e-mail to one address (nil: no SMTP
	// server configured; e-mail deliveries fail permanently, saying so).
	Email func(to string) (notify.Sender, error)
	// Webhooks by id (a rule names them); an id not here fails its
	// deliveries permanently, and so does a webhook of another agency than
	// the alert's, or of none.
	Webhooks map[string]Webhook
}

// Webhook is a webhook receiver and whose it is: an alert is sent only to
// a webhook of its own agency, or to a national one. A rule naming another
// agency's webhook (a typo, or a curious colleague) sends it nothing.
type Webhook struct {
	Sender notify.Sender
	// Agency owns the webhook: it receives that agency's alerts only.
	Agency string
	// National: the national office's webhook, which receives the alerts
	// of every agency whose rules name it (the national office reads every
	// agency's targets). Exclusive with Agency.
	National bool
}

// ErrWebhookAgency: a webhook not bound to the alert's agency (another
// agency's, or one bound to none in the webhooks file).
var ErrWebhookAgency = errors.New("alerts: the webhook is not the alert's agency's")

// sender returns the sender of channel for an alert of agency, or an
// error wrapping notify.ErrPermanent when none is configured or the
// channel's webhook is not agency's (nor national).
func (c Channels) sender(channel, agency string) (notify.Sender, error) {
	switch {
	case strings.HasPrefix(channel, ChannelEmail):
		if c.Email == nil {
			return nil, fmt.Errorf("%w: no SMTP sender configured in vigil serve", notify.ErrPermanent)
		}
		s, err := c.Email(strings.TrimPrefix(channel, ChannelEmail))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", notify.ErrPermanent, err)
		}
		return s, nil
	case strings.HasPrefix(channel, ChannelWebhook):
		id := strings.TrimPrefix(channel, ChannelWebhook)
		w, ok := c.Webhooks[id]
		switch {
		case !ok || w.Sender == nil:
			return nil, fmt.Errorf("%w: no webhook %q configured in vigil serve", notify.ErrPermanent, id)
		case w.National:
			return w.Sender, nil
		case w.Agency == "":
			return nil, fmt.Errorf("%w: %w: webhook %q is bound to no agency in the webhooks file (give it \"agency\": \"ID\", or \"national\": true): nothing is sent to it", notify.ErrPermanent, ErrWebhookAgency, id)
		case w.Agency != agency:
			return nil, fmt.Errorf("%w: %w: webhook %q is agency %s's, the alert agency %s's: an alert goes only to its own agency's webhooks, or a national one", notify.ErrPermanent, ErrWebhookAgency, id, w.Agency, agency)
		}
		return w.Sender, nil
	}
	return nil, fmt.Errorf("%w: channel %q", notify.ErrPermanent, channel)
}

// DeliveryID is the id of alert's delivery on channel: the same on every
// attempt, so that a receiver deduplicates a retried delivery.
func DeliveryID(alert, channel string) string {
	h := sha256.Sum256([]byte(channel))
	return alert + "." + hex.EncodeToString(h[:4])
}

// Visibility says which target ids scope may read now (webviews.Store's
// VisibleTargets): a delivery re-checks its target before it is sent.
type Visibility func(ctx context.Context, scope Scope, ids []string) (map[string]bool, error)

// Worker sends the due deliveries.
type Worker struct {
	Store    Store
	Channels Channels
	// Audit writes each sending as a read of the alert by its agency,
	// before the message leaves (required).
	Audit *audit.Log
	// Visible, if set, re-checks the alert's target before each sending:
	// a target no longer in the agency's scope (handed off) is not sent.
	Visible Visibility
	Config  Config
	Now     func() time.Time // nil: time.Now
	Log     *slog.Logger
}

// Action of the audit record of an alert sent.
const ActionAlertSend = "alert_send"

// Actor of the audit records the worker writes.
const Actor = "vigil:alerts"

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

// Sent counts what one round of the worker did.
type Sent struct {
	Delivered, Retry, Failed, GaveUp int
}

// RunOnce takes the due deliveries and tries each once.
func (w *Worker) RunOnce(ctx context.Context) (Sent, error) {
	var s Sent
	if w.Audit == nil {
		return s, errors.New("alerts: a worker needs an audit log")
	}
	now := w.now()
	ds, err := w.Store.DueDeliveries(ctx, now, now.Add(w.Config.Lease), w.Config.Batch)
	if err != nil {
		return s, fmt.Errorf("due deliveries: %w", err)
	}
	for _, d := range ds {
		if err := w.try(ctx, &d); err != nil {
			return s, err
		}
		switch d.Outcome {
		case Delivered:
			s.Delivered++
		case Failed:
			s.Failed++
		case GaveUp:
			s.GaveUp++
		default:
			s.Retry++
		}
	}
	return s, nil
}

// try sends d once and stores its outcome.
func (w *Worker) try(ctx context.Context, d *Delivery) error {
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := w.Store.AlertByID(ctx, d.Alert)
	if err != nil {
		return fmt.Errorf("delivery %s: alert %s: %w", d.ID, d.Alert, err)
	}
	err = w.send(ctx, a, d)
	d.Attempts++
	d.Updated = w.now()
	switch {
	case err == nil:
		d.Outcome, d.LastError = Delivered, ""
	case errors.Is(err, errNotSent):
		d.Attempts-- // nothing left: the trail could not be written; try again later
		d.LastError, d.NextTry = err.Error(), d.Updated.Add(w.Config.Backoff)
	case errors.Is(err, notify.ErrPermanent):
		d.Outcome, d.LastError = Failed, err.Error()
	case d.Attempts >= w.Config.MaxAttempts:
		d.Outcome, d.LastError = GaveUp, err.Error()
	default:
		d.LastError, d.NextTry = err.Error(), d.Updated.Add(Backoff(w.Config, d.Attempts))
	}
	log.Info("alert delivery", "delivery", d.ID, "alert", d.Alert, "rule", d.Rule, "channel", d.Channel,
		"attempt", d.Attempts, "outcome", d.Outcome, "err", d.LastError)
	if err := w.Store.FinishDelivery(ctx, *d); err != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	return nil
}

// errNotSent: the audit record could not be written, so nothing left.
var errNotSent = errors.New("alerts: audit record not written, nothing sent")

// send re-checks the target, audits the read, and sends.
func (w *Worker) send(ctx context.Context, a Alert, d *Delivery) error {
	if a.Target != "" && w.Visible != nil {
		vis, err := w.Visible(ctx, Scope{Agencies: []string{a.Agency}}, []string{a.Target})
		if err != nil {
			return fmt.Errorf("re-checking target %s: %w", a.Target, err)
		}
		if !vis[a.Target] {
			return fmt.Errorf("%w: target %s is no longer in agency %s's scope", notify.ErrPermanent, a.Target, a.Agency)
		}
	}
	s, err := w.Channels.sender(d.Channel, a.Agency)
	if err != nil {
		return err
	}
	object := "alert:" + a.ID
	if a.Target != "" {
		object = "target:" + a.Target
	}
	if _, err := w.Audit.Append(ctx, audit.Record{Actor: Actor, ActorAgency: a.Agency, Role: "system", Remote: "alerts",
		Action: ActionAlertSend, Object: object,
		Detail: audit.Detail(map[string]any{"alert": a.ID, "rule": a.Rule, "delivery": d.ID, "channel": d.Channel, "attempt": d.Attempts + 1})}); err != nil {
		return fmt.Errorf("%w: %v", errNotSent, err)
	}
	return s.Send(ctx, Message(a, d.ID))
}

// Backoff is the wait after a delivery's attempt-th failure.
func Backoff(c Config, attempt int) time.Duration {
	b := c.Backoff
	for i := 1; i < attempt && b < c.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, c.MaxBackoff)
}

// Message is a's message for one delivery: its subject, a plain-text body
// and the webhook's JSON, all from a's content alone.
func Message(a Alert, deliveryID string) notify.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nRule: %s (%s)\nAgency: %s\nWhen: %s\n", a.Subject, a.Rule, a.Kind, a.Agency, a.At.UTC().Format(time.RFC3339))
	if a.Target != "" {
		fmt.Fprintf(&b, "Target: %s\n", a.Target)
	}
	c := a.Content
	for _, f := range [][2]string{{"List", c.List}, {"Category", c.Category}, {"Network", c.Network}, {"Level", c.Level},
		{"Marks", strings.Join(c.Marks, ", ")}, {"Flags", strings.Join(c.Flags, ", ")}, {"Country", c.Country},
		{"Subdivision", c.Subdivision}, {"Address", c.Address}} {
		if f[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
		}
	}
	if c.Score != 0 {
		fmt.Fprintf(&b, "Score: %.1f\n", c.Score)
	}
	if a.SummaryOf > 0 {
		fmt.Fprintf(&b, "Held: %d alerts from %s to %s (vigil alert list shows them)\n", c.Held, c.From, c.To)
	}
	body, _ := json.Marshal(struct {
		Delivery string `json:"delivery"`
		Alert
	}{deliveryID, a})
	return notify.Message{ID: deliveryID, Rule: a.Rule, Agency: a.Agency, At: a.At.UTC(),
		Subject: strings.Join(strings.Fields(a.Subject), " "), Text: b.String(), JSON: body}
}
