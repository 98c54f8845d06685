package accuracy

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one indented JSON object.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func pct(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*x)
}

func count(n int) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// WriteText writes the report as tables (docs/accuracy.md defines each
// column).
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	item := "torrent"
	if r.Network == NetworkED2K {
		item = "file"
		fmt.Fprintf(w, "Vigil accuracy on the hostile eD2K and Kad lab: seed %d, sensor ran %v, movers moved half-way\n", r.Seed, r.Duration)
	} else {
		fmt.Fprintf(w, "Vigil accuracy on the hostile lab: seed %d, sensor ran %v, second half stamped %v later, %d forged DHT replies sent\n",
			r.Seed, r.Duration, r.Shift, r.Forged)
	}
	var kinds []string
	for _, k := range sortedKeys(r.Devices) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.Devices[k]))
	}
	fmt.Fprintf(w, "devices: %s\n", strings.Join(kinds, ", "))
	table := func(title, first string, rows []Row) {
		fmt.Fprintf(tw, "\n%s\n", title)
		p("%s\tobservations\ttrue\tfalse\tFP rate\tabove held\tdetectable\tdetected\trecall\t\n", first)
		for _, x := range rows {
			detected := count(x.Detected)
			if x.Detectable < 0 {
				detected = "-"
			}
			p("%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t\n", x.Name, x.Observations, x.TruePos, x.FalsePos, pct(x.FPRate),
				x.AboveHeld, count(x.Detectable), detected, pct(x.Recall))
		}
		tw.Flush()
	}
	table("Observations by possession level (true, false: against what the device showed on the wire)", "level", r.Levels)
	table("Observations by method", "method", r.Methods)
	fmt.Fprintln(w, "\nFalse observations by reason")
	for _, k := range sortedKeys(r.FalseBy) {
		p("  %s\t%d\t\n", k, r.FalseBy[k])
	}
	tw.Flush()
	fmt.Fprintln(w, "\nFalse observations by the kind of device they were about (\"(none)\": no device, or the sensor)")
	for _, k := range sortedKeys(r.FalseByKind) {
		name := k
		if name == "" {
			name = "(none)"
		}
		p("  %s\t%d\t\n", name, r.FalseByKind[k])
	}
	tw.Flush()
	fmt.Fprintln(w, "\nFalse observations by level, reason and device kind")
	for _, k := range sortedKeys(r.FalseDetail) {
		p("  %s\t%d\t\n", k, r.FalseDetail[k])
	}
	tw.Flush()
	fmt.Fprintln(w, "\nDevice links by rule (active links; withdrawn ones apart)")
	p("rule\tmade\tcorrect\twrong\tFP rate\twithdrawn\t\n")
	for _, l := range r.Links {
		p("%s\t%d\t%d\t%d\t%s\t%d\t\n", l.Rule, l.Made, l.Correct, l.Wrong, pct(l.FPRate), l.Withdrawn)
	}
	tw.Flush()
	for _, l := range r.WrongLinks {
		fmt.Fprintf(w, "  wrong: %s\n", l)
	}
	fmt.Fprintln(w, "\nISP request rows (every target's request)")
	var why []string
	for _, k := range sortedKeys(r.ISP.WrongBy) {
		why = append(why, fmt.Sprintf("%s %d", k, r.ISP.WrongBy[k]))
	}
	p("rows\tright\twrong\tFP rate\t\n%d\t%d\t%d\t%s\t\n", r.ISP.Rows, r.ISP.Right, r.ISP.Wrong, pct(r.ISP.FPRate))
	tw.Flush()
	if len(why) > 0 {
		fmt.Fprintf(w, "  wrong rows: %s\n", strings.Join(why, ", "))
	}
	t := r.Targets
	fmt.Fprintf(w, "\nTargets: %d; one device %d, mixed devices %d, no device %d (the sensor's own address only: %d); of a device that never had any of its files %d\n",
		t.Targets, t.OneDevice, t.Mixed, t.NoDevice, t.SensorItself, t.NeverHad)
	for _, m := range t.MixedDevices {
		fmt.Fprintf(w, "  mixed: %s\n", m)
	}
	fmt.Fprintf(w, "Devices seen at several endpoints: %d, of which all in one target: %d\n", t.Movers, t.Joined)
	unit := "pieces"
	if r.Network == NetworkED2K {
		unit = "parts"
	}
	fmt.Fprintf(w, "\nDevices: what each showed and held, what was recorded (%s -1: %ss it never had)\n", item, item)
	p("device\tkind\t%s\tshown\tshown %s\theld\tof\tobservations\tfalse\tmax recorded\tmax %s\t\n", item, unit, unit)
	for _, d := range r.DeviceRows {
		rec := d.MaxRecorded
		if rec == "" {
			rec = "-"
		}
		p("%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", d.Device, d.Kind, d.Torrent, d.Shown, count(d.ShownPieces),
			count(d.HeldPieces), d.Pieces, d.Observations, d.False, rec, count(d.MaxPieces))
	}
	return tw.Flush()
}
