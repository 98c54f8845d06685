package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/casework"
)

// Claims, hand-off proposals and case progress (migration 0012): the
// SQLite store's (store/sqlite/claims.go), ported. SQLite serves two
// writers one after the other; here several processes write at once, so
// each check-then-write is made safe in the schema: a claim's row is read
// FOR UPDATE, a new claim is a plain INSERT whose primary key makes a
// second claimant of the same target wait and fail (its transaction is
// then run again and sees the claim), and a partial unique index keeps
// one pending proposal per target.

var (
	_ casework.Store         = (*Store)(nil)
	_ casework.ProposalStore = (*Store)(nil)
	_ casework.CaseStore     = (*Store)(nil)
)

// claimTx runs fn in one transaction, again (up to three times in all)
// when it lost a race: a unique violation (another process inserted the
// row it meant to insert), a deadlock or a serialization failure.
func (s *Store) claimTx(ctx context.Context, fn func(tx sqlDB) error) error {
	for attempt := 1; ; attempt++ {
		err := s.sqlTx(ctx, fn)
		if err == nil || attempt == 3 || !(isUnique(err) || retryable(err)) {
			return err
		}
	}
}

const insertClaimRecord = `INSERT INTO claim_records (target, at_ns, kind, agency, by_whom, note) VALUES (?, ?, ?, ?, ?, ?)`

// TakeClaim implements casework.Store: the claim's row is read FOR UPDATE
// (a concurrent claim of a claimed target waits for this transaction), and
// a target without one gets it by INSERT (of two processes inserting at
// once, the second fails on the primary key and is run again).
func (s *Store) TakeClaim(ctx context.Context, c casework.Claim, liveAfter time.Time) (casework.Claim, error) {
	var out casework.Claim
	var refused *casework.ClaimedError
	err := s.claimTx(ctx, func(tx sqlDB) error {
		out, refused = casework.Claim{}, nil
		cur, err := claimOf(ctx, tx, c.Target, true)
		if err != nil {
			return err
		}
		record := func(kind, agency, by, note string) error {
			_, err := tx.ExecContext(ctx, insertClaimRecord, c.Target, c.Active.UnixNano(), kind, agency, by, note)
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
		q := `UPDATE claims SET agency = ?, by_whom = ?, contact = ?, since_ns = ?, active_ns = ? WHERE target = ?`
		if cur == nil {
			q = `INSERT INTO claims (agency, by_whom, contact, since_ns, active_ns, target) VALUES (?, ?, ?, ?, ?, ?)`
		}
		if _, err := tx.ExecContext(ctx, q, out.Agency, out.By, out.Contact, out.Since.UnixNano(), out.Active.UnixNano(), out.Target); err != nil {
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
	return s.sqlTx(ctx, func(tx sqlDB) error {
		tag, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE target = ? AND agency = ?`, target, agency)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("release of %s by %s: %w", target, agency, casework.ErrNotHeld)
		}
		_, err = tx.ExecContext(ctx, insertClaimRecord, target, at.UnixNano(), casework.RecordRelease, agency, by, "")
		return err
	})
}

// HandOffClaim implements casework.Store: the claim's row is read FOR
// UPDATE, so that a release or a claim waits until it has moved (or not).
func (s *Store) HandOffClaim(ctx context.Context, target, from, to, by string, at time.Time) error {
	return s.claimTx(ctx, func(tx sqlDB) error {
		cur, err := claimOf(ctx, tx, target, true)
		if err != nil || cur == nil || cur.Agency == to || from != "" && cur.Agency != from {
			return err
		}
		return moveClaim(ctx, tx, target, cur.Agency, to, by, at)
	})
}

// moveClaim gives target's claim, held by from (its row locked), to to,
// on record.
func moveClaim(ctx context.Context, tx sqlDB, target, from, to, by string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE claims SET agency = ?, by_whom = ?, contact = '', since_ns = ?, active_ns = ? WHERE target = ?`,
		to, by, at.UnixNano(), at.UnixNano(), target); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, insertClaimRecord, target, at.UnixNano(), casework.RecordHandOff, to, by, "from "+from)
	return err
}

// ClaimOf implements casework.Store.
func (s *Store) ClaimOf(ctx context.Context, target string) (*casework.Claim, error) {
	return claimOf(ctx, s.db(), target, false)
}

// claimOf reads the claim on target (nil: none), locking its row until
// the transaction ends when forUpdate.
func claimOf(ctx context.Context, db sqlDB, target string, forUpdate bool) (*casework.Claim, error) {
	q := `SELECT agency, by_whom, contact, since_ns, active_ns FROM claims WHERE target = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	c := casework.Claim{Target: target}
	var since, active int64
	err := db.QueryRowContext(ctx, q, target).Scan(&c.Agency, &c.By, &c.Contact, &since, &active)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := eachRow(ctx, s.db(), `SELECT at_ns, kind, agency, by_whom, note FROM claim_records WHERE target = ? ORDER BY id`, func(r pgx.Rows) error {
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

// LiveClaims implements casework.ProposalStore.
func (s *Store) LiveClaims(ctx context.Context, liveAfter time.Time) ([]casework.Claim, error) {
	var out []casework.Claim
	err := eachRow(ctx, s.db(), `SELECT target, agency, by_whom, contact, since_ns, active_ns FROM claims WHERE active_ns > ? ORDER BY target`, func(r pgx.Rows) error {
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

// ProposeHandOff implements casework.ProposalStore: the partial unique
// index on pending proposals makes a second one for the target (even from
// another process at the same moment) a no-op.
func (s *Store) ProposeHandOff(ctx context.Context, p casework.Proposal) (bool, error) {
	tag, err := s.db().ExecContext(ctx, `INSERT INTO handoff_proposals (target, from_agency, to_agency, reason, at_ns, state, decided_by, decided_ns, note)
		VALUES (?, ?, ?, ?, ?, ?, '', 0, '') ON CONFLICT (target) WHERE state = 'pending' DO NOTHING`,
		p.Target, p.From, p.To, p.Reason, p.At.UnixNano(), casework.Pending)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
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
	err := eachRow(ctx, s.db(), `SELECT `+proposalColumns+` FROM handoff_proposals WHERE ? = '' OR state = ? ORDER BY id`, func(r pgx.Rows) error {
		p, err := scanProposal(r)
		out = append(out, p)
		return err
	}, state, state)
	return out, err
}

// DecideHandOff implements casework.ProposalStore, in one UPDATE of the
// pending proposal: of two deciding at once, the second finds none.
func (s *Store) DecideHandOff(ctx context.Context, target, state, by, note string, at time.Time) (casework.Proposal, error) {
	p, err := scanProposal(s.db().QueryRowContext(ctx, `UPDATE handoff_proposals SET state = ?, decided_by = ?, decided_ns = ?, note = ?
		WHERE target = ? AND state = ? RETURNING `+proposalColumns, state, by, at.UnixNano(), note, target, casework.Pending))
	if errors.Is(err, pgx.ErrNoRows) {
		return casework.Proposal{}, fmt.Errorf("%s: %w", target, casework.ErrNoProposal)
	}
	return p, err
}

// AcceptHandOff implements casework.ProposalStore in one transaction:
// the pending proposal's row, then the claim's, are read FOR UPDATE (that
// order everywhere), so that a second accept waits and then finds no
// pending proposal, and a release or a claim of the target waits until
// the claim has moved or the proposal was found stale.
func (s *Store) AcceptHandOff(ctx context.Context, target, by, note string, at time.Time) (casework.Proposal, error) {
	var p casework.Proposal
	var stale error
	err := s.claimTx(ctx, func(tx sqlDB) error {
		p, stale = casework.Proposal{}, nil
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM handoff_proposals WHERE target = ? AND state = ? FOR UPDATE`, target, casework.Pending).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s: %w", target, casework.ErrNoProposal)
		}
		if err != nil {
			return err
		}
		pend, err := scanProposal(tx.QueryRowContext(ctx, `SELECT `+proposalColumns+` FROM handoff_proposals WHERE id = ?`, id))
		if err != nil {
			return err
		}
		cur, err := claimOf(ctx, tx, target, true)
		if err != nil {
			return err
		}
		state, why := casework.Accepted, note
		if cur != nil && cur.Agency != pend.From {
			state, why = casework.Declined, casework.StaleNote(cur.Agency, pend.From, note)
			stale = fmt.Errorf("%s (proposal from %s): %w", target, pend.From, casework.ErrStaleProposal)
		}
		if p, err = scanProposal(tx.QueryRowContext(ctx, `UPDATE handoff_proposals SET state = ?, decided_by = ?, decided_ns = ?, note = ?
			WHERE id = ? RETURNING `+proposalColumns, state, by, at.UnixNano(), why, id)); err != nil {
			return err
		}
		if stale != nil || cur == nil || cur.Agency == p.To {
			return nil
		}
		return moveClaim(ctx, tx, target, cur.Agency, p.To, by, at)
	})
	if err != nil {
		return casework.Proposal{}, err
	}
	return p, stale
}

