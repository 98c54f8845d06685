package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// saveEvery is how many drained observations the cursor may lag behind
// (a record more, at most).
const saveEvery = 256

func encode(o *observe.Observation) ([]byte, error) {
	return observe.MarshalLine(o)
}

// decode reads a record's payload, a line at a time: its observations,
// and an error for each line that is not one (a blank line included:
// countLines counted it).
func decode(p []byte) (obs []observe.Observation, bad []error) {
	for n := 1; len(p) > 0; n++ {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		var o observe.Observation
		if err := observe.DecodeLine(line, &o); err != nil {
			bad = append(bad, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		obs = append(obs, o)
	}
	return obs, bad
}

// Run publishes the queue to the bus, in order, until ctx ends: at once
// while the bus takes them, every RetryEvery while it fails. It fsyncs
// what was written every SyncEvery. Once ctx ends it drains for up to
// CloseDrain more (retrying while the bus fails) and saves the cursor;
// what is left waits on disk for the next run. It returns nil: a bus that
// fails is the health's and the metrics' to report, not a reason to stop
// observing.
func (s *Spool) Run(ctx context.Context) error {
	tick := time.NewTicker(max(s.cfg.SyncEvery, 100*time.Millisecond))
	defer tick.Stop()
	for {
		failed := s.drain(ctx) != nil
		wake, retry := s.notify, (<-chan time.Time)(nil)
		if failed {
			wake, retry = nil, time.After(s.cfg.RetryEvery)
		}
		select {
		case <-ctx.Done():
			s.finish(ctx)
			return nil
		case <-wake:
		case <-retry:
		case <-tick.C:
			s.sync()
		}
	}
}

// finish drains for up to CloseDrain, retrying every RetryEvery while
// the bus fails, then fsyncs and saves the cursor.
func (s *Spool) finish(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CloseDrain)
	defer cancel()
	for s.drain(dctx) != nil && dctx.Err() == nil {
		t := time.NewTimer(s.cfg.RetryEvery)
		select {
		case <-dctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := errors.Join(s.syncLocked(), saveCursor(s.cfg.Dir, s.rc)); err != nil {
		s.log.Error("sensor queue: saving its state", "dir", s.cfg.Dir, "err", err)
	}
	s.sinceSave = 0
	st := s.st
	s.log.Info("sensor queue stopped", "published", st.Published, "left_on_disk", st.Pending, "dropped", st.Dropped, "torn", st.Torn)
}

func (s *Spool) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.syncLocked(); err != nil {
		s.log.Error("sensor queue: fsync", "err", err)
	}
}

// drain publishes records until the queue is empty (nil), a publish
// fails (its error) or ctx ends.
func (s *Spool) drain(ctx context.Context) error {
	for ctx.Err() == nil {
		obs, n, ok, err := s.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		err = s.publish(pctx, obs)
		cancel()
		if err != nil {
			s.failed(err)
			return err
		}
		if err := s.advance(n, len(obs)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// publish hands one record's observations to the bus: at once to a bus
// that takes batches, else one by one, stopping at the first that fails
// (the record is published again, from its start, and the bus
// recognises the ids it already holds).
func (s *Spool) publish(ctx context.Context, obs []observe.Observation) error {
	if bp, ok := s.up.(bus.BatchPublisher); ok {
		return bp.PublishBatch(ctx, obs)
	}
	for i := range obs {
		if err := s.up.Publish(ctx, obs[i]); err != nil {
			return err
		}
	}
	return nil
}

// failed records that the bus refused or did not answer.
func (s *Spool) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.PublishErrors++
	s.st.LastError = err.Error()
	if s.st.BusUp {
		s.st.BusUp, s.st.DownSince = false, time.Now()
		s.log.Warn("sensor queue: bus unreachable or refusing; observations wait on disk", "dir", s.cfg.Dir, "err", err, "pending", s.st.Pending)
	}
}

// next reads the record at the cursor without moving it: its
// observations and the record's length; ok false when the queue is empty.
// It moves to the next segment at the end of one, and skips (and counts)
// a record that is damaged, and each line of a record that is not an
// observation.
func (s *Spool) next() (obs []observe.Observation, n int64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed || (s.rc.Seg == s.wseg && s.rc.Off >= s.wsize) {
			return nil, 0, false, nil
		}
		p, n, rerr := readRecord(s.rf, s.rc.Off)
		switch {
		case rerr != nil && s.rc.Seg < s.wseg:
			damaged := !errors.Is(rerr, io.EOF)
			if damaged {
				s.skipped("damaged record: the rest of its segment is skipped", rerr)
			}
			if err := s.nextSegment(); err != nil {
				return nil, 0, false, err
			}
			if damaged {
				s.recount()
			}
			continue
		case errors.Is(rerr, errTorn):
			// The segment being written, damaged under us (a bad sector,
			// a write cut half-way that could not be cut back): nothing
			// after this point in it can be trusted to parse, and failing
			// here at every pass stopped the drain for good while new
			// records piled up behind it. Writing goes on in a new
			// segment, and this one is skipped as an older one is.
			if err := s.roll(); err != nil {
				return nil, 0, false, err
			}
			s.skipped("damaged record: the rest of its segment is skipped", rerr)
			if err := s.nextSegment(); err != nil {
				return nil, 0, false, err
			}
			s.recount()
			continue
		case rerr != nil:
			return nil, 0, false, fmt.Errorf("spool %s: segment %d offset %d: %w", s.cfg.Dir, s.rc.Seg, s.rc.Off, rerr)
		}
		obs, bad := decode(p)
		for _, err := range bad {
			s.skipped("record line is not an observation", err)
		}
		s.st.Pending -= len(bad)
		if len(obs) == 0 {
			s.rc.Off += n
			continue
		}
		return obs, n, true, nil
	}
}

func (s *Spool) skipped(what string, err error) {
	s.st.Torn++
	s.log.Error("sensor queue: "+what, "dir", s.cfg.Dir, "segment", s.rc.Seg, "offset", s.rc.Off, "err", err)
}

// recount counts again the observations waiting, from the cursor on (a
// segment's rest skipped: what it held no longer waits, and how much
// that was cannot be read from damaged records). s.mu is held.
func (s *Spool) recount() {
	segs, err := segments(s.cfg.Dir)
	if err != nil {
		return
	}
	n := 0
	for _, seg := range segs {
		if seg < s.rc.Seg {
			continue
		}
		from := int64(0)
		if seg == s.rc.Seg {
			from = s.rc.Off
		}
		obs, _, _, err := scan(filepath.Join(s.cfg.Dir, segName(seg)), from)
		if err != nil {
			return
		}
		n += obs
	}
	s.st.Pending = n
}

// advance moves the cursor past a record, of n bytes and obs
// observations, that the bus acknowledged.
func (s *Spool) advance(n int64, obs int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rc.Off += n
	s.st.Pending -= obs
	s.st.Published += uint64(obs)
	if !s.st.BusUp {
		s.log.Info("sensor queue: bus back; draining in order", "down_for", time.Since(s.st.DownSince).Round(time.Millisecond), "pending", s.st.Pending)
		s.st.BusUp = true
	}
	if s.sinceSave += obs; s.sinceSave >= saveEvery {
		s.sinceSave = 0
		return saveCursor(s.cfg.Dir, s.rc)
	}
	return nil
}

// nextSegment moves the cursor to the start of the next segment (the
// lowest numbered after it: numbers may have gaps when files were removed
// by hand) and deletes the one it leaves (after saving the cursor, so
// that a crash in between never re-reads a deleted file).
func (s *Spool) nextSegment() error {
	old := filepath.Join(s.cfg.Dir, segName(s.rc.Seg))
	if err := s.rf.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	next := s.wseg
	segs, err := segments(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, n := range segs {
		if n > s.rc.Seg && n < next {
			next = n
			break
		}
	}
	s.rc = cursor{Seg: next}
	if err := saveCursor(s.cfg.Dir, s.rc); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.sinceSave = 0
	if fi, err := os.Stat(old); err == nil {
		s.st.Bytes -= fi.Size()
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return s.openReader()
}
