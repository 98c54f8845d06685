package rowcodec

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A file seen at two endpoints is one file: the highest level, the
// earliest known first sighting (an unknown one, 0, never wins), the
// latest last, the observations added, "sharing" if either shared; files
// come highest level first, each one's endpoints highest level first.
func TestTargetFilesFoldsOneFileAcrossEndpoints(t *testing.T) {
	a := hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	b := hashkind.MustNew(hashkind.SHA1, append(make([]byte, 19), 1))
	var tf TargetFiles
	rows := []struct {
		r  FileRow
		at analysis.FileAt
	}{
		{FileRow{Hash: a, Matched: "[]", Level: int64(observe.Announced), Intent: "looking", FirstNS: 0, LastNS: 50, Observations: 1}, analysis.FileAt{Endpoint: "1.2.3.4:1", Level: observe.Announced}},
		{FileRow{Hash: a, Matched: "[]", Level: int64(observe.Complete), Intent: "sharing", FirstNS: 20, LastNS: 40, Observations: 2}, analysis.FileAt{Endpoint: "1.2.3.5:1", Level: observe.Complete}},
		{FileRow{Hash: b, Matched: `[{"list":"l","category":"c"}]`, Level: int64(observe.Partial), Intent: "sharing", FirstNS: 10, LastNS: 10, Observations: 1}, analysis.FileAt{Endpoint: "1.2.3.4:1", Level: observe.Partial}},
	}
	for _, r := range rows {
		if err := tf.Add(r.r, r.at); err != nil {
			t.Fatal(err)
		}
	}
	got := tf.Sorted()
	if len(got) != 2 || got[0].Hash != a || got[1].Hash != b {
		t.Fatalf("files %+v, want a (complete) then b (partial)", got)
	}
	f := got[0]
	if f.MaxLevel != observe.Complete || f.Observations != 3 || f.Intent != "sharing" || f.FirstSeen.UnixNano() != 20 || f.LastSeen.UnixNano() != 50 {
		t.Fatalf("a folded as %+v", f)
	}
	if len(f.At) != 2 || f.At[0].Endpoint != "1.2.3.5:1" || f.At[1].Endpoint != "1.2.3.4:1" {
		t.Fatalf("a's endpoints %+v, want the complete one first", f.At)
	}
	if len(got[1].Matched) != 1 || got[1].Matched[0].List != "l" {
		t.Fatalf("b's matches %+v", got[1].Matched)
	}
}
