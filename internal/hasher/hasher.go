// Package hasher is Vigil's reference hasher: it walks files and folders of
// known files and computes every requested kind of digest (md5, sha1,
// sha256, ed2k, tth, btv2) in one read of each file, files in parallel,
// delivering results in path order. Its output feeds watch-lists.
//
// It only reads: it must never write, move or delete what it hashes, never
// follow symbolic links unless told to, and never send anything anywhere.
// The digests themselves live in internal/digest.
package hasher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/digest"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Sentinel errors carried by Result.Err and returned by Walk.
var (
	// ErrNotRegular marks a named path that is neither a regular file nor
	// a folder (a device, socket or pipe): it is not read.
	ErrNotRegular = errors.New("not a regular file")
	// ErrSymlink marks a symbolic link named on the command line while
	// Config.FollowSymlinks is off. Links met inside folders are skipped
	// silently, as find(1) does.
	ErrSymlink = errors.New("symbolic link not followed")
	// ErrLoop marks a folder link that leads back to one of its ancestors.
	ErrLoop = errors.New("symbolic link loop")
	// ErrNoPaths is returned by Walk when it is given nothing to hash.
	ErrNoPaths = errors.New("no paths to hash")
)

// DefaultKinds are the kinds computed when Config.Kinds is empty.
func DefaultKinds() []hashkind.Kind { return digest.FileKinds() }

// Config sets what Walk computes and how.
type Config struct {
	// Kinds to compute for every file; empty means DefaultKinds. Only the
	// file kinds of digest.FileKinds are accepted (not btih, btih2).
	Kinds []hashkind.Kind
	// Workers is how many files are hashed at once; 0 means GOMAXPROCS.
	// When there are fewer files than workers, the digests of each file are
	// spread over goroutines instead, so one large file still uses every
	// core.
	Workers int
	// FollowSymlinks follows symbolic links to files and folders. Off by
	// default: a list of known files should not silently grow through a
	// link to elsewhere.
	FollowSymlinks bool
	// BufferSize is the read size in bytes; 0 means 256 KiB, small enough
	// for each digest to find the buffer still in the core's cache.
	BufferSize int
	// Progress, if set, is called from one goroutine at a time: every
	// ProgressInterval while hashing and once at the end with Done set.
	Progress func(Progress)
	// ProgressInterval is the time between Progress calls; 0 means 250 ms.
	ProgressInterval time.Duration
}

// DefaultConfig returns the defaults: every file kind, one worker per core,
// symbolic links not followed.
func DefaultConfig() Config {
	return Config{
		Kinds:            DefaultKinds(),
		Workers:          runtime.GOMAXPROCS(0),
		BufferSize:       256 << 10,
		ProgressInterval: 250 * time.Millisecond,
	}
}

