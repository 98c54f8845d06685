package figures

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// CSVHeader is the first line of WriteCSV's output; the group column is
// there only when the report is grouped.
func CSVHeader(grouped bool) []string {
	h := []string{"period"}
	if grouped {
		h = append(h, "group")
	}
	return append(h, "observations", "unique_addresses", "unique_devices",
		"observations_change_pct", "unique_addresses_change_pct", "unique_devices_change_pct", "estimated", "suppressed")
}

// WriteCSV writes the report's rows. A suppressed figure, or a change
// that cannot be given, is an empty field; the suppressed column names the
// figures left out (separated by ';'), and estimated says whether the
// unique counts are HyperLogLog estimates.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	grouped := r.Group != All
	if err := cw.Write(CSVHeader(grouped)); err != nil {
		return err
	}
	for _, row := range r.Rows {
		rec := []string{row.Period}
		if grouped {
			rec = append(rec, SafeCell(GroupLabel(row.Group)))
		}
		rec = append(rec, Int(row.Observations), Int(row.UniqueAddresses), Int(row.UniqueDevices),
			Pct(row.ObservationsChange), Pct(row.UniqueAddressesChange), Pct(row.UniqueDevicesChange),
			strconv.FormatBool(row.Estimated), strings.Join(row.Suppressed, ";"))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// GroupLabel is how a group is printed: "-" for an unknown value.
func GroupLabel(g string) string {
	if g == "" {
		return "-"
	}
	return g
}

// Int prints a figure, "" when suppressed.
func Int(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

// Pct prints a change with its sign, "" when there is none.
func Pct(v *float64) string {
	if v == nil {
		return ""
	}
	s := strconv.FormatFloat(*v, 'f', 1, 64)
	if *v >= 0 {
		s = "+" + s
	}
	return s
}

// SafeCell keeps a spreadsheet from reading free text (a group's label: a
// watch-list category, a service's or an operation's name) as a formula:
// a cell starting with = + - @, a tab or a carriage return is prefixed
// with an apostrophe. "-" alone, the unknown group's label, is no formula
// and is left as it is.
func SafeCell(s string) string {
	if s != "" && s != "-" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
