package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// startServe runs 'vigil serve' on a loopback port with extra flags and
// returns its base URL; the server is stopped (and must exit 0) at the
// end of the test, or when stop is called.
func startServe(t *testing.T, db string, flags ...string) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	args := append([]string{"--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "0", "--log-level", "warn"}, flags...)
	go func() { done <- run(ctx, args, strings.NewReader(""), &out, &errb, func(string) string { return "" }) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d: %s", code, errb.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	urlRE := regexp.MustCompile(`(https?://127\.0\.0\.1:\d+)/login`)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.String())
		default:
		}
	}
	t.Fatalf("serve printed no address:\n%s\n%s", out.String(), errb.String())
	return "", nil
}

func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// The attack of issue 11: 100 MiB posted before logging in, to the login
// form and to the import route. At 8846f19 the login's multipart spool
// (100 MiB) stayed in the temp folder.
func TestServeRefusesA100MiBAnonymousUpload(t *testing.T) {
	db := emptyStore(t)
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	base, _ := startServe(t, db)
	for _, path := range []string{"/login", "/lists/import", "/targets/T-1/isp"} {
		var head bytes.Buffer
		mw := multipart.NewWriter(&head)
		_ = mw.WriteField("next", "/")
		_, _ = mw.CreateFormFile("file", "upload.bin")
		body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(rand.Reader, 100<<20), strings.NewReader("\r\n--"+mw.Boundary()+"--\r\n"))
		req, _ := http.NewRequest("POST", base+path, body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("POST %s of 100 MiB anonymously: %d, want refused", path, resp.StatusCode)
			}
		}
		if left := filesIn(t, tmp); len(left) != 0 {
			t.Fatalf("POST %s: files left in TMPDIR: %v", path, left)
		}
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	base, _ := startServe(t, emptyStore(t), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serve printed %s", base)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	for _, path := range []string{"/login", "/healthz"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: no HSTS under TLS", path)
		}
		if path == "/healthz" && string(b) != "ok\n" {
			t.Errorf("healthz: %q", b)
		}
		for _, ck := range resp.Cookies() {
			if !ck.Secure || !strings.HasPrefix(ck.Name, "__Host-") {
				t.Errorf("%s: cookie %s not Secure/__Host-", path, ck.Name)
			}
		}
	}
	// Plain HTTP to the TLS port is not served.
	resp, err := http.Get(strings.Replace(base, "https://", "http://", 1) + "/login")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}

// At 8846f19 a non-loopback address was served in plain HTTP after a
// warning. Nothing is bound here: the flags are refused first.
func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "192.0.2.1:8080"}, "not a loopback address"},
		{[]string{"--addr", "192.0.2.1:8080", "--insecure-http"}, "name it with --trusted-proxy"},
		{[]string{"--addr", "127.0.0.1:0", "--tls-cert", "x.crt"}, "go together"},
		{[]string{"--addr", "127.0.0.1:0", "--trusted-proxy", "10.0.0.0/33"}, "trusted proxy"},
	} {
		code, _, errOut := vigilRun(t, nil, "", append([]string{"--db", db, "serve"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("serve %v: exit %d %q, want usage error with %q", c.args, code, errOut, c.want)
		}
	}
}

// Behind a trusted proxy the audit names the client of X-Forwarded-For;
// from anyone else the header is ignored.
func TestServeAuditsTheClientBehindATrustedProxy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	mustRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "A")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-a", "--role", "analyst", "--name", "alice")
	base, stop := startServe(t, db, "--trusted-proxy", "127.0.0.1/32")
	req, _ := http.NewRequest("GET", base+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer vgt_not-a-token")
	req.Header.Set("X-Forwarded-For", "10.9.9.9, 198.51.100.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// /metrics: the proxy's own loopback address does not count; the
	// client behind it needs a token.
	tok := strings.TrimSpace(mustRun(t, env, "", "token", "create", "--user", "alice", "--expires", "1d"))
	for _, c := range []struct {
		tok  string
		want int
	}{{"", http.StatusUnauthorized}, {tok, http.StatusOK}} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want == http.StatusOK) != strings.Contains(string(b), "vigil_audit_checkpoints_total") {
			t.Errorf("metrics with token %v: %d", c.tok != "", resp.StatusCode)
		}
	}
	stop()
	out := mustRun(t, env, "", "audit", "list", "--action", audit.ActionLoginFailed, "--json")
	var r audit.Record
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &r); err != nil {
		t.Fatalf("audit list: %q %v", out, err)
	}
	if r.Remote != "198.51.100.7:0" {
		t.Fatalf("audited remote %q, want the client behind the proxy", r.Remote)
	}
}

