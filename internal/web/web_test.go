package web

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

func TestServerHealthAPIAndOverview(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(rng, base, 1), storetest.Observation(rng, base.Add(time.Hour), 2)}
	obs[1].Possession.Level = observe.Complete
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	healthy := false
	srv := httptest.NewServer(Handler(Config{Store: st, Health: map[string]HealthFunc{
		"sensor x": func() (bool, string) { return healthy, "no DHT nodes answered" },
	}}))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := get("/healthz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no DHT nodes answered") {
		t.Fatalf("unhealthy sensor: %d %s", resp.StatusCode, body)
	}
	healthy = true
	if resp, _ := get("/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthy sensor: %d", resp.StatusCode)
	}

	resp, body = get("/api/v1/observations?since=" + base.Add(time.Minute).Format(time.RFC3339))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("api: %d", resp.StatusCode)
	}
	dec := observe.NewDecoder(strings.NewReader(body))
	var got observe.Observation
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("api body %q: %v", body, err)
	}
	if got.ID != obs[1].ID || got.Possession.Level != observe.Complete {
		t.Fatalf("api returned %s level %v, want only the later observation", got.ID, got.Possession.Level)
	}
	if err := dec.Decode(&got); err != io.EOF {
		t.Fatalf("api returned more than the observation since the given time: %v", err)
	}
	if resp, _ := get("/api/v1/observations?since=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad since: %d", resp.StatusCode)
	}

	resp, body = get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `class="level complete"`) {
		t.Fatalf("overview does not show the possession level: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if resp, _ := get("/metrics"); resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
}
