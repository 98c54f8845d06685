// Package spool is a sensor's bounded on-disk queue in front of a remote
// bus (NATS JetStream): the sensor keeps observing while the hub is
// unreachable, and what it observed reaches the bus, in order, when the
// hub returns.
//
// Every observation a sensor publishes is appended to a segment file in
// the queue's directory before Publish returns, a signed batch
// (PublishBatch) as one record; a drain (Run) publishes the records to
// the bus one by one, in the order they were appended, a record at once
// to a bus that takes batches (one NATS message), and moves its cursor
// past each one only once the bus has acknowledged all of it.
// While the bus is unreachable the drain retries every RetryEvery and the
// records wait on disk.
//
// Durability. A record is written with write(2) before Publish returns,
// so a sensor that is killed (kill -9, a crash) loses nothing: the kernel
// holds the write. The segment is fsynced every SyncEvery (default 1 s)
// and when the queue closes, so a power loss loses at most the records of
// the last SyncEvery; SyncEvery 0 fsyncs every record. Each record carries
// its length and a CRC-32C: a record that a crash cut short, or that the
// disk damaged, is detected when the queue opens, cut off, counted (Torn)
// and never published; a line of a record that is not an observation is
// skipped and counted the same way. The cursor is saved once 256
// observations were drained since it last was, and when the queue
// closes; after a crash the records published since are published again,
// as the same messages with the same observation ids, which JetStream's
// duplicate window and the store's idempotent insert both recognise.
//
// Bound. The segment files never hold more than MaxBytes in all. When
// the queue is full, a new observation is refused with ErrFull and counted
// (Dropped, vigil_queue_dropped_total) and the health says so (of a batch,
// what fits is kept and each observation of the rest counted): the oldest
// observations, already on disk, are kept and drain first. The package
// must never drop a record silently, nor publish records out of order.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrFull is returned by Publish when the queue holds MaxBytes: the
// observation is dropped, and counted.
var ErrFull = errors.New("sensor queue full: observation dropped")

// Config is a queue's directory, bound and timings.
type Config struct {
	// Dir holds the segment files and the cursor; one sensor process at a
	// time (a lock file says so). Required.
	Dir string
	// MaxBytes bounds the segment files' total size. Default 1 GiB
	// (about 590,000 observations of 1.8 KB, docs/deployment.md).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started;
	// a drained segment is deleted. Default 16 MiB.
	SegmentBytes int64
	// SyncEvery is how often written records are fsynced; 0 fsyncs each
	// record before Publish returns. Default 1 s.
	SyncEvery time.Duration
	// RetryEvery is how long the drain waits after the bus failed before
	// trying again. Default 1 s.
	RetryEvery time.Duration
	// PublishTimeout bounds one publish to the bus. Default 10 s.
	PublishTimeout time.Duration
	// CloseDrain is how long Run goes on draining once its context ends,
	// retrying while the bus fails (what is left waits on disk for the
	// next run). Default 5 s.
	CloseDrain time.Duration
}

// DefaultConfig is a 1 GiB queue in dir, fsynced every second.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, MaxBytes: 1 << 30, SegmentBytes: 16 << 20, SyncEvery: time.Second,
		RetryEvery: time.Second, PublishTimeout: 10 * time.Second, CloseDrain: 5 * time.Second}
}

// Validate reports a Config that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("spool: no directory")
	case c.MaxBytes <= 0 || c.SegmentBytes <= 0:
		return fmt.Errorf("spool %s: max bytes %d and segment bytes %d must be positive", c.Dir, c.MaxBytes, c.SegmentBytes)
	case c.SyncEvery < 0 || c.RetryEvery <= 0 || c.PublishTimeout <= 0 || c.CloseDrain < 0:
		return fmt.Errorf("spool %s: negative or zero timings", c.Dir)
	}
	return nil
}

