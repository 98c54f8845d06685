package i18n

import (
	"math"
	"strconv"
	"time"
)

// The one formatter of numbers and times that pages, row writers and the
// live script's labels go through. English writes 12,345.6; French writes
// 12 345,6 with a narrow no-break space (U+202F) between thousands and a
// decimal comma. Times are written in ISO 8601 order in both languages
// (2026-12-06 14:03:09 CET): a screenshot passed between services in two
// countries must not leave day and month to be guessed; the decimal sign
// of milliseconds follows the language, as ISO 8601 allows. Identifiers
// that are numbers (ports, AS numbers, years, versions) are not quantities
// and never go through it.

// NarrowNBSP is the narrow no-break space of French typography: between
// thousands, and before : ; ! ? and inside « ».
const NarrowNBSP = "\u202f"

// separators returns the thousands separator and the decimal sign of lang.
func separators(lang string) (thousands, decimal string) {
	if Pick(lang) == "fr" {
		return NarrowNBSP, ","
	}
	return ",", "."
}

// AppendInt appends n with lang's thousands separator.
func AppendInt(b []byte, lang string, n int64) []byte {
	th, _ := separators(lang)
	var digits [24]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	if d[0] == '-' {
		b = append(b, '-')
		d = d[1:]
	}
	return appendGrouped(b, d, th)
}

func appendGrouped(b, digits []byte, sep string) []byte {
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b = append(b, sep...)
		}
		b = append(b, c)
	}
	return b
}

// Int is AppendInt as a string.
func Int(lang string, n int) string { return string(AppendInt(nil, lang, int64(n))) }

// AppendFloat appends f rounded to prec decimals with lang's thousands
// separator and decimal sign. NaN and infinities are written as Go writes
// them; -0 is written as 0.
func AppendFloat(b []byte, lang string, f float64, prec int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendFloat(b, f, 'f', prec, 64)
	}
	th, dec := separators(lang)
	var buf [64]byte
	s := strconv.AppendFloat(buf[:0], f, 'f', prec, 64)
	if s[0] == '-' {
		s = s[1:]
		if !allZero(s) {
			b = append(b, '-')
		}
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	b = appendGrouped(b, intPart, th)
	if len(frac) > 0 {
		b = append(b, dec...)
		b = append(b, frac...)
	}
	return b
}

func allZero(s []byte) bool {
	for _, c := range s {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

// Float is AppendFloat as a string.
func Float(lang string, f float64, prec int) string { return string(AppendFloat(nil, lang, f, prec)) }

// AppendTime appends t, in its own location, as "2006-01-02 15:04:05 MST",
// with milliseconds after lang's decimal sign when ms is true. The zero
// time appends nothing.
func AppendTime(b []byte, lang string, t time.Time, ms bool) []byte {
	if t.IsZero() {
		return b
	}
	layout := "2006-01-02 15:04:05 MST"
	if ms {
		layout = "2006-01-02 15:04:05.000 MST"
		if _, dec := separators(lang); dec == "," {
			layout = "2006-01-02 15:04:05,000 MST"
		}
	}
	return t.AppendFormat(b, layout)
}

// Time is AppendTime as a string.
func Time(lang string, t time.Time, ms bool) string { return string(AppendTime(nil, lang, t, ms)) }

// Date is the day of t, in its own location ("2006-01-02"; "" for the zero
// time), in both languages.
func Date(lang string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}

// DayMonth is the short day of t, in its own location, for a chart's
// axis: "17/11" in French, "11-17" (month first, as in ISO 8601) in
// English.
func DayMonth(lang string, t time.Time) string {
	if Pick(lang) == "fr" {
		return t.Format("02/01")
	}
	return t.Format("01-02")
}
