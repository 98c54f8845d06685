package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// ispObs is one observation of 192.0.2.44 (a documentation address).
func ispObs(method string, port uint16, at time.Time) observe.Observation {
	b := make([]byte, 20)
	b[0], b[19] = 0xAB, 0x01
	o := observe.Observation{ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
		Method: method, Time: at, ClockSource: "none",
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.44"), Port: port, Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Place:      observe.Place{Country: "FR", ASN: 64496, Org: "Example Telecom"}}
	if method == observe.MethodPeerProbe {
		o.Endpoint.Transport = "utp"
		o.Endpoint.Local = netip.MustParseAddrPort("198.51.100.200:40123")
		o.Possession.Level = observe.Complete
		sum := sha256.Sum256([]byte("transcript"))
		o.Transcript.SHA256 = sum[:]
	} else {
		o.Mark(observe.MarkThirdParty)
	}
	return o
}

// A target seen through a tracker's list, a PEX message and one probe:
// `vigil isp-request` gives exactly one row, the probe's, with the port of
// that connection and the sensor's own address; the claims go to the
// annex. A target only third parties spoke of gives no row at all.
func TestISPRequestRowsAreFirstHandOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	obs := []observe.Observation{
		ispObs(observe.MethodTracker, 51413, at),
		ispObs(observe.MethodPEX, 51413, at.Add(time.Hour)),
		ispObs(observe.MethodPeerProbe, 51413, at.Add(2*time.Hour)),
	}
	// Another target, at another address, only ever named by third parties.
	other := ispObs(observe.MethodTracker, 6881, at)
	other.Endpoint.IP = netip.MustParseAddr("192.0.2.45")
	other2 := ispObs(observe.MethodPEX, 6881, at.Add(time.Hour))
	other2.Endpoint.IP = other.Endpoint.IP
	// A third, at 192.0.2.46: a DHT announce sent from UDP port 40001
	// declaring it listens on 51413, and a probe at 51413 two minutes
	// later (within the announce_listen_port window).
	ann := ispObs(observe.MethodDHTAnnounce, 40001, at)
	ann.Endpoint.IP, ann.Endpoint.Transport, ann.Client.ListenPort, ann.Marks = netip.MustParseAddr("192.0.2.46"), "udp", 51413, nil
	ann.Endpoint.Local = netip.MustParseAddrPort("198.51.100.200:6881")
	sum := sha256.Sum256([]byte("announce"))
	ann.Transcript.SHA256 = sum[:]
	probe3 := ispObs(observe.MethodPeerProbe, 51413, at.Add(2*time.Minute))
	probe3.Endpoint.IP = ann.Endpoint.IP
	if err := st.InsertObservations(context.Background(), append(obs, other, other2, ann, probe3)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-1", "--format", "json", "--case", "2026/0001")
	if code != exitOK {
		t.Fatalf("isp-request: exit %d %s", code, errOut)
	}
	var req struct {
		Kept   int
		Groups []struct{ Rows []map[string]any }
		Annex  []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if req.Kept != 1 || len(req.Groups) != 1 || len(req.Groups[0].Rows) != 1 {
		t.Fatalf("kept %d in %d groups, want exactly the probe:\n%s", req.Kept, len(req.Groups), out)
	}
	row := req.Groups[0].Rows[0]
	for k, want := range map[string]any{"method": "peer_probe", "source_port": 51413.0, "transport": "utp",
		"sensor_address": "198.51.100.200:40123", "observation_id": obs[2].ID,
		"transcript_sha256": hexSum("transcript")} {
		if row[k] != want {
			t.Errorf("row %s = %v, want %v", k, row[k], want)
		}
	}
	if len(req.Annex) != 2 {
		t.Fatalf("annex %v, want the tracker's and the PEX peer's claims", req.Annex)
	}
	for _, a := range req.Annex {
		if a["reason"] != "third_party" {
			t.Errorf("annex entry %v: want reason third_party", a)
		}
	}
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-1", "--format", "csv", "--case", "2026/0001")
	if code != exitOK {
		t.Fatalf("isp-request csv: exit %d %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("csv: %v, %d records, want a header and one row:\n%s", err, len(recs), out)
	}
	for _, c := range []string{"method", "observation_id", "transcript_sha256", "source_port", "sensor_address"} {
		if !strings.Contains(","+strings.Join(recs[0], ",")+",", ","+c+",") {
			t.Errorf("csv header lacks %s: %v", c, recs[0])
		}
	}

	// The third-party-only target: no row.
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-2", "--format", "csv", "--case", "2026/0001")
	if code != exitOK {
		t.Fatalf("isp-request T-2: exit %d %s", code, errOut)
	}
	if recs, _ := csv.NewReader(strings.NewReader(out)).ReadAll(); len(recs) != 1 {
		t.Fatalf("a target only third parties named gave %d rows:\n%s", len(recs)-1, out)
	}

	// The announce is its own endpoint (its UDP source), joined to the
	// probe at its declared listening port by an announce_listen_port
	// link (one target), and its row carries the UDP source port it was
	// sent from, not the port it declared.
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-3", "--format", "json", "--case", "2026/0001")
	if code != exitOK {
		t.Fatalf("isp-request T-3: exit %d %s", code, errOut)
	}
	req.Groups, req.Annex = nil, nil
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatal(err)
	}
	if req.Kept != 2 {
		t.Fatalf("T-3: %d rows, want the announce and the probe:\n%s", req.Kept, out)
	}
	if !strings.Contains(out, `"announce_listen_port"`) {
		t.Fatalf("T-3: the announce_listen_port link is not in the annex:\n%s", out)
	}
	r0 := req.Groups[0].Rows[0]
	if r0["method"] != "dht_announce" || r0["source_port"] != 40001.0 || r0["transport"] != "udp" || r0["direction"] != "peer_to_sensor" ||
		r0["sensor_address"] != "198.51.100.200:6881" {
		t.Fatalf("announce row %v: want its UDP source port 40001, udp, peer_to_sensor and the sensor's end", r0)
	}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 64)
	for _, c := range sum {
		b = append(b, digits[c>>4], digits[c&15])
	}
	return string(b)
}

// The letter names the requesting service by its name and address from
// the rules file (--agency, --rules), not by its id; an agency the rules
// do not declare is refused. T-1, an id of the old form, still resolves.
func TestISPRequestNamesTheRequester(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	if err := st.InsertObservations(context.Background(), []observe.Observation{
		ispObs(observe.MethodPeerProbe, 51413, at), ispObs(observe.MethodPeerProbe, 51413, at.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-1", "--format", "json", "--case", "2026/0042",
		"--agency", "fr-pp-dpj", "--rules", "example:france")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, errOut)
	}
	var req struct {
		Target struct {
			ID        string `json:"id"`
			Agency    string `json:"agency"`
			Requester struct{ ID, Name, Address, Country string }
		} `json:"target"`
	}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatal(err)
	}
	r := req.Target.Requester
	if req.Target.ID != "T-000001-95" || r.ID != "fr-pp-dpj" || !strings.HasPrefix(r.Name, "Préfecture de police") ||
		!strings.Contains(r.Address, "36 rue du Bastion") || r.Country != "FR" || req.Target.Agency != r.Name {
		t.Fatalf("requester %+v of target %s (agency %q): want the DPJ's name and address", r, req.Target.ID, req.Target.Agency)
	}
	if code, _, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-000001-95", "--format", "json", "--case", "2026/0042",
		"--agency", "fr-nowhere", "--rules", "example:france"); code != exitUsage || !strings.Contains(errOut, "fr-nowhere") {
		t.Fatalf("unknown --agency: exit %d %s", code, errOut)
	}
	// Without --rules the store's agencies name the requester, address
	// included ('vigil agency import' keeps it: migration 0011), as the
	// web's letters do.
	if code, _, errOut := vigilRun(t, nil, "", "--db", db, "agency", "import", "--rules", "example:france"); code != exitOK {
		t.Fatalf("agency import: exit %d %s", code, errOut)
	}
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-000001-95", "--format", "json", "--case", "2026/0042",
		"--agency", "fr-pp-dpj")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, errOut)
	}
	req.Target.Requester = struct{ ID, Name, Address, Country string }{}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatal(err)
	}
	if r := req.Target.Requester; !strings.Contains(r.Address, "36 rue du Bastion") || !strings.HasPrefix(r.Name, "Préfecture de police") {
		t.Fatalf("requester from the store %+v: want the DPJ's name and address", r)
	}
}
