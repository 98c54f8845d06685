package watchlist

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// synthList is a list of n synthetic random sha1 digests, one a line, as
// text or, with a header and a category column, as CSV.
func synthList(n int, asCSV bool) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	if asCSV {
		b.WriteString("sha1,category\n")
	}
	var d [20]byte
	for range n {
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		b.WriteString(hex.EncodeToString(d[:]))
		if asCSV {
			b.WriteString(",1")
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkParseText1M parses a text list of a million sha1 digests.
// The baseline is the least a reader can do: scan lines, decode hex into a
// fixed array, and drop duplicates with a map; Parse does that plus
// validation, positions, categories and the Entry values.
func BenchmarkParseText1M(b *testing.B) {
	data := synthList(1_000_000, false)
	b.Run("baseline-scanner-hex", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			seen := make(map[[20]byte]int32)
			sc := bufio.NewScanner(bytes.NewReader(data))
			var d [20]byte
			for sc.Scan() {
				if _, err := hex.Decode(d[:], sc.Bytes()); err != nil {
					b.Fatal(err)
				}
				if _, ok := seen[d]; !ok {
					seen[d] = int32(len(seen))
				}
			}
			if len(seen) != 1_000_000 {
				b.Fatal(len(seen))
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			res, err := Parse(bytes.NewReader(data), ParseOptions{Category: "1"})
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Entries) != 1_000_000 {
				b.Fatal(len(res.Entries))
			}
		}
	})
}

// BenchmarkParseCSV1M parses a CSV list of a million rows; the baseline is
// encoding/csv reading the same rows with ReuseRecord and decoding each
// hash with hashkind.ParseBytes.
func BenchmarkParseCSV1M(b *testing.B) {
	data := synthList(1_000_000, true)
	b.Run("baseline-encoding-csv", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			cr := csv.NewReader(bytes.NewReader(data))
			cr.ReuseRecord = true
			n := 0
			for {
				rec, err := cr.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if n > 0 {
					if _, err := hashkind.ParseBytes([]byte(rec[0]), hashkind.SHA1); err != nil {
						b.Fatal(err)
					}
				}
				n++
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			res, err := Parse(bytes.NewReader(data), ParseOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Entries) != 1_000_000 {
				b.Fatal(len(res.Entries))
			}
		}
	})
}
