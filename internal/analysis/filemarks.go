package analysis

import (
	"net/netip"
	"slices"
)

// AttachFileMarks fills each file's Marks and MarksComplete, and each of
// its At's Marks, from d.Timeline: the marks of the observations of the
// file at that endpoint credited with the level the endpoint reached
// (observe's CreditedLevel, the rule the analysis folds levels by), and
// for the file those of the endpoints at its MaxLevel. A timeline entry
// belongs to the generation of its IP:port (d.Endpoints) whose span holds
// its time. It reads nothing: a store calls it once the detail's files
// and timeline are read, so both stores show the same marks.
func (d *TargetDetail) AttachFileMarks() {
	type fileEp struct {
		file, ep string
	}
	marks := map[fileEp][]string{}
	seen := map[string]int{} // timeline entries by file
	levels := map[fileEp]int{}
	for i := range d.Files {
		f := &d.Files[i]
		for j := range f.At {
			levels[fileEp{f.Kind + ":" + f.Hex, f.At[j].Endpoint}] = int(f.At[j].Level)
		}
	}
	for i := range d.Timeline {
		t := &d.Timeline[i]
		file := t.Kind + ":" + t.Hash
		seen[file]++
		ep := d.endpointKeyAt(t)
		k := fileEp{file, ep}
		lvl, ok := levels[k]
		if !ok {
			continue
		}
		o := t.Observation()
		if int(o.CreditedLevel()) != lvl {
			continue
		}
		marks[k] = append(marks[k], t.Marks...)
	}
	for i := range d.Files {
		f := &d.Files[i]
		file := f.Kind + ":" + f.Hex
		f.Marks = []string{}
		for j := range f.At {
			at := &f.At[j]
			at.Marks = sortedMarks(marks[fileEp{file, at.Endpoint}])
			if at.Level == f.MaxLevel {
				f.Marks = append(f.Marks, at.Marks...)
			}
		}
		f.Marks = sortedMarks(f.Marks)
		f.MarksComplete = seen[file] >= f.Observations
	}
}

// endpointKeyAt is the EndpointKey of the endpoint of d that t was
// folded into: the generation of its IP:port whose span holds its time
// ("" when none does).
func (d *TargetDetail) endpointKeyAt(t *TimelineEntry) string {
	ap, err := netip.ParseAddrPort(t.Endpoint)
	if err != nil {
		return ""
	}
	for _, e := range d.Endpoints {
		if e.IP.Unmap() == ap.Addr().Unmap() && e.Port == ap.Port() && !t.Time.Before(e.FirstSeen) && !t.Time.After(e.LastSeen) {
			return EndpointKey(netip.AddrPortFrom(e.IP, e.Port), e.Gen)
		}
	}
	return ""
}

// sortedMarks returns ms sorted without repeats, never nil (a JSON reader
// sees [] for none).
func sortedMarks(ms []string) []string {
	out := slices.Clone(ms)
	if out == nil {
		return []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
