package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// An acceptance test of 'vigil sensor ed2k' as a user runs it, with the
// default settings (no --lab: 15-minute rounds, 10 s server answers, 20 s
// probes, the default wire budget, verification off), against a lab whose
// server and clients include hostile ones:
//
//   - a second server that names, as sources of the watched file, an
//     honest client (true), that client's address with a port nobody
//     listens on, an innocent address nobody holds, a low id, the same
//     source twice, and a "flip" client;
//   - the lab's hostile clients (spare bits, wrong count, wrong file,
//     zlib bomb, oversized packet);
//   - a clone presenting the user hash of an honest client from an
//     address of its own;
//   - the "flip" client: its file status says it shares the whole file,
//     then it says it has no such file, then sends a second status with
//     no part.
//
// What must hold, end to end through the store: a third party's claim
// is announced and third_party, never more; a probe's level is never
// above what the client holds; every row of 'vigil isp-request' is a
// probe of an address and port where a lab client listened and
// answered; 'vigil evidence export' of every target verifies.
func TestSensorED2KAcceptanceWithDefaultsAgainstHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the sensor for 25 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := netip.MustParseAddr("127.121.0.0")
	edk, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 77, Server: true, KadNodes: 12, Files: 2, Clients: 3,
		SharesPerClient: 2, Base: base,
		Hostile: []labed2k.Behaviour{labed2k.LiarSpareBits, labed2k.LiarWrongCount, labed2k.WrongFile, labed2k.Bomb, labed2k.Oversize}})
	if err != nil {
		t.Fatal(err)
	}
	defer edk.Close()
	f0 := edk.Files[0]
	victim := edk.Clients[0]
	clone, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: victim.UserHash(), Software: labed2k.AMule233,
		Addr: netip.MustParseAddrPort("127.121.4.1:4662"), Shares: []labed2k.Share{{File: edk.Files[1]}}})
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	if err := clone.Offer(ctx, edk.Server.Addr()); err != nil {
		t.Fatal(err)
	}
	flip := startFlipClient(t, netip.MustParseAddrPort("127.121.4.2:4662"), f0.Hash)
	innocent := netip.MustParseAddrPort("127.121.4.3:4662")
	wrongPort := netip.AddrPortFrom(victim.Addr().Addr(), 4663)
	sensorIP := "127.121.255.1"
	// The sensor's own address with port 0, the port its login gives.
	self := netip.AddrPortFrom(netip.MustParseAddr(sensorIP), 0)
	liar := startListingServer(t, netip.MustParseAddrPort("127.121.5.1:0"), []wire.Source{
		srcOf(victim.Addr()), srcOf(wrongPort), srcOf(innocent), {ID: 12345, Port: 4662}, srcOf(innocent), srcOf(flip), srcOf(self),
	})

	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "VIGIL_KEY_DIR": filepath.Join(dir, "keys")}
	var links strings.Builder
	for _, f := range edk.Files {
		fmt.Fprintf(&links, "ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:]))
	}
	list := writeFile(t, dir, "lab.ed2k", links.String())
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	var boot []string
	for _, a := range edk.Bootstrap(3) {
		boot = append(boot, a.String())
	}
	geoFiles, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		t.Fatal(err)
	}
	code, summary, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", edk.Server.Addr().String()+","+liar.String(),
		"--kad-bootstrap", strings.Join(boot, ","), "--listen", sensorIP, "--duration", "25s",
		"--geo-db", geoFiles.City, "--asn-db", geoFiles.ASN)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("summary:\n%s", summary)

	code, out, errOut := vigilRun(t, env, "", "observations", "export", "--case", "T-1", "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	truth := map[netip.AddrPort]map[[16]byte]labed2k.Truth{}
	for _, tr := range edk.Truth() {
		for _, a := range tr.Addrs {
			if truth[a] == nil {
				truth[a] = map[[16]byte]labed2k.Truth{}
			}
			truth[a][tr.File] = tr
		}
	}
	truth[clone.Addr()] = map[[16]byte]labed2k.Truth{edk.Files[1].Hash: {File: edk.Files[1].Hash, Complete: true, Parts: 2}}
	probes := checkAcceptObservations(t, out, truth, flip, netip.MustParseAddr(sensorIP))
	for _, want := range []netip.AddrPort{victim.Addr(), clone.Addr(), flip} {
		if !probes[want] {
			t.Errorf("no peer_probe of %v", want)
		}
	}

	code, out, errOut = vigilRun(t, env, "", "targets", "--json")
	var targets []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &targets); code != exitOK || err != nil || len(targets) == 0 {
		t.Fatalf("targets: exit %d %v\n%s%s", code, err, out, errOut)
	}
	rows := 0
	for _, tg := range targets {
		eps := checkAcceptISPRows(t, env, tg.ID, probes)
		rows += len(eps)
		if eps[victim.Addr()] && eps[clone.Addr()] {
			t.Errorf("target %s: the clone of a user hash and its victim in one ISP request", tg.ID)
		}
		bundle := filepath.Join(dir, tg.ID+".zip")
		if code, out, errOut := vigilRun(t, env, "", "evidence", "export", "--target", tg.ID, "--out", bundle); code != exitOK {
			t.Fatalf("evidence export %s: exit %d\n%s%s", tg.ID, code, out, errOut)
		}
		if code, out, errOut := vigilRun(t, env, "", "verify", bundle); code != exitOK || !strings.Contains(out, "everything checks") {
			t.Errorf("verify of %s: exit %d\n%s%s", tg.ID, code, out, errOut)
		}
	}
	if rows == 0 {
		t.Error("no ISP row at all")
	}
}

