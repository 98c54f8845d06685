package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func mustHex(s string) []byte {
	b, err := hexField("test", s)
	if err != nil {
		panic(err)
	}
	return b
}

func hashOf(k hashkind.Kind, hexDigest string) hashkind.Hash {
	return hashkind.MustNew(k, mustHex(hexDigest))
}

// samples are synthetic observations covering every field and the ways a
// field can be empty. Hashes and ids are made-up patterns.
func samples() []Observation {
	at := time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC)
	return []Observation{
		{ // a peer probe that filled everything
			ID: "019ab123-4567-7abc-8def-0123456789ab",
			Sensor: Sensor{ID: "bt-lab-1", Version: "0.1.0", Vantage: "127.0.0.1:6881",
				Commit: "4927d5e0c0ffee0000000000000000000000beef", Modified: true,
				Config: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			Network:          NetBitTorrent,
			Method:           MethodPeerProbe,
			Time:             at,
			ClockKnown:       true,
			ClockOffset:      -1500 * time.Microsecond,
			ClockUncertainty: 250*time.Microsecond + 7,
			ClockSource:      "ntp:127.0.0.1:123",
			Item: Item{
				Hash:    hashOf(hashkind.BTIH, "00112233445566778899aabbccddeeff00112233"),
				Matched: []Match{{List: "national", Category: "1"}, {List: "partner", Category: "A"}},
			},
			Endpoint:   Endpoint{IP: netip.MustParseAddr("127.0.0.2"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:40123")},
			Client:     Client{PeerID: []byte("-TR3000-abcdefghijkl"), Name: "Transmission", Version: "3.00", ListenPort: 51413, NodeID: mustHex("ffeeddccbbaa99887766554433221100ffeeddcc")},
			Possession: Possession{Level: Partial, PiecesHave: 12, PiecesTotal: 40},
			Transcript: Transcript{Bytes: []byte("\x13BitTorrent protocol\x00\x01<>&\"\n"), SHA256: mustHex("5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592")},
			Place: Place{Country: "FR", Subdivisions: []string{"Île-de-France", "Yvelines"}, City: "Versailles",
				Lat: 48.8049, Lon: 2.1204, ASN: 64512, Org: "Lab Telecom", DB: "lab-city.mmdb",
				DBBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			Jurisdiction: Jurisdiction{Agency: "fr-srpj-versailles", Rule: "subdivision FR/78 (france.yaml:12)"},
		},
		{ // a DHT announce: a third party's word, pieces unknown
			ID:          "019ab123-4567-7abc-8def-0123456789ac",
			Sensor:      Sensor{ID: "bt-lab-1"},
			Network:     NetBitTorrent,
			Method:      MethodDHTAnnounce,
			ClockSource: "ntp:127.0.0.1:123 failed: no reply within 2s",
			Time:        at.Add(time.Second),
			Item:        Item{Hash: hashOf(hashkind.BTIH2, "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"), Matched: []Match{{List: "national"}}},
			Endpoint:    Endpoint{IP: netip.MustParseAddr("::1"), Port: 6881, Transport: "udp"},
			Client:      Client{NodeID: mustHex("0000000000000000000000000000000000000001")},
			Possession:  Possession{Level: Announced, PiecesHave: -1, PiecesTotal: -1},
			Marks:       []string{MarkNodeIDUnchecked, MarkSpoofableSource},
		},
		{ // a peer that has none of the pieces: zero is not unknown
			ID:         "019ab123-4567-7abc-8def-0123456789ad",
			Network:    NetBitTorrent,
			Method:     MethodPeerProbe,
			Time:       time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC),
			Item:       Item{Hash: hashOf(hashkind.BTIH, "aabbccddeeff00112233445566778899aabbccdd")},
			Endpoint:   Endpoint{IP: netip.MustParseAddr("::ffff:127.0.0.3"), Port: 1, Transport: "utp"},
			Possession: Possession{Level: Acknowledged, PiecesHave: 0, PiecesTotal: 7},
			Marks:      []string{MarkMalformedBitfield},
			Transcript: Transcript{Ref: "transcripts/2026-11-23/synthetic-001.bin", SHA256: mustHex("00000000000000000000000000000000000000000000000000000000000000ff")},
		},
		{ // eD2K with an eMule user hash, text that needs escaping
			ID:               "019ab123-4567-7abc-8def-0123456789ae",
			Sensor:           Sensor{ID: "ed2k-lab", Version: "0.1.0"},
			ClockKnown:       true, // a measured offset of zero is a fact, not unknown
			ClockSource:      "ntp:[::1]:123",
			ClockUncertainty: 3 * time.Second,
			Network:          NetED2K,
			Method:           "source_exchange",
			Time:             time.Date(2026, 11, 23, 15, 0, 0, 1, time.UTC),
			Item:             Item{Hash: hashOf(hashkind.ED2K, "31d6cfe0d16ae931b73c59d7e0c089c0")},
			Endpoint:         Endpoint{IP: netip.MustParseAddr("127.0.0.4"), Port: 4662, Transport: "tcp"},
			Client:           Client{Name: "aMule \"lab\" <test>", Version: "2.3.3", UserHash: mustHex("0123456789abcdef0123456789abcdef")},
			Possession:       Possession{Level: Complete, PiecesHave: 3, PiecesTotal: 3},
		},
		{ // Gnutella with a servent GUID
			ID:         "019ab123-4567-7abc-8def-0123456789af",
			Network:    NetGnutella,
			Method:     "query_hit",
			Time:       time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC),
			Item:       Item{Hash: hashOf(hashkind.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"), Matched: []Match{{List: "local", Category: "2"}}},
			Endpoint:   Endpoint{IP: netip.MustParseAddr("127.0.0.5"), Port: 6346, Transport: "tcp"},
			Client:     Client{GUID: mustHex("fedcba9876543210fedcba9876543210")},
			Possession: Possession{Level: Verified, PiecesHave: -1, PiecesTotal: -1},
		},
	}
}

func encodeAll(t *testing.T, obs []Observation) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for i := range obs {
		if err := enc.Encode(&obs[i]); err != nil {
			t.Fatalf("Encode(%s): %v", obs[i].ID, err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeAll(t *testing.T, b []byte) []Observation {
	t.Helper()
	dec := NewDecoder(bytes.NewReader(b))
	var out []Observation
	for {
		var o Observation
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		out = append(out, o)
	}
}

func TestEncodeMatchesGolden(t *testing.T) {
	golden := filepath.Join("testdata", "observations.jsonl")
	got := encodeAll(t, samples())
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/observe -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from %s (run with -update if the change is intended):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestDecodeGoldenGivesBackTheObservations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "observations.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got, want := decodeAll(t, b), samples()
	if len(got) != len(want) {
		t.Fatalf("decoded %d observations, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Fatalf("observation %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// The keys of the flat form, in order; every one is on every line.
var wantKeys = []string{
	"id", "time", "sensor", "network", "method", "ip", "port", "transport", "sensor_address",
	"item_kind", "item", "possession", "pieces_have", "pieces_total", "marks", "peer_id",
	"client", "listen_port", "node_id", "matched", "matched_categories",
	"sensor_version", "vantage", "clock_offset_ms", "clock_uncertainty_ms", "clock_source",
	"build", "sensor_config",
	"client_version", "user_hash", "guid", "transcript", "transcript_ref",
	"transcript_sha256", "country", "subdivisions", "city", "latitude", "longitude",
	"asn", "org", "vpn", "hosting", "geo_db", "geo_db_build", "agency", "agency_rule",
	"sensor_key", "chain", "chain_seq", "chain_prev", "batch_sig",
}

func keysInOrder(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestEncodeWritesEveryKeyEvenWhenEmpty(t *testing.T) {
	sparse := Observation{
		Time:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Item:       Item{Hash: hashOf(hashkind.MD5, "00000000000000000000000000000001")},
		Endpoint:   Endpoint{IP: netip.MustParseAddr("127.0.0.1")},
		Possession: Possession{Level: Announced, PiecesHave: -1, PiecesTotal: -1},
	}
	line := encodeAll(t, []Observation{sparse})
	if got, want := strings.Join(keysInOrder(t, line), ","), strings.Join(wantKeys, ","); got != want {
		t.Fatalf("keys:\ngot  %s\nwant %s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"id": "", "sensor": "", "port": 0.0, "peer_id": "", "listen_port": 0.0,
		"node_id": "", "transcript": "", "pieces_have": nil, "pieces_total": nil,
		"clock_offset_ms": nil, "clock_uncertainty_ms": nil, "clock_source": "", "sensor_config": "",
		"time": "2026-01-02T03:04:05.000000000Z",
	} {
		if got := m[key]; got != want {
			t.Fatalf("%s = %#v, want %#v", key, got, want)
		}
	}
	for _, key := range []string{"matched", "matched_categories"} {
		if got, ok := m[key].([]any); !ok || len(got) != 0 {
			t.Fatalf("%s = %#v, want []", key, m[key])
		}
	}
}

func TestEncodeWritesTimeInUTCWithNineDigits(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"whole-second", time.Date(2026, 11, 23, 13, 34, 13, 0, time.UTC), "2026-11-23T13:34:13.000000000Z"},
		{"nanosecond", time.Date(2026, 11, 23, 13, 34, 13, 1, time.UTC), "2026-11-23T13:34:13.000000001Z"},
		{"paris-time", time.Date(2026, 11, 23, 14, 34, 13, 123456789, time.FixedZone("CET", 3600)), "2026-11-23T13:34:13.123456789Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := samples()[0]
			o.Time = tt.at
			var m struct{ Time string }
			if err := json.Unmarshal(encodeAll(t, []Observation{o}), &m); err != nil {
				t.Fatal(err)
			}
			if m.Time != tt.want {
				t.Fatalf("time = %q, want %q", m.Time, tt.want)
			}
		})
	}
}

// line returns the first sample encoded, with key set to raw JSON (or
// removed when raw is empty).
func line(t *testing.T, key, raw string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(encodeAll(t, samples()[:1]), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodePiecesNullOrMissingIsUnknown(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"null", "null", -1},
		{"missing", "", -1},
		{"zero", "0", 0},
		{"count", "17", 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := line(t, "pieces_have", tt.raw) + "\n"
			got := decodeAll(t, []byte(in))
			if len(got) != 1 {
				t.Fatalf("decoded %d observations, want 1", len(got))
			}
			if got[0].Possession.PiecesHave != tt.want {
				t.Fatalf("PiecesHave = %d, want %d", got[0].Possession.PiecesHave, tt.want)
			}
		})
	}
}

func TestDecodeRejectsBadFieldsNamingTheLine(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		raw     string
		invalid bool // wraps ErrInvalid (else a JSON error)
		mention string
	}{
		{"bad-time", "time", `"23/11/2026 13:34"`, true, "time"},
		{"missing-time", "time", "", true, "time"},
		{"bad-ip", "ip", `"127.0.0.256"`, true, "ip"},
		{"hostname-ip", "ip", `"localhost"`, true, "ip"},
		{"missing-ip", "ip", "", true, "ip"},
		{"item-not-hex", "item", `"zz112233445566778899aabbccddeeff00112233"`, true, "item"},
		{"item-wrong-length", "item", `"00112233445566778899aabbccddeeff"`, true, "item"},
		{"item-missing", "item", "", true, "item"},
		{"unknown-kind", "item_kind", `"crc32"`, true, "item_kind"},
		{"peer-id-not-hex", "peer_id", `"-TR3000-"`, true, "peer_id"},
		{"node-id-odd-hex", "node_id", `"abc"`, true, "node_id"},
		{"user-hash-not-hex", "user_hash", `"xyz"`, true, "user_hash"},
		{"guid-not-hex", "guid", `"g"`, true, "guid"},
		{"sha256-not-hex", "transcript_sha256", `"q"`, true, "transcript_sha256"},
		{"unknown-level", "possession", `"seeding"`, true, "possession"},
		{"unknown-level-literal", "possession", `"unknown"`, true, "possession"},
		{"negative-pieces", "pieces_total", `-2`, true, "pieces_total"},
		// PostgreSQL's pieces columns are 32-bit: a count past them
		// failed the store's whole batch, and ingest with it, at every
		// redelivery (h-rev9).
		{"pieces-have-past-int32", "pieces_have", `2147483648`, true, "pieces_have"},
		{"pieces-total-past-int32", "pieces_total", `4294967296`, true, "pieces_total"},
		{"categories-mismatch", "matched_categories", `["1"]`, true, "matched_categories"},
		{"bad-base64", "transcript", `"not base64!"`, true, "transcript"},
		{"sensor-address-no-port", "sensor_address", `"127.0.0.1"`, true, "sensor_address"},
		{"mark-with-space", "marks", `["third party"]`, true, "mark"},
		{"mark-upper-case", "marks", `["THIRD_PARTY"]`, true, "mark"},
		{"mark-empty", "marks", `[""]`, true, "mark"},
		{"clock-offset-without-uncertainty", "clock_uncertainty_ms", `null`, true, "clock_uncertainty_ms"},
		{"clock-uncertainty-without-offset", "clock_offset_ms", `null`, true, "clock_offset_ms"},
		{"clock-uncertainty-negative", "clock_uncertainty_ms", `-1`, true, "clock_uncertainty_ms"},
		{"clock-offset-huge", "clock_offset_ms", `1e300`, true, "clock_offset_ms"},
		{"build-version-differs", "build", `{"version":"9.9.9","commit":"","modified":false}`, true, "sensor_version"},
		{"sensor-config-not-sha256", "sensor_config", `"abc"`, true, "sensor config"},
		{"port-out-of-range", "port", `70000`, false, "port"},
		{"port-not-number", "port", `"80"`, false, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := line(t, "", "")
			in := good + "\n\n" + line(t, tt.key, tt.raw) + "\n" + good + "\n"
			dec := NewDecoder(strings.NewReader(in))
			var o Observation
			if err := dec.Decode(&o); err != nil {
				t.Fatalf("line 1: %v", err)
			}
			err := dec.Decode(&o)
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Decode error = %v, want a *LineError", err)
			}
			if le.Line != 3 {
				t.Fatalf("error on line %d, want 3: %v", le.Line, err)
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Fatalf("errors.Is(%v, ErrInvalid) = %v, want %v", err, got, tt.invalid)
			}
			if !strings.Contains(err.Error(), tt.mention) || !strings.HasPrefix(err.Error(), "line 3: ") {
				t.Fatalf("error %q does not start with the line or name %q", err, tt.mention)
			}
			// A bad line spoils only itself.
			if err := dec.Decode(&o); err != nil {
				t.Fatalf("line 4 after a bad line 3: %v", err)
			}
		})
	}
}

func TestDecodeRejectsLongLine(t *testing.T) {
	good := line(t, "", "")
	long := line(t, "transcript_ref", `"`+strings.Repeat("x", 3000)+`"`)
	dec := NewDecoder(strings.NewReader(good + "\n" + long + "\n" + good + "\n"))
	dec.SetMaxLineBytes(len(good) + 100)
	var o Observation
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("line 1 (%d bytes): %v", len(good), err)
	}
	err := dec.Decode(&o)
	var le *LineError
	if !errors.Is(err, ErrLineTooLong) || !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("Decode of a %d-byte line = %v, want ErrLineTooLong on line 2", len(long), err)
	}
	if err2 := dec.Decode(&o); err2 != err {
		t.Fatalf("after a long line Decode = %v, want the same error again", err2)
	}
}

func TestDecodeAcceptsCRLFAndBlankLinesAndNoFinalNewline(t *testing.T) {
	good := line(t, "", "")
	in := "\r\n" + good + "\r\n   \n" + good
	got := decodeAll(t, []byte(in))
	if len(got) != 2 {
		t.Fatalf("decoded %d observations, want 2", len(got))
	}
	want := samples()[0]
	for i := range got {
		if !got[i].Equal(&want) {
			t.Fatalf("observation %d differs:\ngot  %+v\nwant %+v", i, got[i], want)
		}
	}
}

func TestEncodeRefusesWhatCannotBeReadBack(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *Observation)
		want error
	}{
		{"unknown-level", func(o *Observation) { o.Possession.Level = LevelUnknown }, ErrInvalid},
		{"level-out-of-range", func(o *Observation) { o.Possession.Level = 9 }, ErrInvalid},
		{"no-item", func(o *Observation) { o.Item.Hash = hashkind.Hash{} }, ErrInvalid},
		{"no-ip", func(o *Observation) { o.Endpoint.IP = netip.Addr{} }, ErrInvalid},
		{"no-time", func(o *Observation) { o.Time = time.Time{} }, ErrInvalid},
		{"year-3000", func(o *Observation) { o.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrInvalid},
		{"too-long", func(o *Observation) { o.Transcript.Bytes = make([]byte, DefaultMaxLineBytes) }, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := samples()[0]
			tt.edit(&o)
			var buf bytes.Buffer
			enc := NewEncoder(&buf)
			if err := enc.Encode(&o); !errors.Is(err, tt.want) {
				t.Fatalf("Encode error = %v, want %v", err, tt.want)
			}
			if err := enc.Flush(); err != nil || buf.Len() != 0 {
				t.Fatalf("after a refused Encode: %d bytes written, flush error %v", buf.Len(), err)
			}
		})
	}
}

