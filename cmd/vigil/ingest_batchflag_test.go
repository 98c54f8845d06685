package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// --batch bounds a transaction and what one fetch hands ingest: zero, a
// negative number or more than ingest's gate holds (65,536; an
// observation's index in a fetch is packed in 24 bits) is a usage
// error, before the bus is dialled (the old code waited for NATS).
func TestIngestBatchFlagBounded(t *testing.T) {
	for _, bad := range []string{"0", "-5", "65537", "16777217"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var out, errb bytes.Buffer
		env := map[string]string{"VIGIL_DB": t.TempDir() + "/v.db"}
		code := run(ctx, []string{"ingest", "--bus", "nats://127.0.0.1:1", "--batch", bad}, strings.NewReader(""), &out, &errb,
			func(k string) string { return env[k] })
		cancel()
		if code != exitUsage || !strings.Contains(errb.String(), "--batch") {
			t.Fatalf("ingest --batch %s: exit %d, %s; want a usage error naming --batch", bad, code, errb.String())
		}
	}
}
