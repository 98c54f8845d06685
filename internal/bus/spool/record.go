package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A record on disk is an 8-byte header, the payload's length and its
// CRC-32C (both little-endian uint32), then the payload: observations in
// the JSON Lines form of package observe, one a line (one in a record
// that Publish wrote, a sensor's signed batch, or as much of it as
// recordBytes holds, in one that PublishBatch wrote).
const headerLen = 8

// recordBytes is the most a record of several observations holds (a
// longer observation is a record alone): a signed batch of 256
// observations of about 1.8 KB is one record.
const recordBytes = 1 << 20

// maxRecord bounds a payload's length, so that a torn header cannot make
// a reader allocate gigabytes.
const maxRecord = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is a record that is cut short or whose checksum does not match:
// a write that a crash interrupted, or a damaged disk.
var errTorn = errors.New("torn or damaged record")

// appendRecord appends payload's record to b.
func appendRecord(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// readRecord reads the record at off in f. It returns the payload and the
// record's length on disk, io.EOF at the end, or errTorn.
func readRecord(f *os.File, off int64) ([]byte, int64, error) {
	var h [headerLen]byte
	n, err := f.ReadAt(h[:], off)
	if n == 0 && errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if n < headerLen {
		return nil, 0, errTorn
	}
	size, sum := binary.LittleEndian.Uint32(h[:4]), binary.LittleEndian.Uint32(h[4:])
	if size > maxRecord {
		return nil, 0, errTorn
	}
	p := make([]byte, size)
	if n, _ := f.ReadAt(p, off+headerLen); n < int(size) || crc32.Checksum(p, castagnoli) != sum {
		return nil, 0, errTorn
	}
	return p, headerLen + int64(size), nil
}

// segName is the file name of segment n: names sort as numbers do.
func segName(n uint64) string { return fmt.Sprintf("%020d.seg", n) }

// segments lists the segment numbers in dir, in order: the files named
// exactly as segName names them.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || segName(n) != e.Name() {
			continue // not a name the queue writes ("7.seg"): not a segment
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// scan counts the observations (lines) in the records of segment file
// path from off on. A torn or damaged record ends the scan: good is the
// offset just before it and torn says one was found.
func scan(path string, off int64) (obs int, good int64, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	for {
		p, n, err := readRecord(f, off)
		switch {
		case errors.Is(err, io.EOF):
			return obs, off, false, nil
		case err != nil:
			return obs, off, true, nil
		}
		obs += countLines(p)
		off += n
	}
}

// countLines is the number of lines in a record's payload: the
// observations it holds.
func countLines(p []byte) int {
	n := bytes.Count(p, []byte("\n"))
	if len(p) > 0 && p[len(p)-1] != '\n' {
		n++
	}
	return n
}

// cursor is where the drain stands: the next record to publish.
type cursor struct {
	Seg uint64
	Off int64
}

const cursorFile = "cursor"

// loadCursor reads dir's cursor; a missing one is the start.
func loadCursor(dir string) (cursor, error) {
	b, err := os.ReadFile(filepath.Join(dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, err
	}
	var c cursor
	if _, err := fmt.Sscanf(string(b), "%d %d\n", &c.Seg, &c.Off); err != nil {
		return cursor{}, fmt.Errorf("spool %s: cursor %q: %w", dir, b, err)
	}
	return c, nil
}

// saveCursor replaces dir's cursor atomically (write, then rename). It is
// not synced: after a power loss an older cursor re-publishes records the
// bus already holds, which the bus and the store recognise by id.
func saveCursor(dir string, c cursor) error {
	tmp := filepath.Join(dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", c.Seg, c.Off), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, cursorFile))
}