func srcOf(a netip.AddrPort) wire.Source {
	return wire.Source{ID: wire.AddrToID(a.Addr()), Port: a.Port()}
}

// checkAcceptObservations checks every exported observation against the
// lab's truth and returns the endpoints probed.
func checkAcceptObservations(t *testing.T, jsonl string, truth map[netip.AddrPort]map[[16]byte]labed2k.Truth, flip netip.AddrPort, sensor netip.Addr) map[netip.AddrPort]bool {
	t.Helper()
	probes := map[netip.AddrPort]bool{}
	dec := observe.NewDecoder(strings.NewReader(jsonl))
	var o observe.Observation
	n := 0
	for dec.Decode(&o) == nil {
		n++
		ep := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
		if ep.Addr() == sensor {
			t.Errorf("observation %s names the sensor's own address %v", o.ID, ep)
		}
		if o.Method != observe.MethodPeerProbe {
			if o.Possession.Level != observe.Announced || !o.HasMark(observe.MarkThirdParty) || o.FirstHand() {
				t.Errorf("third party's claim %s %s at %v: level %s marks %v", o.ID, o.Method, ep, o.Possession.Level, o.Marks)
			}
			if len(o.Client.UserHash) != 0 {
				t.Errorf("third party's claim %s carries a user hash", o.ID)
			}
			continue
		}
		probes[ep] = true
		h := [16]byte(o.Item.Hash.Bytes())
		tr, ok := truth[ep][h]
		switch {
		case ep == flip:
			// It said it shares the whole file, then withdrew: never
			// more than its first word, complete.
			if o.Possession.Level > observe.Complete {
				t.Errorf("flip client recorded %s", o.Possession.Level)
			}
		case !ok:
			t.Errorf("peer_probe %s of %v for %x: no lab client shares it there", o.ID, ep, h)
		case tr.Behaviour == labed2k.WrongFile || tr.Behaviour == labed2k.Bomb || tr.Behaviour == labed2k.Oversize:
			t.Errorf("peer_probe %s of %s client %v recorded (%s)", o.ID, tr.Behaviour, ep, o.Possession.Level)
		case tr.Behaviour == labed2k.LiarSpareBits || tr.Behaviour == labed2k.LiarWrongCount:
			if o.Possession.Level >= observe.Complete || !o.HasMark(observe.MarkMalformedBitfield) {
				t.Errorf("liar %s at %v recorded %s marks %v", tr.Behaviour, ep, o.Possession.Level, o.Marks)
			}
		case !tr.Complete && o.Possession.Level >= observe.Complete:
			t.Errorf("peer_probe %s of %v: %s, but the client holds %d parts", o.ID, ep, o.Possession.Level, tr.Parts)
		case o.Possession.PiecesHave > tr.Parts && !tr.Complete:
			t.Errorf("peer_probe %s of %v: %d parts, holds %d", o.ID, ep, o.Possession.PiecesHave, tr.Parts)
		}
	}
	if n == 0 {
		t.Fatal("no observation exported")
	}
	return probes
}

