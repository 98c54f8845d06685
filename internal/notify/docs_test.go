package notify_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/notify"
	"github.com/vigil-oss/vigil/internal/notify/notifytest"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// docBlock is the fenced block of lang that follows heading in
// docs/alerts.md.
func docBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), heading+"\n")
	if !ok {
		t.Fatalf("docs/alerts.md has no %q", heading)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("docs/alerts.md: no %s block after %q", lang, heading)
	}
	return m[1]
}

// receiverCase is a request as a receiver gets it.
type receiverCase struct {
	name    string
	ts, sig string
	body    []byte
	ok      bool
}

// docCases are a real delivery (captured by the test receiver), the same
// with its body changed, and a replay signed 10 minutes ago.
func docCases(t *testing.T) []receiverCase {
	r := notifytest.NewReceiver(t, secret)
	if err := (notify.Webhook{URL: r.URL, Secret: secret}).Send(context.Background(), message("doc-1")); err != nil {
		t.Fatal(err)
	}
	d := r.Deliveries()[0]
	ts, sig := d.Header.Get(notify.HeaderTimestamp), d.Header.Get(notify.HeaderSignature)
	old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	return []receiverCase{
		{"delivered", ts, sig, d.Body, true},
		{"tampered body", ts, sig, []byte(strings.Replace(string(d.Body), "rule-1", "rule-2", 1)), false},
		{"replay", old, notify.Sign(secret, old, d.Body), d.Body, false},
	}
}

// The shell example of docs/alerts.md verifies what Vigil sends and
// refuses a tampered body and a replay.
func TestDocShellVerification(t *testing.T) {
	testenv.Need(t, "OPENSSL", "openssl")
	script := docBlock(t, "#### Verifying a webhook", "sh")
	for _, tc := range docCases(t) {
		dir := t.TempDir()
		writeFile(t, dir, "body.json", string(tc.body), 0o600)
		writeFile(t, dir, "ocrtis-desk.key", string(secret)+"\n", 0o600)
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ts="+tc.ts, "sig="+tc.sig)
		out, err := cmd.CombinedOutput()
		if got := err == nil && strings.TrimSpace(string(out)) == "verified"; got != tc.ok {
			t.Errorf("%s: the documented shell check says %q (%v), want verified=%v", tc.name, out, err, tc.ok)
		}
	}
}

const docHarness = `package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	secret, _ := os.ReadFile(os.Args[1])
	body, _ := os.ReadFile(os.Args[2])
	h := http.Header{}
	h.Set("X-Vigil-Timestamp", os.Args[3])
	h.Set("X-Vigil-Signature", os.Args[4])
	if err := verifyVigil(bytes.TrimSuffix(secret, []byte("\n")), h, body, time.Now()); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("verified")
}
`

// The Go example of docs/alerts.md compiles with the standard library
// alone, verifies what Vigil sends and refuses a tampered body and a
// replay.
func TestDocGoVerification(t *testing.T) {
	src := docBlock(t, "#### Verifying a webhook", "go")
	src = strings.Replace(src, "package receiver", "package main", 1)
	dir := t.TempDir()
	writeFile(t, dir, "verify.go", src, 0o600)
	writeFile(t, dir, "main.go", docHarness, 0o600)
	bin := filepath.Join(dir, "receiver")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "verify.go", "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the documented Go example does not build: %v\n%s", err, out)
	}
	for _, tc := range docCases(t) {
		writeFile(t, dir, "body.json", string(tc.body), 0o600)
		writeFile(t, dir, "secret.key", string(secret)+"\n", 0o600)
		out, err := exec.Command(bin, filepath.Join(dir, "secret.key"), filepath.Join(dir, "body.json"), tc.ts, tc.sig).CombinedOutput()
		if got := err == nil && strings.TrimSpace(string(out)) == "verified"; got != tc.ok {
			t.Errorf("%s: the documented Go check says %q (%v), want verified=%v", tc.name, out, err, tc.ok)
		}
	}
}
