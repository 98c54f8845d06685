package pages

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// defaultSensors reports the Health funcs and the vigil_* counters of the
// registry, with rates since the previous reading.
type defaultSensors struct{ s *server }

func (d defaultSensors) Sensors(ctx context.Context) ([]SensorStatus, error) {
	s := d.s
	var out []SensorStatus
	for _, h := range s.healthRows() {
		out = append(out, SensorStatus{Name: h.Name, OK: h.OK, State: h.Why})
	}
	fams, err := s.cfg.Registry.Gather()
	if err != nil && len(fams) == 0 {
		return nil, err
	}
	now := s.now()
	var rates, errs []Rate
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, "vigil_") || strings.HasPrefix(name, "vigil_web_") || f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			key := name + labelString(m.GetLabel())
			v := m.GetCounter().GetValue()
			r := Rate{Name: key, Total: v, PerSec: s.rates.rate(key, v, now)}
			if isErrorMetric(name) {
				errs = append(errs, r)
			} else {
				rates = append(rates, r)
			}
		}
	}
	if len(rates)+len(errs) > 0 {
		out = append(out, SensorStatus{Name: "metrics", OK: true, State: "/metrics", Rates: rates, Errors: errs,
			Scope: scopeOf(errs)})
	}
	return out, nil
}

func scopeOf(errs []Rate) string {
	for _, e := range errs {
		if strings.Contains(e.Name, "scope_refused") {
			return e.Name + " = " + strconv.FormatFloat(e.Total, 'f', 0, 64)
		}
	}
	return ""
}

func isErrorMetric(name string) bool {
	for _, w := range []string{"error", "fail", "refused", "bad_", "timeout", "dropped"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// rateMemo remembers the previous reading of each counter.
type rateMemo struct {
	mu   sync.Mutex
	last map[string]reading
}

type reading struct {
	v float64
	t time.Time
}

func newRateMemo() *rateMemo { return &rateMemo{last: map[string]reading{}} }

func (m *rateMemo) rate(key string, v float64, now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.last[key]
	m.last[key] = reading{v, now}
	dt := now.Sub(prev.t).Seconds()
	if !ok || dt <= 0 || v < prev.v {
		return -1
	}
	return (v - prev.v) / dt
}

// ---- audit page ----

func (s *server) auditPage(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Audit == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	if !u.CanAudit() {
		_ = s.audit(r, ActionDenied, "audit", "", nil)
		s.fail(w, r, u, http.StatusForbidden, "error.forbidden")
		return
	}
	q := r.URL.Query()
	f := AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Object: q.Get("object"), Limit: 100}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", "before: want a sequence number")
			return
		}
		f.BeforeSeq = n
	}
	recs, err := s.cfg.Audit.List(r.Context(), u, f)
	if err != nil {
		s.log.Error("audit list", "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	if !s.audited(w, r, u, ActionReadAudit, "audit", "", map[string]string{"query": r.URL.RawQuery}) {
		return
	}
	var older int64
	if len(recs) == f.Limit {
		older = recs[len(recs)-1].Seq
	}
	v := s.newView(r, u, "audit", "audit.title", map[string]any{"Records": recs, "Older": older})
	s.render(w, http.StatusOK, "audit", v)
}
