package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/alerts"
)

var _ alerts.Store = (*Store)(nil)

// AddAlertRule implements alerts.Store.
func (s *Store) AddAlertRule(ctx context.Context, r alerts.Rule) error {
	params, emails, hooks, err := ruleJSON(r)
	if err != nil {
		return err
	}
	return s.sqlTx(ctx, func(tx sqlDB) error {
		// A removed rule's alerts are kept under its id: a new rule taking
		// it would find its events recorded already, and its limit spent.
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM alerts WHERE rule = ? LIMIT 1) u`, r.ID).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return fmt.Errorf("alert rule %s: a removed rule's alerts keep this id: %w", r.ID, alerts.ErrExists)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (id, agency, kind, params, emails, webhooks, max_per_hour, by_whom, created_ns, from_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Agency, r.Kind, params, emails, hooks, r.MaxPerHour, r.By, r.Created.UnixNano(), r.FromSeq)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("alert rule %s: %w", r.ID, alerts.ErrExists)
		}
		return nil
	})
}

func ruleJSON(r alerts.Rule) (params, emails, hooks []byte, err error) {
	if params, err = json.Marshal(r.Params); err == nil {
		if emails, err = json.Marshal(append([]string{}, r.Emails...)); err == nil {
			hooks, err = json.Marshal(append([]string{}, r.Webhooks...))
		}
	}
	return
}

const alertRuleCols = `id, agency, kind, params, emails, webhooks, max_per_hour, by_whom, created_ns, from_seq`

func scanAlertRule(scan func(...any) error) (alerts.Rule, error) {
	var r alerts.Rule
	var params, emails, hooks string
	var created int64
	if err := scan(&r.ID, &r.Agency, &r.Kind, &params, &emails, &hooks, &r.MaxPerHour, &r.By, &created, &r.FromSeq); err != nil {
		return r, err
	}
	r.Created = time.Unix(0, created).UTC()
	for _, f := range []struct {
		s string
		v any
	}{{params, &r.Params}, {emails, &r.Emails}, {hooks, &r.Webhooks}} {
		if err := json.Unmarshal([]byte(f.s), f.v); err != nil {
			return r, fmt.Errorf("alert rule %s: %w", r.ID, err)
		}
	}
	return r, nil
}

// AlertRules implements alerts.Store.
func (s *Store) AlertRules(ctx context.Context, agency string) ([]alerts.Rule, error) {
	var out []alerts.Rule
	err := eachRow(ctx, s.db(), `SELECT `+alertRuleCols+` FROM alert_rules WHERE ?::text = '' OR agency = ? ORDER BY id`, func(rows pgx.Rows) error {
		r, err := scanAlertRule(rows.Scan)
		out = append(out, r)
		return err
	}, agency, agency)
	return out, err
}

// RemoveAlertRule implements alerts.Store.
func (s *Store) RemoveAlertRule(ctx context.Context, agency, id string) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE id = ? AND agency = ?`, id, agency)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("alert rule %s of %s: %w", id, agency, alerts.ErrNotFound)
		}
		return nil
	})
}