// AddCaseStep implements casework.CaseStore.
func (s *Store) AddCaseStep(ctx context.Context, st casework.Step) error {
	_, err := s.db().ExecContext(ctx, `INSERT INTO case_steps (target, step, at_ns, agency, by_whom, note, outcomes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		st.Target, st.Step, st.At.UnixNano(), st.Agency, st.By, st.Note, strings.Join(st.Outcomes, ","))
	return err
}

// CaseSteps implements casework.CaseStore.
func (s *Store) CaseSteps(ctx context.Context, target string) ([]casework.Step, error) {
	var out []casework.Step
	err := eachRow(ctx, s.db(), `SELECT step, at_ns, agency, by_whom, note, outcomes FROM case_steps WHERE target = ? ORDER BY id`, func(r pgx.Rows) error {
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
	_, err := s.db().ExecContext(ctx, `INSERT INTO case_subscribers (target, details, agency, by_whom, at_ns) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (target) DO UPDATE SET details = excluded.details, agency = excluded.agency, by_whom = excluded.by_whom, at_ns = excluded.at_ns`,
		sub.Target, sub.Details, sub.Agency, sub.By, sub.At.UnixNano())
	return err
}

// SubscriberOf implements casework.CaseStore.
func (s *Store) SubscriberOf(ctx context.Context, target string) (*casework.Subscriber, error) {
	sub := casework.Subscriber{Target: target}
	var at int64
	err := s.db().QueryRowContext(ctx, `SELECT details, agency, by_whom, at_ns FROM case_subscribers WHERE target = ?`, target).
		Scan(&sub.Details, &sub.Agency, &sub.By, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sub.At = time.Unix(0, at).UTC()
	return &sub, nil
}
