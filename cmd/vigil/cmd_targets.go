package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/i18n"
	"golang.org/x/term"
)

// The command line is the operator of the store: it sees every agency's
// targets, and every read is audited as "cli:<os user>".

func targetsCommand() *command {
	return &command{
		name:    "targets",
		summary: "List targets ranked by score, with the score's parts.",
		usage:   "vigil targets [--jurisdiction ID] [--category C] [--limit N] [--json]",
		help: `
A target is a device (endpoints linked by the identifiers the protocols give)
or a lone endpoint. Its score is a sum of named parts (docs/scoring.md):
distinct watched files by category and severity, possession level, days
active, recency, sharing versus only looking, new material, analyst flags.
Every file count is shown with its possession level: a file only announced
by a third party is not a file the device was seen to hold.

Observations stored since the targets were last computed (an import, a
sensor elsewhere) are taken in first; --no-refresh skips that.

With --json, one JSON array; each target has id, score, parts (name →
points), jurisdiction, endpoints (ip, port, transport, ISP, place, first and
last seen) and files (hash, kind, lists and categories, max_level, intent).

Examples:
  vigil targets
  vigil targets --jurisdiction fr-pp-dpj --json
  vigil targets --category 1 --limit 10
`,
		setup: func(fs *flag.FlagSet) runFunc {
			jur := fs.String("jurisdiction", "", "only targets routed to this agency `ID`")
			cat := fs.String("category", "", "only targets with a file of this list `category`")
			limit := fs.Int("limit", 50, "at most `N` targets")
			asJSON := fs.Bool("json", false, "print JSON")
			noRefresh := fs.Bool("no-refresh", false, "do not take in observations stored since the targets were computed")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				sq, err := a.targetsStore(ctx, !*noRefresh)
				if err != nil {
					return err
				}
				list, total, err := sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Jurisdiction: *jur,
					Category: *cat, Limit: *limit})
				if err != nil {
					return err
				}
				// The record names every target and address printed, and
				// is written before anything is.
				ids := make([]string, 0, len(list))
				var eps []string
				var out []targetJSON
				for _, t := range list {
					ids = append(ids, t.ID)
					if !*asJSON {
						if t.Label != "" {
							eps = append(eps, t.Label)
						}
						continue
					}
					d, err := sq.Target(ctx, t.ID, analysis.AllAgencies)
					if err != nil {
						return fmt.Errorf("target %s: %w", t.ID, err)
					}
					out = append(out, toTargetJSON(d, false))
					eps = append(eps, api.TargetEndpoints(d)...)
				}
				if err := a.auditCLI(ctx, sq, audit.ActionListTargets, "targets", map[string]any{"jurisdiction": *jur, "category": *cat,
					"total": total, "targets": ids, "endpoints": eps}); err != nil {
					return err
				}
				if *asJSON {
					if out == nil {
						out = []targetJSON{}
					}
					return writeIndentedJSON(a.stdout, out)
				}
				printTargets(a.stdout, list, total)
				return nil
			}
		},
	}
}

// targetJSON is a target as 'vigil targets --json' and 'target show --json'
// print it: the summary, with endpoints and files as lists.
type targetJSON struct {
	analysis.TargetSummary
	Endpoints []analysis.EndpointInfo `json:"endpoints"`
	Files     []analysis.FileInfo     `json:"files"`
	Links     []analysis.Link         `json:"links,omitempty"`
	// LinksWarning: a link is an inference, never an identification
	// (with the links: 'target show --json').
	LinksWarning *isp.Note                `json:"links_warning,omitempty"`
	Timeline     []analysis.TimelineEntry `json:"timeline,omitempty"`
	Leads        []analysis.Lead          `json:"leads,omitempty"`
	Shares       []analysis.Share         `json:"shares,omitempty"`
	Merged       []string                 `json:"merged_from,omitempty"`
}