// AlertWatermark implements alerts.Store.
func (s *Store) AlertWatermark(ctx context.Context) (int64, error) {
	var v int64
	err := s.db().QueryRowContext(ctx, `SELECT value FROM alert_state WHERE name = 'observations'`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// AdvanceAlertWatermark implements alerts.Store.
func (s *Store) AdvanceAlertWatermark(ctx context.Context, seq int64) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alert_state (name, value) VALUES ('observations', ?)
			ON CONFLICT (name) DO UPDATE SET value = greatest(alert_state.value, excluded.value)`, seq)
		return err
	})
}

// AlertsRecorded implements alerts.Store.
func (s *Store) AlertsRecorded(ctx context.Context, rule string, events []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(events) > 0 {
		n := min(len(events), 500)
		args := []any{rule}
		for _, e := range events[:n] {
			args = append(args, e)
		}
		q := `SELECT event FROM alerts WHERE rule = ? AND event IN (?` + strings.Repeat(",?", n-1) + `)`
		if err := eachRow(ctx, s.db(), q, func(rows pgx.Rows) error {
			var e string
			err := rows.Scan(&e)
			out[e] = true
			return err
		}, args...); err != nil {
			return nil, err
		}
		events = events[n:]
	}
	return out, nil
}

const insertAlert = `INSERT INTO alerts (id, rule, agency, kind, event, target, at_ns, created_ns, subject, content, held, summary_of, summary)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '') ON CONFLICT DO NOTHING`

func alertArgs(a alerts.Alert, held bool) ([]any, error) {
	c, err := json.Marshal(a.Content)
	if err != nil {
		return nil, err
	}
	h := 0
	if held {
		h = 1
	}
	return []any{a.ID, a.Rule, a.Agency, a.Kind, a.Event, a.Target, a.At.UnixNano(), a.Created.UnixNano(), a.Subject, string(c), h, a.SummaryOf}, nil
}

const sentInWindow = `SELECT count(*) FROM alerts WHERE rule = ? AND held = 0 AND created_ns > ?`

// RecordAlert implements alerts.Store: a transaction-scoped advisory lock
// on the rule serialises the count and the insert of two processes.
func (s *Store) RecordAlert(ctx context.Context, a alerts.Alert, channels []string, limit int, window time.Duration) (bool, bool, error) {
	var ins, held bool
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		ins, held = false, false
		if err := lockRule(ctx, tx, a.Rule); err != nil {
			return err
		}
		var sent int
		if err := tx.QueryRowContext(ctx, sentInWindow, a.Rule, a.Created.Add(-window).UnixNano()).Scan(&sent); err != nil {
			return err
		}
		held = sent >= limit
		args, err := alertArgs(a, held)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, insertAlert, args...)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			held = false
			return nil
		}
		ins = true
		if held {
			return nil
		}
		return insertDeliveries(ctx, tx, a, channels)
	})
	return ins, held, err
}

// lockRule takes rule's advisory lock until the transaction ends.
func lockRule(ctx context.Context, tx sqlDB, rule string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigil-alert-rule:' || ?::text))`, rule)
	return err
}

func insertDeliveries(ctx context.Context, tx sqlDB, a alerts.Alert, channels []string) error {
	for _, ch := range channels {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_deliveries (id, alert, rule, agency, channel, attempts, next_ns, last_error, outcome, updated_ns)
			VALUES (?, ?, ?, ?, ?, 0, ?, '', ?, ?) ON CONFLICT DO NOTHING`,
			alerts.DeliveryID(a.ID, ch), a.ID, a.Rule, a.Agency, ch, a.Created.UnixNano(), alerts.Pending, a.Created.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

const alertCols = `id, rule, agency, kind, event, target, at_ns, created_ns, subject, content, held, summary_of, summary`

func scanAlert(scan func(...any) error) (alerts.Alert, error) {
	var a alerts.Alert
	var at, created int64
	var content string
	var held int
	if err := scan(&a.ID, &a.Rule, &a.Agency, &a.Kind, &a.Event, &a.Target, &at, &created, &a.Subject, &content, &held, &a.SummaryOf, &a.Summary); err != nil {
		return a, err
	}
	a.At, a.Created, a.Held = time.Unix(0, at).UTC(), time.Unix(0, created).UTC(), held != 0
	if err := json.Unmarshal([]byte(content), &a.Content); err != nil {
		return a, fmt.Errorf("alert %s: %w", a.ID, err)
	}
	return a, nil
}

// SummariseHeld implements alerts.Store.
func (s *Store) SummariseHeld(ctx context.Context, rule string, now time.Time, limit int, window time.Duration, channels []string,
	build func([]alerts.Alert) alerts.Alert) (*alerts.Alert, error) {
	var out *alerts.Alert
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		out = nil
		if err := lockRule(ctx, tx, rule); err != nil {
			return err
		}
		var held []alerts.Alert
		if err := eachRow(ctx, tx, `SELECT `+alertCols+` FROM alerts WHERE rule = ? AND held = 1 AND summary = '' ORDER BY created_ns, id`, func(rows pgx.Rows) error {
			a, err := scanAlert(rows.Scan)
			held = append(held, a)
			return err
		}, rule); err != nil || len(held) == 0 {
			return err
		}
		var sent int
		if err := tx.QueryRowContext(ctx, sentInWindow, rule, now.Add(-window).UnixNano()).Scan(&sent); err != nil || sent >= limit {
			return err
		}
		sum := build(held)
		args, err := alertArgs(sum, false)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertAlert, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET summary = ? WHERE rule = ? AND held = 1 AND summary = '' AND created_ns <= ?`,
			sum.ID, rule, held[len(held)-1].Created.UnixNano()); err != nil {
			return err
		}
		out = &sum
		return insertDeliveries(ctx, tx, sum, channels)
	})
	return out, err
}