func TestEncodeDecodeRoundTripNormalises(t *testing.T) {
	// Upper-case hex, a kind alias and a time zone come back
	// in the one form the encoder writes.
	in := line(t, "item", `"00112233445566778899AABBCCDDEEFF00112233"`)
	in = strings.Replace(in, `"item_kind":"btih"`, `"item_kind":"infohash"`, 1)
	in = strings.Replace(in, `"time":"2026-11-23T13:34:13.123456789Z"`, `"time":"2026-11-23T14:34:13.123456789+01:00"`, 1)
	got := decodeAll(t, []byte(in))
	want := samples()[0]
	if len(got) != 1 || !got[0].Equal(&want) {
		t.Fatalf("decoded %+v\nwant %+v", got, want)
	}
	again := encodeAll(t, got)
	if want := encodeAll(t, []Observation{want}); !bytes.Equal(again, want) {
		t.Fatalf("re-encoded:\n%s\nwant:\n%s", again, want)
	}
}

func TestClockOffsetIsExactMillisecondsOrNull(t *testing.T) {
	tests := []struct {
		name        string
		known       bool
		offset, unc time.Duration
		wantOffset  string
		wantUnc     string
	}{
		{"unknown", false, 0, 0, "null", "null"},
		{"zero-measured", true, 0, time.Millisecond, "0", "1"},
		{"negative-fraction", true, -1500 * time.Microsecond, 250 * time.Microsecond, "-1.5", "0.25"},
		{"nanosecond", true, 1, 3, "0.000001", "0.000003"},
		{"big", true, 3*time.Hour + 7, 16 * time.Second, "10800000.000007", "16000"},
		{"most-negative", true, time.Duration(math.MinInt64), 0, "-9223372036854.775808", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := samples()[0]
			o.ClockKnown, o.ClockOffset, o.ClockUncertainty = tt.known, tt.offset, tt.unc
			b := encodeAll(t, []Observation{o})
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if got := string(m["clock_offset_ms"]); got != tt.wantOffset {
				t.Fatalf("clock_offset_ms = %s, want %s", got, tt.wantOffset)
			}
			if got := string(m["clock_uncertainty_ms"]); got != tt.wantUnc {
				t.Fatalf("clock_uncertainty_ms = %s, want %s", got, tt.wantUnc)
			}
			got := decodeAll(t, b)
			if len(got) != 1 || !got[0].Equal(&o) {
				t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, o)
			}
		})
	}
}

