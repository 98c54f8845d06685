package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/casework"
)

var _ casework.Store = (*Store)(nil)

// TakeClaim implements casework.Store in one immediate transaction (the
// store's transactions take the write lock when they begin), so that two
// processes claiming one target are served one after the other.
func (s *Store) TakeClaim(ctx context.Context, c casework.Claim, liveAfter time.Time) (casework.Claim, error) {
	var out casework.Claim
	var refused *casework.ClaimedError
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		cur, err := claimOf(ctx, tx, c.Target)
		if err != nil {
			return err
		}
		record := func(kind, agency, by, note string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO claim_records (target, at_ns, kind, agency, by_whom, note) VALUES (?, ?, ?, ?, ?, ?)`,
				c.Target, c.Active.UnixNano(), kind, agency, by, note)
			return err
		}
		switch {
		case cur != nil && cur.Agency != c.Agency && cur.Active.After(liveAfter):
			refused, out = &casework.ClaimedError{Holder: *cur}, *cur
			return record(casework.RecordRefused, c.Agency, c.By, "held by "+cur.Agency)
		case cur != nil && cur.Agency == c.Agency:
			out = *cur
			out.Active = c.Active
			if c.Contact != "" {
				out.Contact = c.Contact
			}
		case cur != nil:
			if err := record(casework.RecordLapse, cur.Agency, cur.By, "lapsed; taken by "+c.Agency); err != nil {
				return err
			}
			out = c
		default:
			out = c
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO claims (target, agency, by_whom, contact, since_ns, active_ns) VALUES (?, ?, ?, ?, ?, ?)`,
			out.Target, out.Agency, out.By, out.Contact, out.Since.UnixNano(), out.Active.UnixNano()); err != nil {
			return err
		}
		return record(casework.RecordClaim, c.Agency, c.By, "")
	})
	if err != nil {
		return casework.Claim{}, fmt.Errorf("claim of %s by %s: %w", c.Target, c.Agency, err)
	}
	if refused != nil {
		return out, refused
	}
	return out, nil
}

// ReleaseClaim implements casework.Store.
func (s *Store) ReleaseClaim(ctx context.Context, target, agency, by string, at time.Time) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE target = ? AND agency = ?`, target, agency)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("release of %s by %s: %w", target, agency, casework.ErrNotHeld)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO claim_records (target, at_ns, kind, agency, by_whom, note) VALUES (?, ?, ?, ?, ?, '')`,
			target, at.UnixNano(), casework.RecordRelease, agency, by)
		return err
	})
}

// HandOffClaim implements casework.Store: the check of from and the move
// are one immediate transaction.
func (s *Store) HandOffClaim(ctx context.Context, target, from, to, by string, at time.Time) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		cur, err := claimOf(ctx, tx, target)
		if err != nil || cur == nil || cur.Agency == to || from != "" && cur.Agency != from {
			return err
		}
		return moveClaim(ctx, tx, target, cur.Agency, to, by, at)
	})
}

// moveClaim gives target's claim, held by from, to to, on record.
func moveClaim(ctx context.Context, tx *sql.Tx, target, from, to, by string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE claims SET agency = ?, by_whom = ?, contact = '', since_ns = ?, active_ns = ? WHERE target = ?`,
		to, by, at.UnixNano(), at.UnixNano(), target); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO claim_records (target, at_ns, kind, agency, by_whom, note) VALUES (?, ?, ?, ?, ?, ?)`,
		target, at.UnixNano(), casework.RecordHandOff, to, by, "from "+from)
	return err
}