// AgencyAlerts implements alerts.Store.
func (s *Store) AgencyAlerts(ctx context.Context, q alerts.Query) ([]alerts.Alert, error) {
	if q.Agency == "" {
		return nil, nil
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	var out []alerts.Alert
	err := eachRow(ctx, s.db(), `SELECT `+alertCols+` FROM alerts WHERE agency = ? AND created_ns >= ? ORDER BY created_ns DESC, id DESC LIMIT ?`,
		func(rows pgx.Rows) error {
			a, err := scanAlert(rows.Scan)
			out = append(out, a)
			return err
		}, q.Agency, sinceNS(q.Since), q.Limit)
	return out, err
}

// AlertByID implements alerts.Store.
func (s *Store) AlertByID(ctx context.Context, id string) (alerts.Alert, error) {
	a, err := scanAlert(s.db().QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("alert %s: %w", id, alerts.ErrNotFound)
	}
	return a, err
}

// sinceNS is since in nanoseconds; the zero time, the lowest (UnixNano
// is undefined for it).
func sinceNS(since time.Time) int64 {
	if since.IsZero() {
		return math.MinInt64
	}
	return since.UnixNano()
}

const deliveryCols = `id, alert, rule, agency, channel, attempts, next_ns, last_error, outcome, updated_ns`

func scanDelivery(scan func(...any) error) (alerts.Delivery, error) {
	var d alerts.Delivery
	var next, updated int64
	err := scan(&d.ID, &d.Alert, &d.Rule, &d.Agency, &d.Channel, &d.Attempts, &next, &d.LastError, &d.Outcome, &updated)
	d.NextTry, d.Updated = time.Unix(0, next).UTC(), time.Unix(0, updated).UTC()
	return d, err
}

// DueDeliveries implements alerts.Store.
func (s *Store) DueDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]alerts.Delivery, error) {
	var out []alerts.Delivery
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		out = out[:0]
		if err := eachRow(ctx, tx, `SELECT `+deliveryCols+` FROM alert_deliveries WHERE outcome = ? AND next_ns <= ? ORDER BY next_ns, id LIMIT ? FOR UPDATE SKIP LOCKED`,
			func(rows pgx.Rows) error {
				d, err := scanDelivery(rows.Scan)
				out = append(out, d)
				return err
			}, alerts.Pending, now.UnixNano(), limit); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE alert_deliveries SET next_ns = ? WHERE id = ?`, leaseUntil.UnixNano(), d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// FinishDelivery implements alerts.Store.
func (s *Store) FinishDelivery(ctx context.Context, d alerts.Delivery) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `UPDATE alert_deliveries SET attempts = ?, next_ns = ?, last_error = ?, outcome = ?, updated_ns = ? WHERE id = ?`,
			d.Attempts, d.NextTry.UnixNano(), d.LastError, d.Outcome, d.Updated.UnixNano(), d.ID)
		return err
	})
}

// Deliveries implements alerts.Store.
func (s *Store) Deliveries(ctx context.Context, agency string, limit int) ([]alerts.Delivery, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []alerts.Delivery
	err := eachRow(ctx, s.db(), `SELECT `+deliveryCols+` FROM alert_deliveries WHERE ?::text = '' OR agency = ? ORDER BY updated_ns DESC, id DESC LIMIT ?`,
		func(rows pgx.Rows) error {
			d, err := scanDelivery(rows.Scan)
			out = append(out, d)
			return err
		}, agency, agency, limit)
	return out, err
}

// AlertHeldTargets implements alerts.Store.
func (s *Store) AlertHeldTargets(ctx context.Context, agency string) ([]alerts.Held, error) {
	var out []alerts.Held
	err := eachRow(ctx, s.db(), `SELECT target, since_ns, active_ns FROM claims WHERE agency = ? ORDER BY target`, func(rows pgx.Rows) error {
		var h alerts.Held
		var since, active int64
		err := rows.Scan(&h.Target, &since, &active)
		h.Since, h.Active = time.Unix(0, since).UTC(), time.Unix(0, active).UTC()
		out = append(out, h)
		return err
	}, agency)
	return out, err
}
