package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/lab/ntpserver"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestSensorED2KStoresObservationsOfTheWatchList: the watch-list's ed2k
// links are watched, the lab's server and Kad are asked, the observations
// go through the pipeline into the store (placed at ingest, as 'vigil
// sensor bittorrent' stores them), the summary counts them by method and
// level, and the exported lines carry the probed client's user hash; a
// file not on the list is never named; the analysis made targets of them.
func TestSensorED2KStoresObservationsOfTheWatchList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 21, Server: true, KadNodes: 12, Files: 2, Clients: 2,
		Base: netip.MustParseAddr("127.99.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f := edk.Files[0] // only file 0 is watched
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	srv := edk.Server.Addr().String()
	var boot []string
	for _, a := range edk.Bootstrap(2) {
		boot = append(boot, a.String())
	}
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	// The clock is measured against a lab NTP server 1.5 s behind.
	ntp, err := ntpserver.Start(ntpserver.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Shift: -1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ntp.Close()
	code, summary, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", srv, "--kad-bootstrap", strings.Join(boot, ","),
		"--listen", "127.99.255.1", "--lab", "--duration", "4s", "--geo-db", geoFiles.City, "--asn-db", geoFiles.ASN,
		"--ntp", ntp.Addr().String())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ed2k_server_sources", "kad_sources", "peer_probe", "observations stored", "server requests"} {
		if !strings.Contains(summary, want) {
			t.Fatalf("summary lacks %q:\n%s", want, summary)
		}
	}
	code, out, errOut := vigilRun(t, env, "", "observations", "export", "--case", "T-1", "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	dec := observe.NewDecoder(strings.NewReader(out))
	want := map[string]bool{}
	for _, tr := range edk.Truth() {
		if tr.File == f.Hash {
			want[hex.EncodeToString(tr.UserHash[:])] = true
		}
	}
	methods := map[string]int{}
	var o observe.Observation
	for dec.Decode(&o) == nil {
		if [16]byte(o.Item.Hash.Bytes()) != f.Hash {
			t.Fatalf("an unwatched file left the sensor: %s", o.Item.Hash)
		}
		methods[o.Network+" "+o.Method]++
		if !o.ClockKnown || o.ClockOffset < 1400*time.Millisecond || o.ClockOffset > 1600*time.Millisecond ||
			o.ClockSource != "ntp:"+ntp.Addr().String()+" (single source, not cross-checked: uncertainty doubled)" {
			t.Fatalf("observation %s: clock known=%v %v ± %v from %q, want about +1.5s from ntp:%s", o.ID, o.ClockKnown,
				o.ClockOffset, o.ClockUncertainty, o.ClockSource, ntp.Addr())
		}
		if o.Sensor.Version != version || len(o.Sensor.Config) != 64 {
			t.Fatalf("observation %s: sensor %+v, want version %s and a configuration hash", o.ID, o.Sensor, version)
		}
		if o.Place.ASN == 0 {
			t.Fatalf("observation %s stored without a place: not enriched at ingest", o.ID)
		}
		if o.Method == observe.MethodPeerProbe {
			delete(want, hex.EncodeToString(o.Client.UserHash))
		}
	}
	if len(want) != 0 || methods["ed2k ed2k_server_sources"] == 0 || methods["kad kad_sources"] == 0 {
		t.Fatalf("methods %v; user hashes not seen %v\nsummary: %s", methods, want, summary)
	}
	if !strings.Contains(out, `"clock_offset_ms":1`) || !strings.Contains(out, `"build":{"version":"`+version+`"`) {
		t.Fatalf("exported lines lack clock_offset_ms or build:\n%s", out)
	}
	if !strings.Contains(out, `"user_hash":"`) {
		t.Fatalf("exported lines lack user_hash:\n%s", out)
	}
	// --no-refresh: only what the sensor's own analysis scored as ingest
	// committed.
	code, out, errOut = vigilRun(t, env, "", "targets", "--no-refresh", "--json")
	if code != exitOK || !strings.Contains(out, `"id": "T-`) && !strings.Contains(out, `"id":"T-`) {
		t.Fatalf("targets: exit %d, no target scored as observations were stored:\n%s%s", code, out, errOut)
	}
}