// ClaimOf implements casework.Store.
func (s *Store) ClaimOf(ctx context.Context, target string) (*casework.Claim, error) {
	return claimOf(ctx, s.db, target)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func claimOf(ctx context.Context, q queryRower, target string) (*casework.Claim, error) {
	c := casework.Claim{Target: target}
	var since, active int64
	err := q.QueryRowContext(ctx, `SELECT agency, by_whom, contact, since_ns, active_ns FROM claims WHERE target = ?`, target).
		Scan(&c.Agency, &c.By, &c.Contact, &since, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Since, c.Active = time.Unix(0, since).UTC(), time.Unix(0, active).UTC()
	return &c, nil
}

// ClaimRecords implements casework.Store.
func (s *Store) ClaimRecords(ctx context.Context, target string) ([]casework.Record, error) {
	var out []casework.Record
	err := eachRow(ctx, s.db, `SELECT at_ns, kind, agency, by_whom, note FROM claim_records WHERE target = ? ORDER BY id`, func(r *sql.Rows) error {
		rec := casework.Record{Target: target}
		var at int64
		if err := r.Scan(&at, &rec.Kind, &rec.Agency, &rec.By, &rec.Note); err != nil {
			return err
		}
		rec.At = time.Unix(0, at).UTC()
		out = append(out, rec)
		return nil
	}, target)
	return out, err
}

var _ casework.ProposalStore = (*Store)(nil)

// LiveClaims implements casework.ProposalStore.
func (s *Store) LiveClaims(ctx context.Context, liveAfter time.Time) ([]casework.Claim, error) {
	var out []casework.Claim
	err := eachRow(ctx, s.db, `SELECT target, agency, by_whom, contact, since_ns, active_ns FROM claims WHERE active_ns > ? ORDER BY target`, func(r *sql.Rows) error {
		var c casework.Claim
		var since, active int64
		if err := r.Scan(&c.Target, &c.Agency, &c.By, &c.Contact, &since, &active); err != nil {
			return err
		}
		c.Since, c.Active = time.Unix(0, since).UTC(), time.Unix(0, active).UTC()
		out = append(out, c)
		return nil
	}, liveAfter.UnixNano())
	return out, err
}

// ProposeHandOff implements casework.ProposalStore.
func (s *Store) ProposeHandOff(ctx context.Context, p casework.Proposal) (bool, error) {
	made := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM handoff_proposals WHERE target = ? AND state = ?`, p.Target, casework.Pending).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO handoff_proposals (target, from_agency, to_agency, reason, at_ns, state, decided_by, decided_ns, note)
			VALUES (?, ?, ?, ?, ?, ?, '', 0, '')`, p.Target, p.From, p.To, p.Reason, p.At.UnixNano(), casework.Pending); err != nil {
			return err
		}
		made = true
		return nil
	})
	return made, err
}

const proposalColumns = `target, from_agency, to_agency, reason, at_ns, state, decided_by, decided_ns, note`

func scanProposal(r interface{ Scan(...any) error }) (casework.Proposal, error) {
	var p casework.Proposal
	var at, decided int64
	if err := r.Scan(&p.Target, &p.From, &p.To, &p.Reason, &at, &p.State, &p.DecidedBy, &decided, &p.Note); err != nil {
		return p, err
	}
	p.At = time.Unix(0, at).UTC()
	if decided != 0 {
		p.DecidedAt = time.Unix(0, decided).UTC()
	}
	return p, nil
}

// Proposals implements casework.ProposalStore.
func (s *Store) Proposals(ctx context.Context, state string) ([]casework.Proposal, error) {
	var out []casework.Proposal
	err := eachRow(ctx, s.db, `SELECT `+proposalColumns+` FROM handoff_proposals WHERE ? = '' OR state = ? ORDER BY id`, func(r *sql.Rows) error {
		p, err := scanProposal(r)
		out = append(out, p)
		return err
	}, state, state)
	return out, err
}

// DecideHandOff implements casework.ProposalStore.
func (s *Store) DecideHandOff(ctx context.Context, target, state, by, note string, at time.Time) (casework.Proposal, error) {
	var p casework.Proposal
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = decideHandOff(ctx, tx, target, state, by, note, at)
		return err
	})
	return p, err
}