func TestDecodeRoundsMillisecondsToTheNanosecond(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		"1.0000004": 1000000, "1.0000005": 1000001, "-1.0000005": -1000001, "2e-3": 2000, "-0": 0,
	} {
		got := decodeAll(t, []byte(line(t, "clock_offset_ms", raw)+"\n"))
		if len(got) != 1 || !got[0].ClockKnown || got[0].ClockOffset != want {
			t.Fatalf("clock_offset_ms %s read as %+v, want %v", raw, got, want)
		}
	}
}

// A file written before the clock was measured (clock_offset_ns, no
// clock_offset_ms, no build) still loads, every offset unknown: the old
// clock_offset_ns is never taken for a measurement.
func TestDecodeLineBeforeClockFieldsReadsUnknown(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "observations-before-clock.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"clock_offset_ns":-1500000`)) {
		t.Fatal("the old file should hold a clock_offset_ns")
	}
	got := decodeAll(t, b)
	if len(got) != len(samples()) {
		t.Fatalf("decoded %d observations, want %d", len(got), len(samples()))
	}
	for i, o := range got {
		if o.ClockKnown || o.ClockOffset != 0 || o.ClockUncertainty != 0 {
			t.Fatalf("observation %d: clock known=%v %v ± %v, want unknown", i, o.ClockKnown, o.ClockOffset, o.ClockUncertainty)
		}
		if o.Sensor.Commit != "" || o.Sensor.Config != "" || o.Sensor.Version != samples()[i].Sensor.Version {
			t.Fatalf("observation %d: sensor %+v", i, o.Sensor)
		}
	}
}

