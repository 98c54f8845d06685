package verify

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
)

// The two large files of a bundle, observations.jsonl and proofs.json
// (hundreds of MB for 100,000 observations), are never held whole: each
// is read once, as it is unpacked, and hashed as it is read, so that the
// bytes checked are the bytes hashed. Their content is checked as it
// comes (on a report of its own: verifier.run), and their SHA-256 is
// compared with the manifest's at the end.
var large = map[string]bool{FileObservations: true, FileProofs: true}

// largeFile is one of the large files, read once.
type largeFile struct {
	f   *zip.File
	rc  io.ReadCloser // once opened
	h   hash.Hash     // SHA-256 of what was read
	err error         // why it could not be opened or read; io.EOF at the end
}

func newLargeFile(f *zip.File) *largeFile { return &largeFile{f: f, h: sha256.New()} }

// Read reads the file as it is unpacked (archive/zip refuses more bytes
// than the entry declares, and the declared size was checked).
func (s *largeFile) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.rc == nil {
		if s.rc, s.err = s.f.Open(); s.err != nil {
			s.err = fmt.Errorf("cannot open: %w", s.err)
			return 0, s.err
		}
	}
	n, err := s.rc.Read(p)
	s.h.Write(p[:n])
	if err != nil {
		s.err = err
	}
	return n, err
}

// sum reads what is left of the file (all of it, if the checks did not
// read it) and returns its SHA-256, or why it could not be read.
func (s *largeFile) sum() ([32]byte, error) {
	var sum [32]byte
	if s.err == nil {
		io.Copy(io.Discard, s)
	}
	if s.rc != nil {
		s.rc.Close()
	}
	if s.err != io.EOF {
		return sum, s.err
	}
	s.h.Sum(sum[:0])
	return sum, nil
}

// readLines reads src in batches of whole lines, of size bytes or more
// (a batch holds one line at least), handing each to batch with the number
// of its first line: each line ends with '\n' but maybe the file's last,
// which readLines reports. The batches are buffers taken from free (or
// made) and handed over: batch owns them.
func readLines(src io.Reader, size int, free chan []byte, batch func(first int, data []byte)) (lastHasNoNewline bool, err error) {
	take := func(n int) []byte {
		select {
		case b := <-free:
			if len(b) >= n {
				return b
			}
		default:
		}
		return make([]byte, max(n, size, 1))
	}
	buf, n, first := take(0), 0, 1
	for {
		m, err := io.ReadFull(src, buf[n:])
		n += m
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			return false, err
		}
		if end {
			if n > 0 {
				batch(first, buf[:n])
			}
			return n > 0 && buf[n-1] != '\n', nil
		}
		cut := bytes.LastIndexByte(buf[:n], '\n') + 1
		if cut == 0 { // a line longer than the buffer: a larger one
			buf = append(buf, make([]byte, len(buf))...)
			buf = buf[:cap(buf)]
			continue
		}
		next := take(n - cut)
		carry := copy(next, buf[cut:n])
		batch(first, buf[:cut])
		first += bytes.Count(buf[:cut], []byte("\n"))
		buf, n = next, carry
	}
}
