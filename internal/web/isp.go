package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// ispFiles implements pages.ISPRequests: the ISP request the target page
// offers is the API's (api.BuildISPRequestFor, which 'vigil target
// isp-request' prints too), built from the target's whole timeline.
type ispFiles struct {
	backend   *pages.Backend
	st        Store
	now       func() time.Time
	retention isp.Retention
	window    time.Duration // the analysis's endpoint window (Deps.EndpointWindow)
}

// PurgedRows implements pages.ISPPurged: the request the form would give,
// with its rows whose transcript was purged marked from the purge records.
func (f ispFiles) PurgedRows(ctx context.Context, u *pages.User, id string) (int, time.Time, time.Time, error) {
	d, err := f.backend.Detail(ctx, u, id, 1<<20)
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	req := api.BuildISPRequestFor(d, "", f.now(), f.retention, isp.Requester{ID: d.Jurisdiction}, f.window)
	if err := api.MarkPurgedRows(ctx, f.st, &req); err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	n, first, last := req.TranscriptsPurged()
	return n, first, last, nil
}

// Render implements pages.ISPRequests.
func (f ispFiles) Render(ctx context.Context, u *pages.User, id, format, purpose string) (pages.ISPFile, error) {
	if strings.TrimSpace(purpose) == "" {
		return pages.ISPFile{}, pages.ErrNoPurpose
	}
	d, err := f.backend.Detail(ctx, u, id, 1<<20)
	if err != nil {
		return pages.ISPFile{}, err
	}
	// The requesting service is the user's: its name (and country, which
	// tells a foreign ISP) from the agencies of the store, never its id
	// alone as a name. A store that does not answer stops the request
	// rather than let it leave as a national requisition (the API's
	// requester does the same); an agency not on record gives the
	// letters' placeholder.
	by := isp.Requester{ID: d.Jurisdiction}
	if u != nil && u.Agency != "" {
		by.ID = u.Agency
	}
	ag, err := f.st.Agency(ctx, by.ID)
	switch {
	case err == nil:
		by.Name, by.Country, by.Address = ag.Name, ag.Country, ag.Address
	case !errors.Is(err, access.ErrNotFound):
		return pages.ISPFile{}, fmt.Errorf("isp request: agency %s: %w", by.ID, err)
	}
	req := api.BuildISPRequestFor(d, purpose, f.now(), f.retention, by, f.window)
	if err := api.CheckISPRows(ctx, f.st, &req); err != nil {
		return pages.ISPFile{}, err
	}
	var buf bytes.Buffer
	ctype := ""
	switch format {
	case "csv":
		ctype, err = "text/csv; charset=utf-8", isp.WriteCSV(&buf, &req)
	case "json":
		ctype, err = "application/json", isp.WriteJSON(&buf, &req)
	case "pdf":
		lang := isp.LangBoth
		if u != nil && u.Lang == "fr" {
			lang = isp.LangFR
		}
		ctype, err = "application/pdf", isp.WritePDF(&buf, &req, lang)
	default:
		return pages.ISPFile{}, fmt.Errorf("isp request: format %q: want pdf, csv or json", format)
	}
	if err != nil {
		return pages.ISPFile{}, err
	}
	return pages.ISPFile{ContentType: ctype, Filename: req.ID + "." + format, Body: buf.Bytes(), Endpoints: api.ISPEndpoints(&req)}, nil
}