func toTargetJSON(d *analysis.TargetDetail, full bool) targetJSON {
	t := targetJSON{TargetSummary: d.TargetSummary, Endpoints: d.Endpoints, Files: d.Files}
	if t.Endpoints == nil {
		t.Endpoints = []analysis.EndpointInfo{}
	}
	if t.Files == nil {
		t.Files = []analysis.FileInfo{}
	}
	if full {
		t.Links, t.Timeline, t.Leads, t.Shares, t.Merged = d.Links, d.Timeline, d.Leads, d.Shares, d.MergedFrom
		w := isp.LinksWarning()
		t.LinksWarning = &w
	}
	return t
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func levelsText(ls []analysis.LevelCount) string {
	var parts []string
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].Files > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", ls[i].Files, ls[i].Level))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func partsText(p analysis.Parts) string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return p[names[i]] > p[names[j]] })
	var out []string
	for _, n := range names {
		if p[n] != 0 {
			out = append(out, fmt.Sprintf("%s %+.1f", n, p[n]))
		}
	}
	return strings.Join(out, "; ")
}

func printTargets(w io.Writer, list []analysis.TargetSummary, total int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCORE\tJURISDICTION\tFILES BY LEVEL\tENDPOINTS\tLAST SEEN (UTC)\tLATEST ENDPOINT\tPARTS")
	for _, t := range list {
		label := t.Label
		if t.VPN {
			label += " (VPN)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.Score, orDash(t.Jurisdiction), levelsText(t.Levels),
			t.Endpoints, t.LastSeen.UTC().Format("2006-01-02 15:04"), label, partsText(t.Parts))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d of %d targets\n", len(list), total)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func targetCommand() *command {
	return &command{
		name:    "target",
		summary: "Show one target: score parts, endpoints, files, device links, timeline.",
		usage:   "vigil target show|flag|share|unlink ...",
		subs:    []*command{targetShowCommand(), targetFlagCommand(), targetShareCommand(), targetUnlinkCommand()},
	}
}

func targetShowCommand() *command {
	return &command{
		name:    "show",
		summary: "Show one target in full.",
		usage:   "vigil target show ID [--json]",
		help: `
Prints the target's score and its parts, its endpoints with ISP and place,
its files with their lists, categories and the highest possession level
reached for each, the device links with the reason for each, its associated
files (leads) and its timeline of observations, newest first. The read is
audited.

Examples:
  vigil target show T-000001-95
  vigil target show T-000001-95 --json | jq '.parts'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print JSON")
			noRefresh := fs.Bool("no-refresh", false, "do not take in observations stored since the targets were computed")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) != 1 {
					return usagef("give one target id, e.g. vigil target show T-000001-95")
				}
				sq, err := a.targetsStore(ctx, !*noRefresh)
				if err != nil {
					return err
				}
				d, err := sq.Target(ctx, args[0], analysis.AllAgencies)
				if errors.Is(err, analysis.ErrNotFound) {
					return fmt.Errorf("target %s: no such target", args[0])
				}
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionViewTarget, "target:"+d.ID, map[string]any{"endpoints": api.TargetEndpoints(d)}); err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, toTargetJSON(d, true))
				}
				printTarget(a.stdout, d)
				return nil
			}
		},
	}
}

func printTarget(w io.Writer, d *analysis.TargetDetail) {
	fmt.Fprintf(w, "Target %s  score %.1f  jurisdiction %s", d.ID, d.Score, orDash(d.Jurisdiction))
	if d.Assigned != "" {
		fmt.Fprintf(w, " (handed to %s)", d.Assigned)
	}
	fmt.Fprintf(w, "\nfirst seen %s, last seen %s UTC; %d observations on %s\n",
		d.FirstSeen.UTC().Format(time.RFC3339), d.LastSeen.UTC().Format(time.RFC3339), d.Observations, strings.Join(d.Networks, ", "))
	if d.VPN {
		fmt.Fprintln(w, "seen through a VPN exit: the place of those addresses is the exit's, not the person's")
	}
	fmt.Fprintf(w, "\nScore parts:\n  %s\n", partsText(d.Parts))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nENDPOINT\tTRANSPORT\tISP\tPLACE\tFIRST SEEN\tLAST SEEN\tSEEN\tCONFIDENCE\t")
	for _, e := range d.Endpoints {
		place := strings.Trim(strings.Join([]string{e.Country, e.Subdivision, e.City}, " / "), " /")
		flags := ""
		if e.VPN {
			flags = " VPN"
		} else if e.Hosting {
			flags = " hosting"
		}
		if !e.FirstHand {
			flags += " third-party only"
		}
		fmt.Fprintf(tw, "%s\t%s\tAS%d %s%s\t%s\t%s\t%s\t%d\t%.2f\t\n", netip.AddrPortFrom(e.IP, e.Port), e.Transport, e.ASN, inert(e.Org), flags,
			orDash(place), e.FirstSeen.UTC().Format(time.RFC3339), e.LastSeen.UTC().Format(time.RFC3339), e.Observations, e.Confidence)
	}
	fmt.Fprintln(tw, "\nFILE\tKIND\tLISTS\tLEVEL AT EACH ENDPOINT (its own)\tINTENT\tSEEN\t")
	for _, f := range d.Files {
		var lists []string
		for _, m := range f.Matched {
			lists = append(lists, m.List+":"+m.Category)
		}
		q := ""
		if f.Quarantined {
			q = " (quarantined: not scored)"
		}
		// Each level with the marks of the observations that gave it
		// (a level is never shown without what qualifies it).
		var at []string
		for _, x := range f.At {
			at = append(at, fmt.Sprintf("%s at %s%s", x.Level, x.Endpoint, marksNote(x.Marks)))
		}
		if len(at) == 0 {
			at = []string{f.MaxLevel.String() + marksNote(f.Marks)}
		}
		if !f.MarksComplete {
			q += " (marks of the observations read only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s\t%d\t\n", f.Hex, f.Kind, strings.Join(lists, ","), strings.Join(at, "; "), q, inert(f.Intent), f.Observations)
	}
	_ = tw.Flush()
	if len(d.Links) > 0 {
		fmt.Fprintln(w, "\nDevice links (identifiers can be forged: a link is an inference, never an identification;")
		fmt.Fprintln(w, "a linked endpoint's files count at its confidence and never raise another's level):")
		for _, l := range d.Links {
			// A listen-port link's evidence and reason carry the client
			// name the peer chose: quoted when it is not plain text.
			fmt.Fprintf(w, "  #%d %s %s (%s, confidence %.2f): %s\n", l.ID, l.Rule, inert(l.Evidence), l.State, l.Confidence, inert(l.Reason))
		}
	}
	if len(d.Leads) > 0 {
		fmt.Fprintln(w, "\nAssociated files for review (never matches by themselves):")
		for _, l := range d.Leads {
			fmt.Fprintf(w, "  %s  %s  %d bytes  seen %d times  %s\n", inert(l.Key), inert(l.Path), l.Size, l.Count, l.State)
		}
	}
	fmt.Fprintln(w, "\nTimeline (newest first; each line's source, first-hand or third party, and marks as the pages show them; --json gives the marks' names):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range d.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s:%s\t%s\tmarks: %s\t\n", t.Time.UTC().Format("2006-01-02T15:04:05.000Z"), t.Level, t.Method, t.Endpoint, t.Transport, t.Kind, t.Hash,
			sourceText(t.FirstHand), marksText(t.Marks))
	}
	_ = tw.Flush()
}

// sourceText is where an observation comes from, in the pages' words:
// the endpoint itself (first-hand) or a third party.
func sourceText(firstHand bool) string {
	if firstHand {
		return i18n.T("en", "source.first")
	}
	return i18n.T("en", "source.third")
}

// marksText is an observation's marks in the pages' words (a mark this
// version does not know, by its name), or "none".
func marksText(marks []string) string {
	if len(marks) == 0 {
		return "none"
	}
	out := make([]string, len(marks))
	for i, m := range marks {
		out[i] = inert(m)
		if i18n.Has("mark."+m) && i18n.Has("mark."+m+".why") {
			out[i] = i18n.T("en", "mark."+m)
		}
	}
	return strings.Join(out, ", ")
}

func ispRequestCommand() *command {
	return &command{
		name:    "isp-request",
		summary: "Prepare the ISP subscriber request (IP, port, UTC time) for a target.",
		usage:   "vigil isp-request --target ID --case NUMBER [--format csv|json|pdf] [--out DIR] [--agency ID] [--rules FILE]",
		help: `
Groups the target's first-hand contacts by ISP (ASN, organisation and
country) and writes one row per conversation of the endpoint itself with the
sensor: IP, source_port (the endpoint's port in that conversation: the port
the sensor connected to for a probe, the UDP source port of a DHT announce),
transport, direction, sensor_address (the sensor's own address:port, which
a carrier-grade NAT log needs), UTC time to the millisecond, clock offset,
method, observation_id and transcript_sha256.

Everything else goes to an annex that says why each is not a row: what a
tracker, a PEX peer or a DHT node said of the endpoint (third-party claims,
with a port someone else reported), datagrams whose source could be forged,
imports, private addresses, announces stored with their declared port,
records without the sensor's address or a transcript digest, addresses seen
at a single instant (addresses are reassigned), and sightings older than the
ISP's retention period (one year by default; --retention FILE sets it per
country). The annex also lists the device links that grouped the target's
addresses, with rule, evidence and confidence: identifiers can be forged.
The PDF holds an internal summary page and the annex, then one letter per
ISP in French and English (--lang fr|en|both) for the magistrate's
signature; the legal basis is left as a placeholder to fill.

Each letter is headed with the requesting service's name and postal
address: --agency names it (default: the agency the target is routed to),
--rules reads its name, address and contact from a jurisdiction rules file
(the agencies of the store hold name and country only); what is not known
is a placeholder to fill, never the bare agency id. An ISP in another
country than the requesting service's cannot be sent a national
requisition: its letter is in English only and says that the request goes
through mutual legal assistance, with a placeholder for the treaty.

The export needs --case (the case number it is made for): it is written
into the request and into the audit trail, before the request is.

Each row's stored observation is hashed again and compared with its leaf in
the evidence log first: a row edited in the database after it was logged
stops the request, naming the observation (docs/evidence.md, "ISP
requests").

Examples:
  vigil isp-request --target T-000001-95 --format pdf --out requests/ --case 2026/1234
  vigil isp-request --target T-000001-95 --format pdf --out requests/ --case 2026/1234 --agency fr-pp-dpj --rules example:france
  vigil isp-request --target T-000001-95 --format csv --case 2026/1234
  vigil isp-request --target T-000001-95 --format pdf --case 2026/1234 > request.pdf
`,
		setup: func(fs *flag.FlagSet) runFunc {
			id := fs.String("target", "", "target `ID` (required)")
			format := fs.String("format", "csv", "csv, json or pdf")
			out := fs.String("out", "", "write the file into `DIR` (default: standard output for csv and json)")
			lang := fs.String("lang", "both", "letter language for the PDF: fr, en or both")
			caseNo := fs.String("case", "", "the case `number` this request is made for (required; recorded in the audit trail and the request)")
			retention := fs.String("retention", "", "retention periods per country, `YAML` (default: one year everywhere)")
			agency := fs.String("agency", "", "the requesting service, an agency `ID` (default: the agency the target is routed to)")
			rulesFile := fs.String("rules", "", "jurisdiction rules `FILE` (or example:france) to read the requesting agency's name, address and contact from (default: the agencies of the store: name and country)")
			return func(ctx context.Context, a *app, args []string) error {
				if *id == "" {
					return usagef("--target is required")
				}
				purpose, err := audit.RequirePurpose(*caseNo)
				if err != nil {
					return usagef("--case: an ISP request needs the case number it is made for (%v)", err)
				}
				if *format != "csv" && *format != "json" && *format != "pdf" {
					return usagef("--format %q: want csv, json or pdf", *format)
				}
				l, err := isp.ParseLang(*lang)
				if err != nil {
					return usagef("--lang: %v", err)
				}
				if *format == "pdf" && *out == "" {
					if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
						return usagef("--format pdf to a terminal: give --out DIR or redirect standard output to a file")
					}
				}
				ret := isp.DefaultRetention()
				if *retention != "" {
					if ret, err = isp.LoadRetention(*retention); err != nil {
						return err
					}
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				var rules *jurisdiction.Rules
				if *rulesFile != "" {
					if rules, err = loadRules(*rulesFile); err != nil {
						return err
					}
				}
				req, err := buildISPRequest(ctx, sq, *id, analysis.AllAgencies, purpose, ret, time.Now(), func(routed string) (isp.Requester, error) {
					return requesterOf(ctx, sq, rules, cmp.Or(*agency, routed), *agency != "")
				})
				if err != nil {
					return err
				}
				if err := a.auditCLIPurpose(ctx, sq, audit.ActionExport, "target:"+req.Target.ID, purpose,
					map[string]any{"what": "isp-request", "format": *format, "request": req.ID, "rows": req.Kept, "endpoints": api.ISPEndpoints(&req)}); err != nil {
					return err
				}
				w := a.stdout
				var f *os.File
				if *out != "" {
					// An ISP request names suspects: private to Vigil's user.
					if err := os.MkdirAll(*out, 0o700); err != nil {
						return err
					}
					name := filepath.Join(*out, req.ID+"."+*format)
					if f, err = createPrivate(name); err != nil {
						return err
					}
					defer f.Close()
					w = f
				}
				switch *format {
				case "csv":
					err = isp.WriteCSV(w, &req)
				case "json":
					err = isp.WriteJSON(w, &req)
				case "pdf":
					err = isp.WritePDF(w, &req, l)
				}
				if err != nil {
					return err
				}
				if f != nil {
					if err := f.Close(); err != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "%s: %d rows for %d ISPs, %d sightings in the annex (not first-hand, seen once or too old)\n",
						f.Name(), req.Kept, len(req.Groups), req.Dropped)
				}
				return nil
			}
		},
	}
}

// buildISPRequest reads every sighting of a target within scope and builds
// its ISP request as the API and the pages do: only first-hand contacts
// become rows, the rest goes to the annex.
func buildISPRequest(ctx context.Context, sq backend, id string, scope analysis.Scope, caseNo string, ret isp.Retention, now time.Time,
	requester func(routed string) (isp.Requester, error)) (isp.Request, error) {
	d, err := sq.TargetWithTimeline(ctx, id, scope, 1<<20)
	if errors.Is(err, analysis.ErrNotFound) {
		return isp.Request{}, fmt.Errorf("target %s: no such target", id)
	}
	if err != nil {
		return isp.Request{}, err
	}
	by := isp.Requester{ID: d.Jurisdiction}
	if requester != nil {
		if by, err = requester(d.Jurisdiction); err != nil {
			return isp.Request{}, err
		}
	}
	// The analysis's --endpoint-window, as the targets were made with it.
	req := api.BuildISPRequestFor(d, caseNo, now, ret, by, time.Duration(analysisEndpointWindow.Load()))
	if err := api.CheckISPRows(ctx, sq, &req); err != nil {
		return isp.Request{}, err
	}
	return req, nil
}

// requesterOf is the requesting agency id as the letters name it: from
// the rules file if given, else from the store's agencies (name and
// country; the rules file also has the address). An agency named on the
// command line (explicit) must exist; the routed one may be unknown, and
// the letter then holds placeholders.
func requesterOf(ctx context.Context, sq backend, rules *jurisdiction.Rules, id string, explicit bool) (isp.Requester, error) {
	r := isp.Requester{ID: id}
	if id == "" {
		return r, nil
	}
	if rules != nil {
		ag, ok := rules.Agency(id)
		if !ok {
			if explicit {
				return r, usagef("--agency %s: not an agency of the rules file", id)
			}
			return r, nil
		}
		r.Name, r.Address, r.Contact, r.Country = ag.Name, ag.Address, ag.Contact, ag.Country
		return r, nil
	}
	ag, err := sq.Agency(ctx, id)
	switch {
	case errors.Is(err, access.ErrNotFound) && !explicit:
		return r, nil
	case errors.Is(err, access.ErrNotFound):
		return r, usagef("--agency %s: no such agency in the store ('vigil agency import --rules example:france' adds the French ones)", id)
	case err != nil:
		return r, err
	}
	r.Name, r.Country, r.Address = ag.Name, ag.Country, ag.Address
	return r, nil
}

// targetsStore opens the store and, if refresh, brings the targets up to
// date with the observations stored since they were last computed.
func (a *app) targetsStore(ctx context.Context, refresh bool) (backend, error) {
	sq, err := a.backendStore(ctx)
	if err != nil {
		return nil, err
	}
	if refresh {
		e, err := startAnalysis(ctx, a.log, sq, nil)
		if err != nil {
			return nil, err
		}
		if err := e.Flush(ctx); err != nil {
			return nil, err
		}
	}
	return sq, nil
}

// marksNote is " [mark,mark]" for the marks behind a level, "" for none.
func marksNote(marks []string) string {
	if len(marks) == 0 {
		return ""
	}
	return " [" + inert(strings.Join(marks, ",")) + "]"
}