func TestEncodeRefusesAnUnknownOffsetThatIsNotZero(t *testing.T) {
	o := samples()[0]
	o.ClockKnown = false
	var buf bytes.Buffer
	if err := NewEncoder(&buf).Encode(&o); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode of an unknown offset of %v = %v, want ErrInvalid", o.ClockOffset, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		dec := NewDecoder(bytes.NewReader(b))
		dec.SetMaxLineBytes(64 << 10)
		for {
			var o Observation
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) || errors.Is(err, ErrLineTooLong) {
				return
			}
			if err != nil {
				continue // a bad line: go on to the next
			}
			var buf bytes.Buffer
			enc := NewEncoder(&buf)
			if err := enc.Encode(&o); err != nil {
				t.Fatalf("Encode of a decoded observation: %v", err)
			}
			if err := enc.Flush(); err != nil {
				t.Fatal(err)
			}
			var back Observation
			if err := NewDecoder(&buf).Decode(&back); err != nil {
				t.Fatalf("Decode of %q: %v", buf.Bytes(), err)
			}
			if !back.Equal(&o) {
				t.Fatalf("round trip changed the observation:\nfirst  %+v\nsecond %+v", o, back)
			}
		}
	})
}

// FuzzDecodeLine: DecodeLine, which reads bus messages, gives what a
// Decoder with the default limit gives for the first line of the same
// bytes: the same observation, or an error where it errs.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte("{}\n"))
	f.Add([]byte("\r\n"))
	f.Add([]byte(`{"id":"x"}` + "\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want Observation
		gerr := DecodeLine(b, &got)
		werr := NewDecoder(bytes.NewReader(b)).Decode(&want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("DecodeLine(%q) = %v, the Decoder %v", b, gerr, werr)
		}
		if gerr == nil && !got.Equal(&want) {
			t.Fatalf("DecodeLine(%q) = %+v, the Decoder %+v", b, got, want)
		}
	})
}