// checkAcceptISPRows checks the rows of one target's ISP request: each a
// peer_probe over TCP of an endpoint that was probed, and returns the
// endpoints of its rows.
func checkAcceptISPRows(t *testing.T, env map[string]string, target string, probes map[netip.AddrPort]bool) map[netip.AddrPort]bool {
	t.Helper()
	code, out, errOut := vigilRun(t, env, "", "isp-request", "--target", target, "--format", "json", "--case", "2026/0001")
	if code != exitOK {
		t.Fatalf("isp-request %s: exit %d %s", target, code, errOut)
	}
	var req struct {
		Groups []struct {
			Rows []struct {
				IP         string `json:"ip"`
				SourcePort uint16 `json:"source_port"`
				Transport  string `json:"transport"`
				Method     string `json:"method"`
				Network    string `json:"network"`
			} `json:"rows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatalf("isp-request %s: %v\n%s", target, err, out)
	}
	eps := map[netip.AddrPort]bool{}
	for _, g := range req.Groups {
		for _, r := range g.Rows {
			ep := netip.AddrPortFrom(netip.MustParseAddr(r.IP), r.SourcePort)
			eps[ep] = true
			if r.Method != observe.MethodPeerProbe || r.Transport != "tcp" || r.Network != observe.NetED2K || !probes[ep] {
				t.Errorf("target %s: ISP row %+v is not a probe of a client that answered", target, r)
			}
		}
	}
	return eps
}

// startListingServer is a hostile eD2K server: it logs anyone in and
// answers every OP_GETSOURCES with srcs, whatever the file.
func startListingServer(t *testing.T, addr netip.AddrPort, srcs []wire.Source) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := &labed2k.ScriptedServer{Handle: labed2k.ListSources(srcs)}
	go srv.Serve(context.Background(), ln)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// startFlipClient is a client that answers a hello as aMule would, and a
// file request for hash by saying it shares the whole file, then that it
// has no such file, then a status with no part.
func startFlipClient(t *testing.T, addr netip.AddrPort, hash [16]byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hello := wire.Hello{Answer: true, UserHash: [16]byte{1, 2, 3, 4, 5, 14, 7, 8, 9, 10, 11, 12, 13, 14, 111, 16}, ClientID: wire.AddrToID(addr.Addr()), Port: addr.Port(),
		Tags: []wire.Tag{wire.StrTag(wire.CTName, "flip"), wire.IntTag(wire.CTVersion, wire.EDonkeyVersion)}}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				ctx := context.Background()
				pc := pconn.New(nc, nil, wire.DefaultLimits())
				for {
					p, _, err := pc.Next(ctx, time.Minute)
					if err != nil {
						return
					}
					switch p.Opcode {
					case wire.OpHello:
						pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpHelloAnswer, hello.AppendTo(nil))
					case wire.OpSetReqFileID:
						var out []byte
						out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash}.AppendTo(nil))
						out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: hash}.AppendTo(nil))
						out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash, Count: 1, Bits: []byte{0}}.AppendTo(nil))
						pc.SendRaw(ctx, time.Second, out)
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// 'vigil sensor ed2k --listen' with an IPv6 address is refused at start:
// eD2K and Kad run over IPv4 alone, and the sensor would otherwise run
// its whole duration reaching nothing. So is 0.0.0.0, which would be
// every observation's vantage and which the sensor cannot know itself by.
func TestSensorED2KAcceptanceRefusesAListenAddressItCannotUse(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f := labed2k.NewFile(0x1b6, 300_000)
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	for listen, want := range map[string]string{"::1": "not IPv4", "0.0.0.0": "names no address"} {
		code, out, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", "127.0.0.1:1", "--listen", listen, "--duration", "30s")
		if code == exitOK || !strings.Contains(errOut, want) {
			t.Fatalf("--listen %s: exit %d, want a refusal (%q):\n%s%s", listen, code, want, out, errOut)
		}
	}
}