func decideHandOff(ctx context.Context, tx *sql.Tx, target, state, by, note string, at time.Time) (casework.Proposal, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM handoff_proposals WHERE target = ? AND state = ?`, target, casework.Pending).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return casework.Proposal{}, fmt.Errorf("%s: %w", target, casework.ErrNoProposal)
	}
	if err != nil {
		return casework.Proposal{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE handoff_proposals SET state = ?, decided_by = ?, decided_ns = ?, note = ? WHERE id = ?`,
		state, by, at.UnixNano(), note, id); err != nil {
		return casework.Proposal{}, err
	}
	return scanProposal(tx.QueryRowContext(ctx, `SELECT `+proposalColumns+` FROM handoff_proposals WHERE id = ?`, id))
}

// AcceptHandOff implements casework.ProposalStore in one immediate
// transaction: the proposal, the claim's holder and the move are read and
// written with the write lock held.
func (s *Store) AcceptHandOff(ctx context.Context, target, by, note string, at time.Time) (casework.Proposal, error) {
	var p casework.Proposal
	var stale error
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		p, stale = casework.Proposal{}, nil
		pend, err := scanProposal(tx.QueryRowContext(ctx, `SELECT `+proposalColumns+` FROM handoff_proposals WHERE target = ? AND state = ?`, target, casework.Pending))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", target, casework.ErrNoProposal)
		}
		if err != nil {
			return err
		}
		cur, err := claimOf(ctx, tx, target)
		if err != nil {
			return err
		}
		if cur != nil && cur.Agency != pend.From {
			p, err = decideHandOff(ctx, tx, target, casework.Declined, by, casework.StaleNote(cur.Agency, pend.From, note), at)
			stale = fmt.Errorf("%s (proposal from %s): %w", target, pend.From, casework.ErrStaleProposal)
			return err
		}
		if p, err = decideHandOff(ctx, tx, target, casework.Accepted, by, note, at); err != nil {
			return err
		}
		if cur == nil || cur.Agency == p.To {
			return nil
		}
		return moveClaim(ctx, tx, target, cur.Agency, p.To, by, at)
	})
	if err != nil {
		return casework.Proposal{}, err
	}
	return p, stale
}

var _ casework.CaseStore = (*Store)(nil)

// AddCaseStep implements casework.CaseStore.
func (s *Store) AddCaseStep(ctx context.Context, st casework.Step) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO case_steps (target, step, at_ns, agency, by_whom, note, outcomes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			st.Target, st.Step, st.At.UnixNano(), st.Agency, st.By, st.Note, strings.Join(st.Outcomes, ","))
		return err
	})
}

// CaseSteps implements casework.CaseStore.
func (s *Store) CaseSteps(ctx context.Context, target string) ([]casework.Step, error) {
	var out []casework.Step
	err := eachRow(ctx, s.db, `SELECT step, at_ns, agency, by_whom, note, outcomes FROM case_steps WHERE target = ? ORDER BY id`, func(r *sql.Rows) error {
		st := casework.Step{Target: target}
		var at int64
		var outcomes string
		if err := r.Scan(&st.Step, &at, &st.Agency, &st.By, &st.Note, &outcomes); err != nil {
			return err
		}
		st.At = time.Unix(0, at).UTC()
		if outcomes != "" {
			st.Outcomes = strings.Split(outcomes, ",")
		}
		out = append(out, st)
		return nil
	}, target)
	return out, err
}

// SetSubscriber implements casework.CaseStore.
func (s *Store) SetSubscriber(ctx context.Context, sub casework.Subscriber) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO case_subscribers (target, details, agency, by_whom, at_ns) VALUES (?, ?, ?, ?, ?)`,
			sub.Target, sub.Details, sub.Agency, sub.By, sub.At.UnixNano())
		return err
	})
}

// SubscriberOf implements casework.CaseStore.
func (s *Store) SubscriberOf(ctx context.Context, target string) (*casework.Subscriber, error) {
	sub := casework.Subscriber{Target: target}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT details, agency, by_whom, at_ns FROM case_subscribers WHERE target = ?`, target).
		Scan(&sub.Details, &sub.Agency, &sub.By, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sub.At = time.Unix(0, at).UTC()
	return &sub, nil
}