// Stats is what the queue did since it was opened, and holds now.
type Stats struct {
	// Queued counts observations written to the queue; Published those
	// the bus acknowledged (including ones queued by an earlier run);
	// Dropped those refused because the queue was full; Torn the damaged
	// or cut-short records, and the lines that were not observations,
	// found and skipped; PublishErrors the publishes to the bus that
	// failed (and will be retried).
	Queued, Published, Dropped, Torn, PublishErrors uint64
	// Pending is the number of observations waiting on disk; Bytes the
	// size of the segment files, out of MaxBytes.
	Pending         int
	Bytes, MaxBytes int64
	// BusUp is false from a failed publish to the next one that succeeds;
	// DownSince is when the bus failed, LastError why.
	BusUp     bool
	DownSince time.Time
	LastError string
}

// Spool is an open queue: a bus.Publisher for the sensor, drained to the
// bus by Run.
type Spool struct {
	cfg  Config
	up   bus.Publisher
	log  *slog.Logger
	lock *os.File

	notify chan struct{} // a record was appended

	mu        sync.Mutex
	closed    bool
	wseg      uint64      // the segment written to
	wf        segmentFile // its file, opened for appending
	wsize     int64
	wtail     error // why the segment written to may hold more than wsize bytes (nil: it does not)
	dirty     bool  // written since the last fsync
	rc        cursor
	rf        *os.File // the segment rc is in, opened for reading
	sinceSave int      // observations drained since the cursor was saved
	st        Stats
}

var _ bus.BatchPublisher = (*Spool)(nil)

// segmentFile is the segment written to: an *os.File, or in tests one
// that fails as a full or failing disk does.
type segmentFile interface {
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Open opens (or creates) the queue in cfg.Dir, in front of up. It
// counts what an earlier run left, and cuts off a torn last record.
func Open(cfg Config, up bus.Publisher, log *slog.Logger) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := privateDir(cfg.Dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{cfg: cfg, up: up, log: log, lock: lock, notify: make(chan struct{}, 1)}
	s.st.MaxBytes, s.st.BusUp = cfg.MaxBytes, true
	if err := s.recover(); err != nil {
		s.release()
		return nil, err
	}
	if s.st.Pending > 0 || s.st.Torn > 0 {
		log.Info("sensor queue: records left by an earlier run will be published first", "dir", cfg.Dir,
			"pending", s.st.Pending, "bytes", s.st.Bytes, "torn", s.st.Torn)
	}
	return s, nil
}

// privateDir refuses a queue directory that another account owns or that
// its group or anyone may write to: whoever can write there can plant
// segments the sensor would publish as its own, or a symbolic link at
// cursor.tmp or lock that the sensor would write through.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spool %s: not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("spool %s: owned by uid %d, not by this process (uid %d): others may write to it", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("spool %s: mode %s: others may write to it (chmod 700 it, or give a new directory)", dir, fi.Mode().Perm())
	}
	return nil
}

// lockDir takes the directory's lock file, so that two sensors never
// share one queue.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s: in use by another process: %w", dir, err)
	}
	return f, nil
}

