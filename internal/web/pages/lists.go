package pages

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func (s *server) lists(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Lists == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	ls, err := s.cfg.Lists.Lists(r.Context(), u)
	if err != nil {
		s.log.Error("lists", "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	names := make([]string, 0, len(ls))
	for _, l := range ls {
		names = append(names, l.Name)
	}
	if !s.audited(w, r, u, ActionViewList, "lists", "", map[string]any{"lists": names}) {
		return
	}
	v := s.newView(r, u, "lists", "lists.title", map[string]any{"Lists": ls, "Jobs": s.jobs.of(u.Name)})
	s.render(w, http.StatusOK, "lists", v)
}

func (s *server) list(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Lists == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	name := r.PathValue("name")
	vers, err := s.cfg.Lists.Versions(r.Context(), u, name)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrDenied) {
		s.fail(w, r, u, http.StatusNotFound, "error.notfound")
		return
	}
	if err != nil {
		s.log.Error("list versions", "list", name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	data := map[string]any{"Name": name, "Versions": vers}
	from, to := 0, 0
	if len(vers) >= 2 {
		from, to = vers[1].Version, vers[0].Version
	}
	if a, b := r.URL.Query().Get("from"), r.URL.Query().Get("to"); a != "" && b != "" {
		fa, e1 := strconv.Atoi(a)
		tb, e2 := strconv.Atoi(b)
		if e1 != nil || e2 != nil || fa < 0 || tb < 0 {
			s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", "from/to: want version numbers")
			return
		}
		from, to = fa, tb
	}
	if to > 0 {
		d, err := s.cfg.Lists.Diff(r.Context(), u, name, from, to)
		if errors.Is(err, ErrNotFound) {
			s.fail(w, r, u, http.StatusNotFound, "error.notfound")
			return
		}
		if err != nil {
			s.log.Error("list diff", "list", name, "err", err)
			s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
			return
		}
		data["Diff"] = d
	}
	detail := map[string]any{"versions": len(vers)}
	if to > 0 {
		detail["diff"] = []int{from, to}
	}
	if !s.audited(w, r, u, ActionViewList, "list:"+name, "", detail) {
		return
	}
	v := s.newView(r, u, "lists", "", data)
	v.Title = v.T("lists.versions", name)
	s.render(w, http.StatusOK, "list", v)
}

// listImport is POST /lists/import (multipart: name, source, file). The
// file is copied to a temporary file and imported in the background;
// the browser is sent to the job's progress page.
func (s *server) listImport(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Lists == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	if !u.CanManageLists() {
		_ = s.audit(r, ActionDenied, "lists", "", map[string]string{"action": "import"})
		s.fail(w, r, u, http.StatusForbidden, "lists.noright")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", "upload: "+err.Error())
		return
	}
	defer r.MultipartForm.RemoveAll() // the spool; the upload is copied below
	name := strings.TrimSpace(r.FormValue("name"))
	if name == "" || len(name) > 100 {
		s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", "name: want a list name of 1 to 100 bytes")
		return
	}
	f, fh, err := r.FormFile("file")
	if err != nil {
		s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", "file: "+err.Error())
		return
	}
	defer f.Close()
	tmp, err := os.CreateTemp("", "vigil-upload-*")
	if err != nil {
		s.log.Error("upload temp file", "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	n, err := io.Copy(tmp, f)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		s.log.Error("upload copy", "file", fh.Filename, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	up := ListUpload{Name: name, Source: strings.TrimSpace(r.FormValue("source")), Filename: fh.Filename, Size: n, Body: tmp}
	j, err := s.jobs.start(u.Name, name, fh.Filename, n)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := s.audit(r, ActionChange, "list:"+name, "", map[string]any{"import": fh.Filename, "bytes": n, "job": j.ID}); err != nil {
		j.finish(ImportResult{}, errors.New("not started: the audit trail did not answer"))
		tmp.Close()
		os.Remove(tmp.Name())
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	user := *u
	s.jobsWG.Add(1)
	go func() {
		defer s.jobsWG.Done()
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		res, err := s.cfg.Lists.Import(s.ctx, &user, up, j.progress)
		j.finish(res, err)
		if err != nil {
			s.log.Warn("list import failed", "list", name, "file", fh.Filename, "user", user.Name, "err", err)
		}
	}()
	http.Redirect(w, r, "/lists/import/"+j.ID, http.StatusSeeOther)
}

func (s *server) importPage(w http.ResponseWriter, r *http.Request, u *User) {
	j := s.jobs.get(r.PathValue("job"), u.Name)
	if j == nil {
		s.fail(w, r, u, http.StatusNotFound, "error.notfound")
		return
	}
	v := s.newView(r, u, "lists", "", j.snapshot())
	v.Title = v.T("lists.progress", j.List)
	s.render(w, http.StatusOK, "import", v)
}

// ImportState implements api.Imports: the progress of import id (a
// JobState) if user started it, for GET /api/v1/imports/{job}.
func (s *Server) ImportState(id, user string) (any, bool) {
	j := s.s.jobs.get(id, user)
	if j == nil {
		return nil, false
	}
	return j.snapshot(), true
}

// ---- import jobs ----

const (
	maxRunningImports = 2
	maxKeptJobs       = 100
)

type jobs struct {
	mu    sync.Mutex
	byID  map[string]*job
	order []string
}

func newJobs() *jobs { return &jobs{byID: map[string]*job{}} }

type job struct {
	ID, User, List, File string
	Started              time.Time

	mu       sync.Mutex
	state    string // running, done, failed
	done     int64
	total    int64
	result   ImportResult
	err      string
	rejected *ImportRejectedError // the lines refused, when that is why it failed
}

// JobState is an import's progress as the page and the API show it.
type JobState struct {
	ID      string    `json:"id"`
	List    string    `json:"list"`
	File    string    `json:"file"`
	Started time.Time `json:"started"`
	State   string    `json:"state"`
	Done    int64     `json:"done"`
	Total   int64     `json:"total"`
	Error   string    `json:"error,omitempty"`
	// Rejected lists the refused lines (up to MaxRejectedShown) when the
	// file had invalid lines; RejectedTotal counts them all.
	Rejected      []RejectedLine `json:"rejected,omitempty"`
	RejectedTotal int            `json:"rejected_total,omitempty"`
	Result        ImportResult   `json:"result"`
}

// Percent is done/total in percent, or -1 if unknown.
func (j JobState) Percent() int {
	if j.Total <= 0 {
		return -1
	}
	return int(min(100, j.Done*100/j.Total))
}

func (j *job) progress(done, total int64) {
	j.mu.Lock()
	j.done, j.total = done, total
	j.mu.Unlock()
}

func (j *job) finish(res ImportResult, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.state, j.err = "failed", err.Error()
		var rej *ImportRejectedError
		if errors.As(err, &rej) {
			j.rejected = rej
		}
		return
	}
	j.state, j.result = "done", res
	if j.total > 0 {
		j.done = j.total
	}
}

func (j *job) snapshot() JobState {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := JobState{ID: j.ID, List: j.List, File: j.File, Started: j.Started, State: j.state,
		Done: j.done, Total: j.total, Error: j.err, Result: j.result}
	if j.rejected != nil {
		st.Rejected, st.RejectedTotal = j.rejected.Lines, j.rejected.Total
	}
	return st
}

func (js *jobs) start(user, list, file string, size int64) (*job, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	running := 0
	for _, j := range js.byID {
		j.mu.Lock()
		if j.state == "running" {
			running++
		}
		j.mu.Unlock()
	}
	if running >= maxRunningImports {
		return nil, errors.New("too many imports running; try again when one has finished")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	j := &job{ID: hex.EncodeToString(b[:]), User: user, List: list, File: file, Started: time.Now().UTC(), state: "running", total: size}
	js.byID[j.ID] = j
	js.order = append(js.order, j.ID)
	for len(js.order) > maxKeptJobs {
		old := js.byID[js.order[0]]
		old.mu.Lock()
		running := old.state == "running"
		old.mu.Unlock()
		if running {
			break
		}
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
	return j, nil
}

// get returns a job of user's, or nil: nobody follows another's import.
func (js *jobs) get(id, user string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.byID[id]
	if j == nil || j.User != user {
		return nil
	}
	return j
}

func (js *jobs) of(user string) []JobState {
	js.mu.Lock()
	defer js.mu.Unlock()
	var out []JobState
	for i := len(js.order) - 1; i >= 0; i-- {
		if j := js.byID[js.order[i]]; j != nil && j.User == user {
			out = append(out, j.snapshot())
		}
	}
	return out
}
