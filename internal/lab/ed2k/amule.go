package ed2k

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// AMuleSetup is how the lab runs Debian's aMule daemon (amule-daemon
// 2.3.3). It must only ever run inside a network namespace the caller
// created with no default route: its defaults fetch server lists, Kad
// nodes and GeoIP data from public URLs, which the setup empties, and no
// route lets anything out.
type AMuleSetup struct {
	// Dir is aMule's configuration directory (created).
	Dir string
	// Addr is the address aMule binds and names (not loopback: aMule
	// refuses 127.0.0.0/8 for Kad; RFC 6598 space works).
	Addr netip.Addr
	// Servers go into its server.met; Nodes into its nodes.dat.
	Servers []netip.AddrPort
	Nodes   []kadwire.Contact
	// Files are written into its incoming directory, which it shares.
	Files []*File
	// ECPassword is the password of its external connections (amulecmd).
	ECPassword string
	// RequireObfuscation makes it support, request and require eMule's
	// protocol obfuscation: it then drops every plain connection.
	RequireObfuscation bool
}

// AMule is a running amuled.
type AMule struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan error
	// LogPath is where its output goes.
	LogPath string
}

// settings are the amule.conf keys the lab sets, by section.
func (s AMuleSetup) settings() map[string]map[string]string {
	sum := md5.Sum([]byte(s.ECPassword))
	obfuscation := map[string]string{"IsClientCryptLayerSupported": "0", "IsCryptLayerRequested": "0", "IsClientCryptLayerRequired": "0"}
	if s.RequireObfuscation {
		obfuscation = map[string]string{"IsClientCryptLayerSupported": "1", "IsCryptLayerRequested": "1", "IsClientCryptLayerRequired": "1"}
	}
	return map[string]map[string]string{
		"eMule": {
			"Nick": "vigil lab aMule", "Address": s.Addr.String(), "Port": "4662", "UDPPort": "4672", "UDPEnable": "1",
			"Autoconnect": "1", "Reconnect": "1", "ConnectToKad": "1", "ConnectToED2K": "1",
			"FilterLanIPs": "0", "ParanoidFiltering": "0", "IPFilterAutoLoad": "0", "IPFilterURL": "",
			"KadNodesUrl": "", "Ed2kServersUrl": "", "GeoLiteCountryUpdateUrl": "", "GeoIPEnabled": "0",
			"StatsServerURL": "", "NewVersionCheck": "0", "Serverlist": "0", "AddServerListFromServer": "0",
			"AddServerListFromClient": "0", "SafeServerConnect": "0", "UPnPEnabled": "0",
			"TempDir": filepath.Join(s.Dir, "Temp"), "IncomingDir": filepath.Join(s.Dir, "Incoming"),
			// Loopback speeds, so that a part fetched for verification
			// comes in seconds.
			"MaxUpload": "100000", "UploadCapacity": "100000", "SlotAllocation": "50000",
		},
		"ExternalConnect": {
			"AcceptExternalConnections": "1", "ECAddress": s.Addr.String(), "ECPort": "4712",
			"ECPassword": hex.EncodeToString(sum[:]), "UPnPECEnabled": "0", "IpFilterClients": "0", "IpFilterServers": "0",
			"UseSecIdent": "0",
		},
		"Obfuscation":  obfuscation,
		"HTTPDownload": {"URL_1": ""},
		"WebServer":    {"Enabled": "0"},
	}
}

// amuleConf is an amule.conf holding set, sections and keys sorted.
// aMule 2.3.3 takes its default for every key missing (it reads the file
// before it first saves, CPreferences::LoadAllItems) and writes them all
// back as it starts.
func amuleConf(set map[string]map[string]string) string {
	var b strings.Builder
	for _, sec := range slices.Sorted(maps.Keys(set)) {
		fmt.Fprintf(&b, "[%s]\n", sec)
		for _, k := range slices.Sorted(maps.Keys(set[sec])) {
			fmt.Fprintf(&b, "%s=%s\n", k, set[sec][k])
		}
	}
	return b.String()
}

// NodesDat is a nodes.dat (version 2) naming cs.
func NodesDat(cs []kadwire.Contact) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cs)))
	for _, c := range cs {
		b = c.AppendTo(b)
		b = append(b, make([]byte, 8)...) // Kad UDP key: none
		b = append(b, 0)                  // not verified
	}
	return b
}

// StartAMule configures and starts amuled in s.Dir. The caller must be in
// a network namespace with no default route.
func StartAMule(ctx context.Context, s AMuleSetup) (*AMule, error) {
	if _, err := exec.LookPath("amuled"); err != nil {
		return nil, fmt.Errorf("amuled not found (apt-get install amule-daemon): %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	// The config is written before amuled first runs: a run on aMule's
	// defaults (no amule.conf, or an empty Address) binds 0.0.0.0:4662
	// (TCP), 4665 and 4672 (UDP) while it lasts, and another daemon of
	// the lab starting then on its own address loses those ports; aMule
	// 2.3.3 then closes the UDP socket it failed to create and crashes
	// (SIGSEGV in CAsioUDPSocketImpl::DispatchClose). Its defaults also
	// name public URLs to fetch.
	if err := os.WriteFile(filepath.Join(s.Dir, "amule.conf"), []byte(amuleConf(s.settings())), 0o600); err != nil {
		return nil, err
	}
	met := wire.ServerMet{Version: 0x0E}
	for _, a := range s.Servers {
		met.Servers = append(met.Servers, wire.ServerEntry{Addr: a, Tags: []wire.Tag{wire.StrTag(wire.STServerName, "vigil lab server")}})
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "server.met"), met.AppendTo(nil), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "nodes.dat"), NodesDat(s.Nodes), 0o600); err != nil {
		return nil, err
	}
	incoming := filepath.Join(s.Dir, "Incoming")
	os.MkdirAll(incoming, 0o700)
	os.MkdirAll(filepath.Join(s.Dir, "Temp"), 0o700)
	for _, f := range s.Files {
		if err := writeFile(filepath.Join(incoming, f.Name), f); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := &AMule{LogPath: filepath.Join(s.Dir, "amuled.log"), done: make(chan error, 1)}
	var err error
	if a.log, err = os.Create(a.LogPath); err != nil {
		return nil, err
	}
	a.cmd = exec.Command("amuled", "-c", s.Dir, "-o")
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.log.Close()
		return nil, err
	}
	go func() { a.done <- a.cmd.Wait() }()
	return a, nil
}

func writeFile(path string, f *File) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	buf := make([]byte, 1<<20)
	for off := int64(0); off < f.Size; {
		n := min(int64(len(buf)), f.Size-off)
		f.ReadAt(buf[:n], off)
		w.Write(buf[:n])
		off += n
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Log returns what amuled printed so far.
func (a *AMule) Log() string {
	b, _ := os.ReadFile(a.LogPath)
	return string(b)
}

// Logfile returns aMule's own log file so far. It can hold lines its
// output lacks: a line logged just before a crash (such as a socket it
// could not create) is written here, and may not be printed.
func (a *AMule) Logfile() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(a.LogPath), "logfile"))
	return string(b)
}

// Close stops amuled (TERM, then KILL after 10 s) and waits for it.
func (a *AMule) Close() error {
	defer a.log.Close()
	if a.cmd.Process == nil {
		return errors.New("amuled was not started")
	}
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-a.done:
		return err
	case <-time.After(10 * time.Second):
		syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		return <-a.done
	}
}
