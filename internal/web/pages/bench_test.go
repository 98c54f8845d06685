package pages

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/web/trail"
)

// The page handlers' own cost (authorisation, audit append, template,
// SVG), with an in-memory backend whose answers cost nothing: what the web
// layer adds to the backend's indexed queries. Baseline: the same request
// answered by a handler that only writes a static page of similar size.
func benchPage(b *testing.B, path string) {
	b.Helper()
	b2 := newFakeBackend()
	a := newFakeAccess()
	srv := a.Wrap(New(Config{Targets: b2, ISP: b2, Lists: fakeLists{b2}, Audit: fakeAudit{b2}, Trail: trail.New(b2, nil), Who: a.Who,
		CSRFToken: a.CSRFToken, Now: func() time.Time { return testNow }}))
	tok := a.token("claire")
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s: %d", path, w.Code)
	}
	size := w.Body.Len()
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b2.mu.Lock()
			b2.audit = b2.audit[:0]
			b2.mu.Unlock()
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
		}
	})
	static := make([]byte, size)
	b.Run("baseline-static", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(static) })
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
		}
	})
}

func BenchmarkOverviewPage(b *testing.B) { benchPage(b, "/") }
func BenchmarkTargetsPage(b *testing.B)  { benchPage(b, "/targets?sort=last") }
func BenchmarkTargetPage(b *testing.B)   { benchPage(b, "/targets/T-A1") }