// serve signs the chain on its own schedule and when it stops, into the
// witness; verify --witness then finds a tail cut with the checkpoints.
func TestServeWritesAuditCheckpointsToTheWitness(t *testing.T) {
	dir := t.TempDir()
	db := emptyStore(t)
	witness := filepath.Join(dir, "witness", "vigil.witness")
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	var mu sync.Mutex
	var posted [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, b)
		mu.Unlock()
	}))
	defer hook.Close()
	base, stop := startServe(t, db, "--audit-witness", witness, "--audit-witness-url", hook.URL)
	for i := range 5 {
		req, _ := http.NewRequest("GET", base+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer vgt_bad%d", i))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	stop()
	keyHex, err := os.ReadFile(db + ".audit-key")
	if err != nil {
		t.Fatalf("serve made no audit key: %v", err)
	}
	if fi, _ := os.Stat(db + ".audit-key"); fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit key mode %v", fi.Mode().Perm())
	}
	pubKey := ed25519PubOf(t, strings.TrimSpace(string(keyHex)))
	pub := fmt.Sprintf("%x", pubKey)
	mu.Lock()
	if len(posted) == 0 {
		t.Fatal("the witness URL got no note")
	}
	if cp, err := audit.OpenCheckpointNote(posted[len(posted)-1], pubKey); err != nil || cp.Seq < 1 {
		t.Fatalf("posted note: %+v %v", cp, err)
	}
	mu.Unlock()
	if out := mustRun(t, env, "", "audit", "verify", "--pubkey", pub, "--witness", witness); !regexp.MustCompile(`[1-9]\d* witness checkpoints`).MatchString(out) {
		t.Fatalf("verify: %s", out)
	}
	sqlExec(t, db, `DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq > 2`,
		`DROP TRIGGER audit_checkpoints_no_delete`, `DELETE FROM audit_checkpoints`)
	code, _, errOut := vigilRun(t, env, "", "audit", "verify", "--pubkey", pub, "--witness", witness)
	if code != exitRejected || !strings.Contains(errOut, "broken at seq 3 (truncated)") {
		t.Fatalf("cut tail: exit %d %s", code, errOut)
	}
}

// At 8846f19 'observations export --out' made its file 0666 less the
// umask (0644): suspects' addresses readable by any local user.
func TestObservationsExportFileIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	out := filepath.Join(dir, "obs.jsonl")
	mustRun(t, map[string]string{"VIGIL_DB": emptyStore(t), "USER": "tester"}, "", "observations", "export", "--case", "2026/0001", "--out", out)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi.Mode().Perm(), err)
	}
}

// At 8846f19 both were accepted.
func TestCLIRefusesWeakPasswordsAndEverlastingTokens(t *testing.T) {
	env, db := accessEnv(t)
	mustRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "A")
	if code, _, errOut := vigilRun(t, env, "aaaaaaaaaaaa\n", "user", "add", "--agency", "fr-a", "--role", "analyst", "--name", "bob"); code != exitUsage || !strings.Contains(errOut, "password refused") {
		t.Fatalf("aaaaaaaaaaaa: exit %d %s", code, errOut)
	}
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-a", "--role", "analyst", "--name", "bob")
	for _, exp := range []string{"never", "0", "91d"} {
		if code, _, errOut := vigilRun(t, env, "", "token", "create", "--user", "bob", "--expires", exp); code != exitUsage {
			t.Errorf("--expires %s: exit %d %s", exp, code, errOut)
		}
	}
	tok := strings.TrimSpace(mustRun(t, env, "", "token", "create", "--user", "bob", "--expires", "90d"))
	if out := mustRun(t, env, "another long password\n", "user", "passwd", "--name", "bob"); !strings.Contains(out, "tokens revoked") {
		t.Fatalf("passwd: %s", out)
	}
	withService(t, db, func(svc *access.Service) {
		if _, err := svc.TokenPrincipal(context.Background(), tok, ""); err == nil {
			t.Fatal("a token made before the password change still works")
		}
	})
}

// Under TLS 1.2 only forward-secret AEAD suites; TLS 1.1 is refused.
func TestServeTLSVersionsAndSuites(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	base, _ := startServe(t, emptyStore(t), "--tls-cert", certFile, "--tls-key", keyFile)
	addr := strings.TrimPrefix(base, "https://")
	for _, c := range []struct {
		cfg  *tls.Config
		fail bool
	}{
		{&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, true},
		{&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, true},
		{&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}, false},
		{&tls.Config{RootCAs: pool}, false},
	} {
		conn, err := tls.Dial("tcp", addr, c.cfg)
		if err == nil {
			conn.Close()
		}
		if (err != nil) != c.fail {
			t.Errorf("max version %x suites %v: err %v, want failure %v", c.cfg.MaxVersion, c.cfg.CipherSuites, err, c.fail)
		}
	}
}

// A file that already exists keeps its mode through O_TRUNC: an export
// over a 0644 file (or one another local user made 0666 in a shared
// folder, waiting for it) left suspects' addresses readable by anyone.
func TestObservationsExportOverAnExistingFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "obs.jsonl")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o666); err != nil {
		t.Fatal(err)
	}
	mustRun(t, map[string]string{"VIGIL_DB": emptyStore(t), "USER": "tester"}, "", "observations", "export", "--case", "2026/0001", "--out", out)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi.Mode().Perm(), err)
	}
}
