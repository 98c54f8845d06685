package obsblock

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// benchTotal is how many observations each source gives: 4 blocks of
// 4,096, 16 of 1,024, 64 of 256.
const benchTotal = 16384

func benchSources(tb testing.TB) map[string][]observe.Observation {
	return map[string][]observe.Observation{
		"disk": diskObservations(benchTotal), // the PostgreSQL disk benchmark's
		"lab":  labObservations(benchTotal, 1),
		// The lab's observations as evidence.BatchSigner signs them: chain
		// hashes that follow (the lab generator's are random bytes).
		"lab-signed": signed(tb, labObservations(benchTotal, 1), 1),
	}
}

// cpuTime is this process's user and system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// jsonBlock is the baseline: the block's observations as JSON Lines (the
// bus's and the sensors' form), transcripts' bytes left out, compressed
// as one zstd frame.
func jsonBlock(obs []observe.Observation) ([]byte, error) {
	var buf []byte
	for i := range obs {
		o := stored(obs[i])
		l, err := o.Line()
		if err != nil {
			return nil, err
		}
		buf = append(append(buf, l...), '\n')
	}
	return encoder.EncodeAll(buf, nil), nil
}

func jsonDecode(blk []byte) ([]observe.Observation, error) {
	raw, err := decoder.DecodeAll(blk, nil)
	if err != nil {
		return nil, err
	}
	var out []observe.Observation
	d := observe.NewDecoder(bytes.NewReader(raw))
	for {
		var o observe.Observation
		if err := d.Decode(&o); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// BenchmarkBlock encodes and decodes each source's observations in
// blocks of 256, 1,024 and 4,096, in version 2 (obsblock), against
// version 1 (obsblock-v1: every chain hash stored) and the baseline (JSON
// Lines in one zstd frame), and reports bytes an observation and CPU µs an observation
// to encode, to decode whole, to decode one observation of a freshly
// opened block (At), and to read the times and endpoints alone.
//
//	go test ./internal/store/obsblock -run '^$' -bench Block -benchtime 3x
//
// (-bench 'Block/lab-signed/1024' for version 1 against 2 on a signer's
// chains alone.)
func BenchmarkBlock(b *testing.B) {
	srcs := benchSources(b)
	for _, src := range []string{"disk", "lab", "lab-signed"} {
		obs := srcs[src]
		for _, size := range []int{256, 1024, 4096} {
			for _, form := range []string{"obsblock", "obsblock-v1", "json+zstd"} {
				b.Run(fmt.Sprintf("%s/%d/%s", src, size, form), func(b *testing.B) {
					benchBlocks(b, obs, size, form)
				})
			}
		}
	}
}

func benchBlocks(b *testing.B, obs []observe.Observation, size int, form string) {
	enc, dec := Encode, Decode
	codec := strings.HasPrefix(form, "obsblock")
	switch form {
	case "obsblock-v1":
		enc = func(dst []byte, o []observe.Observation) ([]byte, error) { return encode(dst, o, version1) }
	case "json+zstd":
		enc = func(_ []byte, o []observe.Observation) ([]byte, error) { return jsonBlock(o) }
		dec = jsonDecode
	}
	var blocks [][]byte
	var encCPU, decCPU, atCPU, colCPU time.Duration
	total := 0
	for b.Loop() {
		blocks = blocks[:0]
		total = 0
		c0 := cpuTime()
		for k := 0; k < len(obs); k += size {
			blk, err := enc(nil, obs[k:min(k+size, len(obs))])
			if err != nil {
				b.Fatal(err)
			}
			blocks = append(blocks, blk)
			total += len(blk)
		}
		c1 := cpuTime()
		for _, blk := range blocks {
			got, err := dec(blk)
			if err != nil || len(got) != min(size, len(obs)) {
				b.Fatalf("decoded %d: %v", len(got), err)
			}
		}
		c2 := cpuTime()
		encCPU += c1 - c0
		decCPU += c2 - c1
		if !codec {
			continue
		}
		for _, blk := range blocks {
			bl, err := Open(blk)
			if err != nil {
				b.Fatal(err)
			}
			// The row before the middle: in version 2, in a block of one
			// signed chain, the last of a run of keepEvery-1 derived rows
			// (the longest walk back At makes).
			if _, err := bl.At(size/2 - 1); err != nil {
				b.Fatal(err)
			}
		}
		c3 := cpuTime()
		for _, blk := range blocks {
			bl, _ := Open(blk)
			if _, err := bl.Times(); err != nil {
				b.Fatal(err)
			}
			if _, err := bl.Endpoints(); err != nil {
				b.Fatal(err)
			}
		}
		colCPU += cpuTime() - c3
		atCPU += c3 - c2
	}
	n := float64(b.N * len(obs))
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	b.ReportMetric(float64(total)/float64(len(obs)), "bytes/obs")
	b.ReportMetric(per(encCPU), "encode-cpu-µs/obs")
	b.ReportMetric(per(decCPU), "decode-cpu-µs/obs")
	if codec {
		b.ReportMetric(float64(atCPU.Microseconds())/float64(b.N*len(blocks)), "at-one-cpu-µs/block")
		b.ReportMetric(per(colCPU), "times+endpoints-cpu-µs/obs")
	}
	b.ReportMetric(0, "ns/op")
}

// TestColumnBytes prints where a block's bytes go, column by column, for
// each source at 1,024 observations a block (run with -v; it checks
// only that the columns add up to the block).
//
//	go test ./internal/store/obsblock -run TestColumnBytes -v
func TestColumnBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("a report")
	}
	for src, obs := range benchSources(t) {
		var sizes [numCols]int
		header, total := 0, 0
		for k := 0; k < len(obs); k += 1024 {
			blk, err := Encode(nil, obs[k:k+1024])
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(blk)
			if err != nil {
				t.Fatal(err)
			}
			sum := 0
			for c := range numCols {
				sizes[c] += len(b.stored[c])
				sum += len(b.stored[c])
			}
			header += len(blk) - sum
			total += len(blk)
		}
		cols := make([]int, numCols)
		for c := range cols {
			cols[c] = c
		}
		sort.SliceStable(cols, func(i, j int) bool { return sizes[cols[i]] > sizes[cols[j]] })
		var lines []string
		sum := header
		for _, c := range cols {
			sum += sizes[c]
			if sizes[c]*1000 >= total { // 0.1% or more
				lines = append(lines, fmt.Sprintf("%s %.1f", colSpecs[c].name, float64(sizes[c])/float64(len(obs))))
			}
		}
		if sum != total {
			t.Fatalf("%s: columns and header %d bytes, blocks %d", src, sum, total)
		}
		t.Logf("%s: %.1f bytes/obs; header %.2f; %s", src, float64(total)/float64(len(obs)),
			float64(header)/float64(len(obs)), strings.Join(lines, ", "))
	}
}