// recover loads the cursor, deletes drained segments, counts what waits,
// cuts torn records off, and opens the files to write and read.
func (s *Spool) recover() error {
	dir := s.cfg.Dir
	c, err := loadCursor(dir)
	if err != nil {
		return err
	}
	segs, err := segments(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var live []uint64
	for _, n := range segs {
		if n < c.Seg {
			if err := os.Remove(filepath.Join(dir, segName(n))); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		live = append(live, n)
	}
	if len(live) > 0 && live[0] > c.Seg {
		c = cursor{Seg: live[0]}
	}
	if len(live) == 0 && c.Off > 0 {
		// The cursor's segment is gone (a power loss lost it, published,
		// after the cursor reached the disk): the one made again for
		// writing is read from its beginning, else what is written there
		// up to the old offset would never be published.
		s.log.Warn("sensor queue: the cursor's segment is missing (a power loss); it starts again at its beginning", "dir", dir, "segment", c.Seg, "cursor", c.Off)
		c.Off = 0
		if err := saveCursor(dir, c); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	at := c.Off
	for _, n := range live {
		if err := s.recoverSegment(n, &c); err != nil {
			return err
		}
	}
	s.wseg = c.Seg
	if len(live) > 0 {
		s.wseg = live[len(live)-1]
	}
	if c.Off != at && s.wseg == c.Seg {
		// The cursor was moved back to its segment's end: nothing more
		// is written in that segment, so that no record ever lies under
		// the old cursor should its save not reach the disk.
		s.wseg++
	}
	if err := s.openWriter(); err != nil {
		return err
	}
	s.rc = c
	return s.openReader()
}

// recoverSegment counts segment n's waiting records and cuts it at a
// torn record. A cursor past the end of its segment is moved to the end
// (what it passed was published).
func (s *Spool) recoverSegment(n uint64, c *cursor) error {
	path := filepath.Join(s.cfg.Dir, segName(n))
	from := int64(0)
	if n == c.Seg {
		from = c.Off
	}
	obs, good, torn, err := scan(path, from)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if torn {
		s.st.Torn++
		s.log.Warn("sensor queue: torn or damaged record cut off; what follows it in the segment is lost", "segment", path, "offset", good)
		if err := os.Truncate(path, good); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.st.Pending += obs
	s.st.Bytes += fi.Size()
	if n == c.Seg && c.Off > fi.Size() {
		// A power loss: the cursor's rename reached the disk before the
		// segment's last records (fsynced every SyncEvery). The cursor
		// passes a record only once the bus acknowledged it: what was
		// lost was published.
		s.log.Warn("sensor queue: cursor past the end of its segment (a power loss lost records already published); it is moved to the end",
			"segment", path, "cursor", c.Off, "bytes", fi.Size())
		c.Off = fi.Size()
		// Saved at once: records written from here on would otherwise
		// reach the old cursor's offset, and a crash before the next save
		// would make the next open start there, skipping them unpublished
		// (or cutting the segment where it lands mid-record).
		if err := saveCursor(s.cfg.Dir, *c); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

func (s *Spool) openWriter() error {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, segName(s.wseg)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	s.wf, s.wsize = f, fi.Size()
	return nil
}

func (s *Spool) openReader() error {
	f, err := os.Open(filepath.Join(s.cfg.Dir, segName(s.rc.Seg)))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.rf = f
	return nil
}

// Publish appends o to the queue (it is given an id first if it has
// none, so that the bus recognises a re-publish). It returns ErrFull,
// counted, when the queue holds MaxBytes. ctx is not waited on: a write
// to the local disk does not wait for the bus.
func (s *Spool) Publish(ctx context.Context, o observe.Observation) error {
	err := s.PublishBatch(ctx, []observe.Observation{o})
	var be *bus.BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// PublishBatch appends obs to the queue, in order, as few records as
// hold them (a sensor's signed batch is one record, drained as one bus
// message): each observation is given an id first if it has none. When
// the queue cannot hold them all, it keeps those that fit, in order, and
// drops the rest, each counted (Dropped) as Publish counts one: the
// *bus.BatchError names them, with ErrFull. ctx is not waited on.
func (s *Spool) PublishBatch(_ context.Context, obs []observe.Observation) error {
	var failed []int
	var errs []error
	var lines [][]byte
	at := make([]int, 0, len(obs)) // the index in obs of each line
	for i := range obs {
		o := obs[i]
		if o.ID == "" {
			o.ID = observe.NewID(o.Time)
		}
		line, err := encode(&o)
		if err != nil {
			failed, errs = append(failed, i), append(errs, fmt.Errorf("spool: %w", err))
			continue
		}
		lines, at = append(lines, line), append(at, i)
	}
	kept, err := s.appendLines(lines)
	if err != nil {
		failed, errs = append(failed, at[kept:]...), append(errs, err)
	}
	if kept > 0 {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return &bus.BatchError{Failed: failed, Err: errors.Join(errs...)}
}

// appendLines writes lines as records of up to recordBytes each (a line
// longer than that alone), in order, and returns how many lines it wrote:
// when the queue is full, those that fit are written and the rest are
// dropped and counted (ErrFull).
func (s *Spool) appendLines(lines [][]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, bus.ErrClosed
	}
	done := 0
	for done < len(lines) {
		// The next record: as many lines as recordBytes and the queue's
		// room take (at least one, which may then not fit).
		room := s.cfg.MaxBytes - s.st.Bytes - headerLen
		size, n := 0, 0
		for done+n < len(lines) {
			l := len(lines[done+n])
			if n > 0 && (size+l > recordBytes || int64(size+l) > room) {
				break
			}
			size, n = size+l, n+1
		}
		if int64(size) > room {
			s.st.Dropped += uint64(len(lines) - done)
			return done, fmt.Errorf("%w (%d bytes of %d in %s; %d dropped so far)", ErrFull, s.st.Bytes, s.cfg.MaxBytes, s.cfg.Dir, s.st.Dropped)
		}
		rec := make([]byte, 0, headerLen+size)
		rec = appendRecord(rec, slices.Concat(lines[done:done+n]...))
		if err := s.appendLocked(rec, n); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// appendLocked writes one record of n observations, starting a new
// segment when the current one is full, or when its end is not known: a
// write that failed and could not be cut back may have left part of a
// record there, and a record written after it would be skipped with it
// (the drain skips the rest of a segment from a damaged record on).
func (s *Spool) appendLocked(rec []byte, n int) error {
	if s.wsize >= s.cfg.SegmentBytes || s.wtail != nil {
		if err := s.roll(); err != nil {
			if s.wtail != nil {
				return fmt.Errorf("spool %s: segment %d ends in a failed write (%v) and the next could not be started: %w", s.cfg.Dir, s.wseg, s.wtail, err)
			}
			return err
		}
	}
	if _, err := s.wf.Write(rec); err != nil {
		// Never leave part of a record before the next: cut it back, or,
		// when that fails too, write no more in this segment.
		if terr := s.wf.Truncate(s.wsize); terr != nil {
			s.wtail = terr
			s.log.Error("sensor queue: a failed write could not be cut back: the next record goes to a new segment", "dir", s.cfg.Dir,
				"segment", s.wseg, "offset", s.wsize, "err", err, "truncate_err", terr)
		}
		return fmt.Errorf("spool %s: %w", s.cfg.Dir, err)
	}
	s.wsize += int64(len(rec))
	s.st.Bytes += int64(len(rec))
	s.st.Pending += n
	s.st.Queued += uint64(n)
	s.dirty = true
	if s.cfg.SyncEvery == 0 {
		return s.syncLocked()
	}
	return nil
}

// roll fsyncs the segment written to, starts the next and closes the
// one it leaves. The next is opened first: when it cannot be (a full
// disk), the queue stays on the current segment and tries again at the
// next append, instead of writing to a closed file for ever.
func (s *Spool) roll() error {
	if err := s.syncLocked(); err != nil {
		return err
	}
	old, seg, size := s.wf, s.wseg, s.wsize
	s.wseg++
	if err := s.openWriter(); err != nil {
		s.wf, s.wseg, s.wsize = old, seg, size
		return err
	}
	s.wtail = nil
	if err := old.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *Spool) syncLocked() error {
	if !s.dirty {
		return nil
	}
	if err := s.wf.Sync(); err != nil {
		return fmt.Errorf("spool %s: fsync: %w", s.cfg.Dir, err)
	}
	s.dirty = false
	return nil
}

// Stats returns what the queue did and holds.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Health says whether observations reach the bus and whether any were
// dropped: a queue that fills, or a bus that is down, is not healthy.
func (s *Spool) Health() (ok bool, why string) {
	st := s.Stats()
	held := fmt.Sprintf("%d observations queued on disk (%d of %d bytes), %d dropped because the queue was full, %d torn records skipped",
		st.Pending, st.Bytes, st.MaxBytes, st.Dropped, st.Torn)
	switch {
	case !st.BusUp:
		return false, fmt.Sprintf("bus unreachable or refusing since %s (%s): %s", st.DownSince.UTC().Format(time.RFC3339), st.LastError, held)
	case st.Dropped > 0:
		return false, "the queue filled while the bus was away: " + held
	}
	return true, fmt.Sprintf("bus up, %d published; %s", st.Published, held)
}

// Close fsyncs the segment, saves the cursor and releases the directory.
// Publish returns bus.ErrClosed afterwards. Call it after Run returned.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.syncLocked()
	err = errors.Join(err, saveCursor(s.cfg.Dir, s.rc), s.wf.Close(), s.rf.Close())
	s.release()
	return err
}

func (s *Spool) release() { s.lock.Close() }
