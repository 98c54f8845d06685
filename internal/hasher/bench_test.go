//go:build unix

package hasher

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// benchBytes is the data size of BenchmarkReferenceHasherVsHashdeep:
// VIGIL_BENCH_HASH_BYTES, default 2 GiB.
func benchBytes(b *testing.B) int64 {
	if s := os.Getenv("VIGIL_BENCH_HASH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("VIGIL_BENCH_HASH_BYTES=%q: want a positive byte count", s)
		}
		return n
	}
	return 2 << 30
}

// benchFiles writes total bytes of synthetic data as 16 files (fewer when
// total is small), in parallel, and returns the folder.
func benchFiles(b *testing.B, total int64) string {
	b.Helper()
	dir := b.TempDir()
	nfiles := int64(16)
	if total < nfiles<<20 {
		nfiles = 1
	}
	per := total / nfiles
	var wg sync.WaitGroup
	errs := make(chan error, nfiles)
	for i := range nfiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := per
			if i == nfiles-1 {
				n = total - per*(nfiles-1)
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("synthetic-%03d.bin", i)))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			// 8 MiB of seeded random bytes per file, repeated with a
			// changing counter: fast to make, and no digest can shortcut it.
			blk := synthetic(uint64(i), 8<<20)
			for off, k := int64(0), uint64(0); off < n; off, k = off+int64(len(blk)), k+1 {
				blk[0], blk[1], blk[2], blk[3] = byte(k), byte(k>>8), byte(k>>16), byte(k>>24)
				m := min(int64(len(blk)), n-off)
				if _, err := f.Write(blk[:m]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkReferenceHasherVsHashdeep times Walk computing md5, sha1,
// sha256, ed2k, tth and btv2 against `hashdeep -c md5,sha1,sha256 -r DIR`
// on the same files in the same run (page cache warm for both). ratio is
// Walk's time over hashdeep's: below 1 means Vigil does more in less time.
// The CPU seconds each used per run are reported too.
//
//	VIGIL_BENCH_HASH_BYTES=2147483648 go test ./internal/hasher -run '^$' -bench ReferenceHasherVsHashdeep -benchtime 3x
func BenchmarkReferenceHasherVsHashdeep(b *testing.B) {
	hashdeep, err := exec.LookPath("hashdeep")
	if err != nil {
		testenv.Missing(b, "HASHTOOLS", "hashdeep not found (Debian package hashdeep)")
	}
	total := benchBytes(b)
	dir := benchFiles(b, total)
	cfg := DefaultConfig()
	b.ResetTimer()
	var ours, theirs time.Duration
	var oursCPU, theirsCPU time.Duration
	for i := 0; b.Loop(); i++ {
		runOurs := func() {
			start, cpu0 := time.Now(), selfCPU()
			files := 0
			err := Walk(context.Background(), []string{dir}, cfg, func(r Result) error {
				if r.Err != nil {
					return r.Err
				}
				files++
				return nil
			})
			if err != nil || files == 0 {
				b.Fatalf("Walk: %v (%d files)", err, files)
			}
			ours += time.Since(start)
			oursCPU += selfCPU() - cpu0
		}
		runTheirs := func() {
			start := time.Now()
			cmd := exec.Command(hashdeep, "-c", "md5,sha1,sha256", "-r", dir)
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatalf("hashdeep: %v", err)
			}
			theirs += time.Since(start)
			theirsCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		// Alternate who goes first so neither always meets a warmer machine.
		if i%2 == 0 {
			runOurs()
			runTheirs()
		} else {
			runTheirs()
			runOurs()
		}
	}
	mb := float64(total) * float64(b.N) / 1e6
	b.ReportMetric(mb/ours.Seconds(), "vigil-MB/s")
	b.ReportMetric(mb/theirs.Seconds(), "hashdeep-MB/s")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
	// CPU time is steadier than wall time on a machine shared with other
	// work: it says how much of the cores each one needed.
	b.ReportMetric(oursCPU.Seconds()/float64(b.N), "vigil-cpu-s")
	b.ReportMetric(theirsCPU.Seconds()/float64(b.N), "hashdeep-cpu-s")
	b.ReportMetric(0, "ns/op")
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWalkBufferSize measures Walk alone at a few read sizes.
func BenchmarkWalkBufferSize(b *testing.B) {
	total := min(benchBytes(b), 256<<20)
	dir := benchFiles(b, total)
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.BufferSize = size
			b.SetBytes(total)
			for b.Loop() {
				if err := Walk(context.Background(), []string{dir}, cfg, func(Result) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