// validate fills zero fields with defaults and checks the kinds.
func (c Config) validate() (Config, error) {
	d := DefaultConfig()
	if len(c.Kinds) == 0 {
		c.Kinds = d.Kinds
	}
	var seen [16]bool
	kinds := make([]hashkind.Kind, 0, len(c.Kinds))
	for _, k := range c.Kinds {
		if _, err := digest.New(k); err != nil {
			return c, err
		}
		if int(k) < len(seen) && !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	c.Kinds = kinds
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.BufferSize <= 0 {
		c.BufferSize = d.BufferSize
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = d.ProgressInterval
	}
	return c, nil
}

// Result is what Walk found for one file.
type Result struct {
	// Path is the file's path as reached from the path given to Walk.
	Path string
	// Size is the number of bytes hashed (the size found by the scan when
	// the file could not be read).
	Size int64
	// Sums holds one digest per requested kind. It is nil when Err is set;
	// it has no btv2 entry for an empty file, which has no v2 root.
	Sums map[hashkind.Kind]hashkind.Hash
	// Err is why this file or folder could not be hashed; the walk goes on.
	Err error
}

// Progress is a snapshot of a walk's progress. Totals come from the scan
// that precedes hashing.
type Progress struct {
	FilesDone, FilesTotal int
	BytesDone, BytesTotal int64
	Elapsed               time.Duration
	Done                  bool // the last call of the walk
}

// entry is one item found by the scan: a file to hash or an error to report.
type entry struct {
	path string
	size int64
	err  error
}

// Walk hashes every regular file in paths (files, or folders walked
// recursively) and calls fn once per file, and once per path that could not
// be read, in order of path (byte-wise), from the calling goroutine. An
// error from fn stops the walk and is returned; so is the context's error.
// Problems with single files are reported in Result.Err and do not stop the
// walk.
func Walk(ctx context.Context, paths []string, cfg Config, fn func(Result) error) error {
	cfg, err := cfg.validate()
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return ErrNoPaths
	}
	entries, err := scan(ctx, paths, cfg.FollowSymlinks)
	if err != nil {
		return err
	}
	var total int64
	nfiles := 0
	for _, e := range entries {
		if e.err == nil {
			total += e.size
			nfiles++
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var bytesDone atomic.Int64
	var filesDone atomic.Int64
	start := time.Now()
	snapshot := func(done bool) Progress {
		return Progress{
			FilesDone: int(filesDone.Load()), FilesTotal: nfiles,
			BytesDone: bytesDone.Load(), BytesTotal: total,
			Elapsed: time.Since(start), Done: done,
		}
	}
	var reporter sync.WaitGroup
	stopReport := make(chan struct{})
	if cfg.Progress != nil {
		reporter.Add(1)
		go func() {
			defer reporter.Done()
			tick := time.NewTicker(cfg.ProgressInterval)
			defer tick.Stop()
			for {
				select {
				case <-stopReport:
					return
				case <-tick.C:
					cfg.Progress(snapshot(false))
				}
			}
		}()
	}

	// Workers take entries in path order and fn gets them in the same
	// order. A semaphore keeps at most window entries between the feeder
	// and fn, so that results waiting for a slow earlier file stay few
	// however many files there are.
	type indexed struct {
		i int
		r Result
	}
	window := 4 * cfg.Workers
	sem := make(chan struct{}, window)
	out := make(chan indexed, window) // never full: at most window in flight
	jobs := make(chan int)
	fanOut := nfiles < cfg.Workers
	var workers sync.WaitGroup
	for range min(cfg.Workers, max(len(entries), 1)) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			h := newFileHasher(cfg, fanOut, &bytesDone)
			for i := range jobs {
				e := entries[i]
				r := Result{Path: e.path, Size: e.size, Err: e.err}
				if e.err == nil {
					r = h.hash(ctx, e.path, e.size)
					filesDone.Add(1)
				}
				out <- indexed{i, r}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range entries {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	var walkErr error
	pending := make(map[int]Result, window)
	for next := 0; next < len(entries) && walkErr == nil; {
		r, ok := pending[next]
		if !ok {
			select {
			case x := <-out:
				pending[x.i] = x.r
			case <-ctx.Done():
				walkErr = ctx.Err()
			}
			continue
		}
		delete(pending, next)
		next++
		<-sem
		walkErr = fn(r)
	}
	cancel()
	workers.Wait()
	close(stopReport)
	reporter.Wait()
	if cfg.Progress != nil {
		cfg.Progress(snapshot(true))
	}
	return walkErr
}

// scan lists the files under paths, sorted by path, with one entry per
// problem found on the way. Paths named twice are hashed once.
func scan(ctx context.Context, paths []string, follow bool) ([]entry, error) {
	var out []entry
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p = filepath.Clean(p)
		fi, err := os.Lstat(p)
		if err != nil {
			out = append(out, entry{path: p, err: err})
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if !follow {
				out = append(out, entry{path: p, err: fmt.Errorf("%s: %w", p, ErrSymlink)})
				continue
			}
			if fi, err = os.Stat(p); err != nil {
				out = append(out, entry{path: p, err: err})
				continue
			}
		}
		switch {
		case fi.Mode().IsRegular():
			out = append(out, entry{path: p, size: fi.Size()})
		case fi.IsDir():
			var err error
			out, err = scanDir(ctx, p, fi, nil, follow, out)
			if err != nil {
				return nil, err
			}
		default:
			out = append(out, entry{path: p, err: fmt.Errorf("%s (%s): %w", p, fi.Mode().Type(), ErrNotRegular)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	return slices.CompactFunc(out, func(a, b entry) bool { return a.path == b.path }), nil
}

// scanDir appends the entries under dir. ancestors are the folders above
// it, used to stop link loops when following links.
func scanDir(ctx context.Context, dir string, dirInfo fs.FileInfo, ancestors []fs.FileInfo, follow bool, out []entry) ([]entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, a := range ancestors {
		if os.SameFile(a, dirInfo) {
			return append(out, entry{path: dir, err: fmt.Errorf("%s: %w", dir, ErrLoop)}), nil
		}
	}
	ancestors = append(ancestors, dirInfo)
	des, err := os.ReadDir(dir)
	if err != nil {
		// ReadDir returns what it could read before the error: keep going.
		out = append(out, entry{path: dir, err: err})
	}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		t := de.Type()
		if t&fs.ModeSymlink != 0 {
			if !follow {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				out = append(out, entry{path: p, err: err})
				continue
			}
			t = fi.Mode().Type()
		}
		switch {
		case t.IsRegular():
			fi, err := os.Stat(p)
			if err != nil {
				out = append(out, entry{path: p, err: err})
				continue
			}
			out = append(out, entry{path: p, size: fi.Size()})
		case t.IsDir():
			fi, err := os.Stat(p)
			if err != nil {
				out = append(out, entry{path: p, err: err})
				continue
			}
			if out, err = scanDir(ctx, p, fi, ancestors, follow, out); err != nil {
				return nil, err
			}
		}
		// Devices, sockets and pipes inside folders are skipped: only a
		// file named on purpose is worth an error.
	}
	return out, nil
}

// fileHasher hashes one file at a time, reusing its buffers and digests.
type fileHasher struct {
	cfg    Config
	fanOut bool
	bytes  *atomic.Int64
	buf    []byte
	hs     []hashKind
}

type hashKind struct {
	kind hashkind.Kind
	h    interface {
		io.Writer
		Sum([]byte) []byte
		Reset()
	}
}

func newFileHasher(cfg Config, fanOut bool, bytes *atomic.Int64) *fileHasher {
	f := &fileHasher{cfg: cfg, fanOut: fanOut && len(cfg.Kinds) > 1, bytes: bytes}
	for _, k := range cfg.Kinds {
		h, _ := digest.New(k) // validated
		f.hs = append(f.hs, hashKind{k, h})
	}
	if !f.fanOut {
		f.buf = make([]byte, cfg.BufferSize)
	}
	return f
}

// hash reads path once and returns its digests.
func (f *fileHasher) hash(ctx context.Context, path string, scanned int64) Result {
	res := Result{Path: path, Size: scanned}
	file, err := os.Open(path)
	if err != nil {
		res.Err = err
		return res
	}
	defer file.Close()
	// The scan saw a regular file; check again on the open handle in case
	// the path was swapped for a pipe or device since.
	if fi, err := file.Stat(); err != nil {
		res.Err = err
		return res
	} else if !fi.Mode().IsRegular() {
		res.Err = fmt.Errorf("%s (%s): %w", path, fi.Mode().Type(), ErrNotRegular)
		return res
	}
	for _, h := range f.hs {
		h.h.Reset()
	}
	var n int64
	if f.fanOut {
		n, err = f.readFanOut(ctx, file)
	} else {
		n, err = f.read(ctx, file)
	}
	if err != nil {
		res.Err = fmt.Errorf("hash %s: %w", path, err)
		return res
	}
	res.Size = n
	res.Sums = make(map[hashkind.Kind]hashkind.Hash, len(f.hs))
	for _, h := range f.hs {
		if h.kind == hashkind.BTV2 && n == 0 {
			continue // BEP 52: an empty file has no pieces root
		}
		s, err := hashkind.New(h.kind, h.h.Sum(nil))
		if err != nil {
			res.Err = fmt.Errorf("hash %s: %w", path, err)
			res.Sums = nil
			return res
		}
		res.Sums[h.kind] = s
	}
	return res
}

// read feeds every digest from one buffer, one after the other.
func (f *fileHasher) read(ctx context.Context, r io.Reader) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := io.ReadFull(r, f.buf)
		if m > 0 {
			for _, h := range f.hs {
				h.h.Write(f.buf[:m])
			}
			n += int64(m)
			f.bytes.Add(int64(m))
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return n, nil
		default:
			return n, err
		}
	}
}

// cost is each digest's relative CPU cost per byte, measured on amd64 with
// SHA-NI (docs/benchmarks.md); it balances the fan-out groups.
var cost = map[hashkind.Kind]int{
	hashkind.MD5: 17, hashkind.SHA1: 11, hashkind.SHA256: 8, hashkind.ED2K: 13, hashkind.TTH: 19, hashkind.BTV2: 7,
}

// groups splits the digests into at most Workers groups of about equal
// cost (longest first, each to the lightest group).
func (f *fileHasher) groups() [][]hashKind {
	hs := slices.Clone(f.hs)
	sort.SliceStable(hs, func(i, j int) bool { return cost[hs[i].kind] > cost[hs[j].kind] })
	n := min(f.cfg.Workers, len(hs))
	groups := make([][]hashKind, n)
	load := make([]int, n)
	for _, h := range hs {
		g := 0
		for i := range load {
			if load[i] < load[g] {
				g = i
			}
		}
		groups[g] = append(groups[g], h)
		load[g] += cost[h.kind]
	}
	return groups
}

// fanBuf is one read buffer on its way through the digest goroutines.
type fanBuf struct {
	b       []byte
	n       int
	pending atomic.Int32
}

// fanBuffers is how many buffers are in flight: enough that the reader
// never waits for the slowest group while it still has work queued.
const fanBuffers = 4

// readFanOut reads the file once and hands each buffer to one goroutine per
// group of digests; a buffer is reused when every group is done with it.
func (f *fileHasher) readFanOut(ctx context.Context, r io.Reader) (int64, error) {
	groups := f.groups()
	free := make(chan *fanBuf, fanBuffers)
	for range fanBuffers {
		free <- &fanBuf{b: make([]byte, f.cfg.BufferSize)}
	}
	feeds := make([]chan *fanBuf, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		feeds[i] = make(chan *fanBuf, fanBuffers)
		wg.Add(1)
		go func(feed <-chan *fanBuf) {
			defer wg.Done()
			for c := range feed {
				for _, h := range g {
					h.h.Write(c.b[:c.n])
				}
				if c.pending.Add(-1) == 0 {
					free <- c
				}
			}
		}(feeds[i])
	}
	defer func() {
		for _, feed := range feeds {
			close(feed)
		}
		wg.Wait()
	}()

	var n int64
	for {
		var c *fanBuf
		select {
		case c = <-free:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		m, err := io.ReadFull(r, c.b)
		if m > 0 {
			c.n = m
			c.pending.Store(int32(len(groups)))
			for _, feed := range feeds {
				feed <- c
			}
			n += int64(m)
			f.bytes.Add(int64(m))
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return n, nil
		default:
			return n, err
		}
	}
}
