package observe

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// appendCanonical writes o's canonical form (package canon: the JSON
// line's members that are not null, "", [] or {}, keys in byte order,
// strings as encoding/json writes them with HTML escaping off, bytes that
// are not UTF-8 as U+FFFD) straight from the observation, without the
// line: a store computes it for every observation it stores, so it is
// written by hand. With sensor, the keys ingest adds and batch_sig are
// left out (canon.IngestKeys), and ingest's marks (IngestMarks), and in evidence form 2 the transcript's
// bytes too (transcript_sha256 binds them: canon.SensorDrop).
// TestCanonicalFormIsCanonOfTheLine holds it to canon.Form of the line; a
// key added to the line must be added here, in its place.
func (o *Observation) appendCanonical(sensor bool, fn func([]byte)) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("observation %s: %w", o.ID, err)
	}
	w := canonPool.Get().(*canonWriter)
	defer canonPool.Put(w)
	w.b, w.n = append(w.b[:0], '{'), 0
	ing := !sensor
	if ing {
		w.str("agency", o.Jurisdiction.Agency)
		w.str("agency_rule", o.Jurisdiction.Rule)
		w.uint("asn", uint64(o.Place.ASN))
		w.hex("batch_sig", o.Chain.BatchSig)
	}
	// build: never empty, since "modified" is a fact even when false.
	w.key("build")
	w.b = append(w.b, '{')
	if o.Sensor.Commit != "" {
		w.b = append(w.b, `"commit":`...)
		w.b = appendJSONString(w.b, o.Sensor.Commit)
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, `"modified":`...)
	w.b = strconv.AppendBool(w.b, o.Sensor.Modified)
	if o.Sensor.Version != "" {
		w.b = append(w.b, `,"version":`...)
		w.b = appendJSONString(w.b, o.Sensor.Version)
	}
	w.b = append(w.b, '}')
	w.str("chain", o.Chain.ID)
	w.hex("chain_prev", o.Chain.Prev)
	if o.Chain.Seq > 0 {
		w.uint("chain_seq", o.Chain.Seq)
	}
	if ing {
		w.str("city", o.Place.City)
	}
	w.str("client", o.Client.Name)
	w.str("client_version", o.Client.Version)
	if o.ClockKnown { // an unknown offset is null in the line, and dropped
		w.millis("clock_offset_ms", o.ClockOffset)
	}
	w.str("clock_source", o.ClockSource)
	if o.ClockKnown {
		w.millis("clock_uncertainty_ms", o.ClockUncertainty)
	}
	if ing {
		w.str("country", o.Place.Country)
	}
	if o.Chain.Form != 0 {
		w.uint("evidence_form", uint64(o.Chain.Form))
	}
	if ing {
		w.str("geo_db", o.Place.DB)
		w.geoBuild(o.Place.DBBuild)
	}
	w.hex("guid", o.Client.GUID)
	if ing {
		w.bool("hosting", o.Place.Hosting)
	}
	w.str("id", o.ID)
	w.key("ip")
	w.b = append(w.b, '"')
	w.b = o.Endpoint.IP.AppendTo(w.b)
	w.b = append(w.b, '"')
	w.hex("item", o.Item.Hash.Digest())
	w.str("item_kind", o.Item.Hash.Kind().String())
	if ing {
		w.float("latitude", o.Place.Lat)
	}
	w.uint("listen_port", uint64(o.Client.ListenPort))
	if ing {
		w.float("longitude", o.Place.Lon)
	}
	marks := o.Marks
	if sensor {
		marks = sensorMarks(marks) // ingest's marks are not the sensor's to sign
	}
	w.list("marks", len(marks), func(i int) string { return marks[i] })
	m := o.Item.Matched
	w.list("matched", len(m), func(i int) string { return m[i].List })
	w.list("matched_categories", len(m), func(i int) string { return m[i].Category })
	w.str("method", o.Method)
	w.str("network", o.Network)
	w.hex("node_id", o.Client.NodeID)
	if ing {
		w.str("org", o.Place.Org)
	}
	w.hex("peer_id", o.Client.PeerID)
	if o.Possession.PiecesHave >= 0 {
		w.uint("pieces_have", uint64(o.Possession.PiecesHave))
	}
	if o.Possession.PiecesTotal >= 0 {
		w.uint("pieces_total", uint64(o.Possession.PiecesTotal))
	}
	w.uint("port", uint64(o.Endpoint.Port))
	w.str("possession", o.Possession.Level.String())
	w.str("sensor", o.Sensor.ID)
	if o.Endpoint.Local.IsValid() {
		w.key("sensor_address")
		w.b = append(w.b, '"')
		w.b = o.Endpoint.Local.AppendTo(w.b)
		w.b = append(w.b, '"')
	}
	w.str("sensor_config", o.Sensor.Config)
	w.hex("sensor_key", o.Chain.Key)
	w.str("sensor_version", o.Sensor.Version)
	if ing {
		w.list("subdivisions", len(o.Place.Subdivisions), func(i int) string { return o.Place.Subdivisions[i] })
	}
	w.key("time")
	w.b = append(w.b, '"')
	w.b = appendTime(w.b, o.Time)
	w.b = append(w.b, '"')
	if t := o.Transcript.Bytes; len(t) > 0 && (ing || o.Chain.Form != Form2) {
		w.key("transcript")
		w.b = append(w.b, '"')
		w.b = base64.StdEncoding.AppendEncode(w.b, t)
		w.b = append(w.b, '"')
	}
	w.str("transcript_ref", o.Transcript.Ref)
	w.hex("transcript_sha256", o.Transcript.SHA256)
	w.str("transport", o.Endpoint.Transport)
	w.hex("user_hash", o.Client.UserHash)
	w.str("vantage", o.Sensor.Vantage)
	if ing {
		w.bool("vpn", o.Place.VPN)
	}
	w.b = append(w.b, '}')
	fn(w.b)
	return nil
}

