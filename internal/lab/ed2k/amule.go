package ed2k

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// patchINI rewrites the keys of an ini file, section by section, adding
// those that are missing at the end of their section.
func patchINI(text string, set map[string]map[string]string) string {
	var out []string
	section := ""
	done := map[string]map[string]bool{}
	flush := func() {
		for k, v := range set[section] {
			if !done[section][k] {
				out = append(out, k+"="+v)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			flush()
			section = t[1 : len(t)-1]
			out = append(out, line)
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok {
			if v, want := set[section][k]; want {
				if done[section] == nil {
					done[section] = map[string]bool{}
				}
				done[section][k] = true
				out = append(out, k+"="+v)
				continue
			}
		}
		out = append(out, line)
	}
	flush()
	for sec, kv := range set {
		if done[sec] == nil && !strings.Contains(text, "["+sec+"]") {
			out = append(out, "["+sec+"]")
			for k, v := range kv {
				out = append(out, k+"="+v)
			}
		}
	}
	return strings.Join(out, "\n")
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
	// A first run writes a default amule.conf and exits: external
	// connections are off.
	gen := exec.CommandContext(ctx, "amuled", "-c", s.Dir, "-o")
	gen.Run()
	confPath := filepath.Join(s.Dir, "amule.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return nil, fmt.Errorf("amuled wrote no amule.conf: %w", err)
	}
	if err := os.WriteFile(confPath, []byte(patchINI(string(conf), s.settings())), 0o600); err != nil {
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
	a := &AMule{LogPath: filepath.Join(s.Dir, "amuled.log"), done: make(chan error, 1)}
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
