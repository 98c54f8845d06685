package jetstream

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	js "github.com/nats-io/nats.go/jetstream"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// docBlockWith returns the fenced block of doc whose text holds marker,
// without its fences.
func docBlockWith(t *testing.T, doc, marker string) string {
	t.Helper()
	parts := strings.Split(doc, "\n```")
	for i := 1; i < len(parts); i += 2 { // odd parts are inside fences
		body := parts[i]
		if nl := strings.IndexByte(body, '\n'); nl >= 0 {
			body = body[nl+1:] // the fence's info string
		}
		if strings.Contains(body, marker) {
			return body + "\n"
		}
	}
	t.Fatalf("docs/deployment.md holds no code block with %q", marker)
	return ""
}

// The commands docs/deployment.md, "NATS users and permissions", gives an
// administrator (the stream and the durable consumer made with the nats
// command-line tool) make what a sensor and ingest then use with the
// least-privilege users of the same section: run as printed, only the
// server's address changed to the test's, against a real NATS server
// configured by that section's file.
func TestDeploymentDocNATSCommandsMakeWhatIngestUses(t *testing.T) {
	natsCLI, err := exec.LookPath("nats")
	if err != nil {
		testenv.Missing(t, "NATSCLI", "nats not found on PATH")
	}
	doc, err := os.ReadFile("../../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	script := docBlockWith(t, string(doc), "stream add --config")
	if n := strings.Count(script, "nats://127.0.0.1:4222"); n != 2 {
		t.Fatalf("the doc's commands name the server %d times, want 2 (one a command):\n%s", n, script)
	}
	hp := startServerWithUsers(t)
	script = strings.ReplaceAll(script, "nats://127.0.0.1:4222", "nats://"+hp)

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-e", "-c", script)
	cmd.Dir = dir
	// A home of its own: the tool reads and writes its contexts there, and
	// no context of the machine's user may point it elsewhere.
	cmd.Env = []string{"PATH=" + filepath.Dir(natsCLI) + ":/usr/bin:/bin", "HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config"), "ADMIN_PASSWORD=" + adminPassword}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the doc's commands failed: %v\n%s", err, out)
	}

	// The sensor and ingest users may create and change nothing: they
	// work only if what the commands made is what Vigil would use as it is.
	publishedThenStored(t, hp, 30)
}

// A pause that is over pauses nothing: the nats tool writes a zero
// pause_until into every consumer it makes, and such a consumer reads as
// ingest wants. One paused until a time to come is not used as it is.
func TestConsumerPausedOnlyInThePastReadsAll(t *testing.T) {
	base := js.ConsumerConfig{Durable: "ingest", AckPolicy: js.AckExplicitPolicy, DeliverPolicy: js.DeliverAllPolicy,
		ReplayPolicy: js.ReplayInstantPolicy}
	var zero time.Time
	past := time.Now().Add(-time.Hour)
	for _, at := range []*time.Time{&zero, &past} {
		c := base
		c.PauseUntil = at
		if d := readsAll(c); d != "" {
			t.Errorf("pause until %v (over): %q; want read as it is", at, d)
		}
	}
	future := time.Now().Add(24 * time.Hour)
	c := base
	c.PauseUntil = &future
	if d := readsAll(c); !strings.Contains(d, "paused until") {
		t.Errorf("pause until tomorrow: %q; want it named", d)
	}
}