// appendLeaf2 writes the canonical form a form 2 leaf covers: the keys
// ingest adds (canon.IngestKeys), its ingest marks (IngestMarks, as
// ingest_marks, when it has any) and sensor_sha256, the sensor hash in
// hex, in key order.
func (o *Observation) appendLeaf2(sensorHash [32]byte, fn func([]byte)) {
	w := canonPool.Get().(*canonWriter)
	defer canonPool.Put(w)
	w.b, w.n = append(w.b[:0], '{'), 0
	w.str("agency", o.Jurisdiction.Agency)
	w.str("agency_rule", o.Jurisdiction.Rule)
	w.uint("asn", uint64(o.Place.ASN))
	w.hex("batch_sig", o.Chain.BatchSig)
	w.str("city", o.Place.City)
	w.str("country", o.Place.Country)
	w.str("geo_db", o.Place.DB)
	w.geoBuild(o.Place.DBBuild)
	w.bool("hosting", o.Place.Hosting)
	im := ingestMarks(o.Marks)
	w.list(canon.IngestMarksKey, len(im), func(i int) string { return im[i] })
	w.float("latitude", o.Place.Lat)
	w.float("longitude", o.Place.Lon)
	w.str("org", o.Place.Org)
	w.hex("sensor_sha256", sensorHash[:])
	w.list("subdivisions", len(o.Place.Subdivisions), func(i int) string { return o.Place.Subdivisions[i] })
	w.bool("vpn", o.Place.VPN)
	w.b = append(w.b, '}')
	fn(w.b)
}

var canonPool = sync.Pool{New: func() any { return &canonWriter{b: make([]byte, 0, 2048)} }}

type canonWriter struct {
	b []byte
	n int // members written
}

func (w *canonWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *canonWriter) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// geoBuild writes geo_db_build (RFC 3339, as the line), unless t is zero.
func (w *canonWriter) geoBuild(t time.Time) {
	if t.IsZero() {
		return
	}
	w.key("geo_db_build")
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (w *canonWriter) hex(k string, v []byte) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = hex.AppendEncode(w.b, v)
	w.b = append(w.b, '"')
}

func (w *canonWriter) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *canonWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// millis writes d in milliseconds as the line does (Millis).
func (w *canonWriter) millis(k string, d time.Duration) {
	w.key(k)
	w.b = appendMillis(w.b, d)
}

func (w *canonWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

// float writes v as encoding/json does.
func (w *canonWriter) float(k string, v float64) {
	w.key(k)
	f := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		f = 'e'
	}
	w.b = strconv.AppendFloat(w.b, v, f, -1, 64)
	if f == 'e' {
		if n := len(w.b); n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

func (w *canonWriter) list(k string, n int, at func(int) string) {
	if n == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i := range n {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, at(i))
	}
	w.b = append(w.b, ']')
}

// appendJSONString writes s as encoding/json does with HTML escaping off,
// except that a byte that is not UTF-8 is written as the character U+FFFD
// (where the JSON line has the escape \ufffd, which canon reads and writes
// back as the character).
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a second look (each
		// printable ASCII, not '"' or '\\'): most strings are that whole.
		for i+8 <= len(s) && plainASCII8(s[i:i+8]) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
		default:
			i += size
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainASCII8 reports whether each of the 8 bytes of s is printable ASCII
// (0x20–0x7f) other than '"' and '\\': the bytes appendJSONString copies
// as they are. (x-0x01…)&^x&0x80… is not zero exactly when a byte of x is
// zero; (x-0x20…)&^x&0x80… exactly when one is below 0x20.
func plainASCII8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	bad := x | (x-0x20*ones)&^x | (q-ones)&^q | (bs-ones)&^bs
	return bad&highs == 0
}

// appendTime appends t in UTC as AppendFormat(timeLayout) writes it,
// without reading the layout.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	ns := t.Nanosecond()
	var d [30]byte // 2006-01-02T15:04:05.000000000Z
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			d[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, 4, year)
	d[4] = '-'
	put(5, 2, int(month))
	d[7] = '-'
	put(8, 2, day)
	d[10] = 'T'
	put(11, 2, hour)
	d[13] = ':'
	put(14, 2, minute)
	d[16] = ':'
	put(17, 2, sec)
	d[19] = '.'
	put(20, 9, ns)
	d[29] = 'Z'
	return append(b, d[:]...)
}

// sensorMarks is marks without IngestMarks (marks itself when it holds
// none: the usual case costs nothing).
func sensorMarks(marks []string) []string {
	if !slices.ContainsFunc(marks, IsIngestMark) {
		return marks
	}
	return slices.DeleteFunc(slices.Clone(marks), IsIngestMark)
}

// ingestMarks is the IngestMarks in marks, in its order (nil when none).
func ingestMarks(marks []string) []string {
	if !slices.ContainsFunc(marks, IsIngestMark) {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(marks), func(m string) bool { return !IsIngestMark(m) })
}