// TestSensorED2KKeywordsMakeSuspectLeads: with --keywords, the lab
// server's files whose names hold a keyword's words and that no list
// names become suspect leads ('vigil leads list'); the watched one does
// not; neither the keyword nor the unwatched file reaches the log or an
// observation. --keywords refuses --bus, and a file's bad line is named
// by its number, never its text.
func TestSensorED2KKeywordsMakeSuspectLeads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 22, Server: true, Files: 2, Clients: 2,
		Names: []string{"lab-keyword-alpha 01.bin", "lab-keyword-alpha 02.bin"},
		Base:  netip.MustParseAddr("127.117.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f, other := edk.Files[0], edk.Files[1]
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	kw := writeFile(t, dir, "keywords.txt", "# the analyst's keywords\n\nlab-keyword-alpha\n")
	srv := edk.Server.Addr().String()
	if code, _, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", srv, "--keywords", kw, "--bus", "nats://127.0.0.1:1"); code != exitUsage || !strings.Contains(errOut, "--bus") {
		t.Fatalf("--keywords with --bus: exit %d: %s", code, errOut)
	}
	bad := writeFile(t, dir, "bad.txt", "lab-keyword-alpha\nab-cd\n")
	if code, _, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", srv, "--keywords", bad); code == exitOK || !strings.Contains(errOut, "line 2") || strings.Contains(errOut, "ab-cd") {
		t.Fatalf("a keyword without a word: exit %d: %s", code, errOut)
	}
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	code, summary, errOut := vigilRun(t, env, "", "--log-level", "debug", "sensor", "ed2k", "--server", srv, "--listen", "127.117.255.1",
		"--lab", "--duration", "3s", "--keywords", kw, "--geo-db", geoFiles.City, "--asn-db", geoFiles.ASN)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(summary, "keyword searches") || !strings.Contains(summary, "1 results recorded in suspect leads") {
		t.Fatalf("summary:\n%s", summary)
	}
	for _, secret := range []string{other.Name, hex.EncodeToString(other.Hash[:]), "keyword-alpha"} {
		if strings.Contains(errOut, secret) {
			t.Fatalf("the log names %q:\n%s", secret, errOut)
		}
	}
	code, out, errOut := vigilRun(t, env, "", "leads", "list", "--json")
	if code != exitOK {
		t.Fatalf("leads list: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, hex.EncodeToString(other.Hash[:])) || strings.Contains(out, hex.EncodeToString(f.Hash[:])) ||
		!strings.Contains(out, `"keywords": [`) || !strings.Contains(out, `"endpoints": 0`) {
		t.Fatalf("leads:\n%s", out)
	}
	if code, out, _ = vigilRun(t, env, "", "leads", "list"); code != exitOK || !strings.Contains(out, "keyword search (ed2k)") {
		t.Fatalf("leads list:\n%s", out)
	}
	code, out, errOut = vigilRun(t, env, "", "observations", "export", "--case", "T-1", "--format", "jsonl")
	if code != exitOK || strings.Contains(out, hex.EncodeToString(other.Hash[:])) {
		t.Fatalf("export: exit %d: %s%s", code, out, errOut)
	}
}

// TestSensorED2KFailingStartReleasesWithoutPanic: a pipeline that cannot
// start (here: --duration ends before the analysis's catch-up) is an
// error, not a panic: the release of what was opened once called a nil
// function.
func TestSensorED2KFailingStartReleasesWithoutPanic(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	list := writeFile(t, dir, "lab.ed2k", "ed2k://|file|a.bin|1000|0123456789abcdef0123456789abcdef|/\n")
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", "127.0.0.1:1", "--duration", "1ns", "--geo-db", geoFiles.City)
	if code == exitOK {
		t.Fatalf("a sensor whose pipeline could not start exited 0: %s", errOut)
	}
}

// TestSensorED2KSummaryCountsNoBenignFileAsALead: a file a keyword search
// returns that is on a known-benign list is no lead; the summary must not
// count it as one (it said "1 suspect leads" while 'vigil leads list' had
// none).
func TestSensorED2KSummaryCountsNoBenignFileAsALead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 23, Server: true, Files: 2, Clients: 2,
		Names: []string{"lab-keyword-alpha 01.bin", "lab-keyword-alpha 02.bin"},
		Base:  netip.MustParseAddr("127.118.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f, other := edk.Files[0], edk.Files[1]
	line := func(x *labed2k.File) string {
		return fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", x.Name, x.Size, hex.EncodeToString(x.Hash[:]))
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", writeFile(t, dir, "lab.ed2k", line(f))); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "benign", "--negative", writeFile(t, dir, "benign.ed2k", line(other))); code != exitOK {
		t.Fatalf("import benign: %s", errOut)
	}
	kw := writeFile(t, dir, "keywords.txt", "lab-keyword-alpha\n")
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	code, summary, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", edk.Server.Addr().String(), "--listen", "127.118.255.1",
		"--lab", "--duration", "3s", "--keywords", kw, "--geo-db", geoFiles.City, "--asn-db", geoFiles.ASN)
	if code != exitOK || !strings.Contains(summary, "keyword searches") {
		t.Fatalf("exit %d: %s%s", code, summary, errOut)
	}
	if code, out, _ := vigilRun(t, env, "", "leads", "list"); code != exitOK || !strings.Contains(out, "0 leads") {
		t.Fatalf("leads list:\n%s", out)
	}
	if strings.Contains(summary, "1 suspect lead") || !strings.Contains(summary, "0 results recorded in suspect leads") {
		t.Fatalf("summary counts a known-benign file as a suspect lead:\n%s", summary)
	}
}

// TestLeadsListShowsHostileNamesInert: a file name comes from a server's
// or a Kad node's search result, i.e. from anyone. One with a line break
// and terminal escapes must not forge a row of 'vigil leads list' (here a
// lead found in a torrent at 9 endpoints) nor reach the analyst's
// terminal as control codes.
func TestLeadsListShowsHostileNamesInert(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	forged := "lab-keyword-alpha x.bin\x1b[2K\nbtih:0000000000000000000000000000000000000000  forged.bin  1  9  9  0  torrent  confirmed"
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 24, Server: true, Files: 2, Clients: 2,
		Names: []string{"lab-keyword-alpha 01.bin", forged},
		Base:  netip.MustParseAddr("127.119.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f := edk.Files[0]
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	kw := writeFile(t, dir, "keywords.txt", "lab-keyword-alpha\n")
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	if code, summary, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", edk.Server.Addr().String(), "--listen", "127.119.255.1",
		"--lab", "--duration", "3s", "--keywords", kw, "--geo-db", geoFiles.City, "--asn-db", geoFiles.ASN); code != exitOK ||
		!strings.Contains(summary, "1 results recorded in suspect leads") {
		t.Fatalf("exit %d: %s%s", code, summary, errOut)
	}
	code, out, _ := vigilRun(t, env, "", "leads", "list")
	if code != exitOK || !strings.Contains(out, "1 leads") {
		t.Fatalf("leads list:\n%s", out)
	}
	if strings.ContainsRune(out, '\x1b') {
		t.Errorf("a terminal escape reached the output:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "btih:") {
			t.Errorf("a file name forged a row:\n%s", out)
		}
	}
}
