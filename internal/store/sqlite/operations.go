package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/casework"
)

var _ casework.OperationStore = (*Store)(nil)

// CreateOperation implements casework.OperationStore in one transaction.
func (s *Store) CreateOperation(ctx context.Context, op casework.Operation) (int64, error) {
	crit, err := json.Marshal(op.Criteria)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO operations (name, criteria, by_whom, at_ns) VALUES (?, ?, ?, ?)`,
			op.Name, string(crit), op.By, op.At.UnixNano())
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		for i, t := range op.Targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO operation_targets (operation, pos, target, score, level) VALUES (?, ?, ?, ?, ?)`,
				id, i, t.Target, t.Score, t.Level); err != nil {
				return fmt.Errorf("target %s: %w", t.Target, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("operation %q: %w", op.Name, err)
	}
	return id, nil
}

func scanOperation(r interface{ Scan(...any) error }) (casework.Operation, error) {
	var op casework.Operation
	var crit string
	var at int64
	if err := r.Scan(&op.ID, &op.Name, &crit, &op.By, &at); err != nil {
		return op, err
	}
	op.At = time.Unix(0, at).UTC()
	if err := json.Unmarshal([]byte(crit), &op.Criteria); err != nil {
		return op, fmt.Errorf("operation %d criteria: %w", op.ID, err)
	}
	return op, nil
}

// Operation implements casework.OperationStore.
func (s *Store) Operation(ctx context.Context, id int64) (*casework.Operation, error) {
	op, err := scanOperation(s.db.QueryRowContext(ctx, `SELECT id, name, criteria, by_whom, at_ns FROM operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("operation %d: %w", id, casework.ErrNoOperation)
	}
	if err != nil {
		return nil, err
	}
	err = eachRow(ctx, s.db, `SELECT target, score, level, agency, assigned_by, assigned_ns FROM operation_targets WHERE operation = ? ORDER BY pos`,
		func(r *sql.Rows) error {
			var t casework.OperationTarget
			var at int64
			if err := r.Scan(&t.Target, &t.Score, &t.Level, &t.Agency, &t.AssignedBy, &at); err != nil {
				return err
			}
			if at != 0 {
				t.AssignedAt = time.Unix(0, at).UTC()
			}
			op.Targets = append(op.Targets, t)
			return nil
		}, id)
	if err != nil {
		return nil, fmt.Errorf("operation %d: %w", id, err)
	}
	return &op, nil
}

// Operations implements casework.OperationStore.
func (s *Store) Operations(ctx context.Context) ([]casework.Operation, error) {
	var out []casework.Operation
	err := eachRow(ctx, s.db, `SELECT id, name, criteria, by_whom, at_ns FROM operations ORDER BY id DESC`, func(r *sql.Rows) error {
		op, err := scanOperation(r)
		out = append(out, op)
		return err
	})
	return out, err
}

// AssignOperationTarget implements casework.OperationStore: one
// immediate transaction (the store has one writer), so that of two
// assigning one target at once the second finds it assigned.
func (s *Store) AssignOperationTarget(ctx context.Context, id int64, target, agency, by string, at time.Time) (string, error) {
	var cur string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE operation_targets SET agency = ?, assigned_by = ?, assigned_ns = ?
			WHERE operation = ? AND target = ? AND agency = ''`, agency, by, at.UnixNano(), id, target); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT agency FROM operation_targets WHERE operation = ? AND target = ?`, id, target).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("operation %d, target %s: %w", id, target, casework.ErrNotInOperation)
		}
		return err
	})
	return cur, err
}

var _ casework.OutcomeStore = (*Store)(nil)

// LatestCaseSteps implements casework.OutcomeStore.
func (s *Store) LatestCaseSteps(ctx context.Context) ([]casework.Step, error) {
	var out []casework.Step
	err := eachRow(ctx, s.db, `SELECT target, step, at_ns, agency, by_whom, note, outcomes FROM case_steps c
		WHERE id = (SELECT max(id) FROM case_steps l WHERE l.target = c.target) ORDER BY target`, func(r *sql.Rows) error {
		var st casework.Step
		var at int64
		var outcomes string
		if err := r.Scan(&st.Target, &st.Step, &at, &st.Agency, &st.By, &st.Note, &outcomes); err != nil {
			return err
		}
		st.At = time.Unix(0, at).UTC()
		if outcomes != "" {
			st.Outcomes = strings.Split(outcomes, ",")
		}
		out = append(out, st)
		return nil
	})
	return out, err
}
