package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func base() Record {
	return Record{Seq: 7, Time: time.Date(2026, 11, 3, 9, 0, 0, 1, time.UTC), Actor: "ab", ActorAgency: "c", Role: "investigator",
		Remote: "127.0.0.1:1", Action: ActionExport, Object: "target:1", Purpose: "PV 1", Detail: json.RawMessage(`{"n":1}`), PrevHash: []byte{1, 2}}
}

func TestHashCoversEveryField(t *testing.T) {
	h0 := ComputeHash(&[]Record{base()}[0])
	muts := map[string]func(r *Record){
		"seq":       func(r *Record) { r.Seq++ },
		"time":      func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) },
		"actor":     func(r *Record) { r.Actor = "ax" },
		"agency":    func(r *Record) { r.ActorAgency = "x" },
		"role":      func(r *Record) { r.Role = "analyst" },
		"remote":    func(r *Record) { r.Remote = "127.0.0.1:2" },
		"action":    func(r *Record) { r.Action = ActionViewTarget },
		"object":    func(r *Record) { r.Object = "target:2" },
		"purpose":   func(r *Record) { r.Purpose = "PV 2" },
		"detail":    func(r *Record) { r.Detail = json.RawMessage(`{"n":2}`) },
		"prev_hash": func(r *Record) { r.PrevHash = []byte{1, 3} },
		// Length prefixes: moving a byte from one field to the next changes the hash.
		"boundary": func(r *Record) { r.Actor, r.ActorAgency = "a", "bc" },
	}
	for name, m := range muts {
		r := base()
		m(&r)
		if bytes.Equal(ComputeHash(&r), h0) {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
	r := base()
	r.Hash = []byte("ignored")
	if !bytes.Equal(ComputeHash(&r), h0) {
		t.Error("the hash covers itself")
	}
}

func TestRequirePurpose(t *testing.T) {
	for in, want := range map[string]string{
		"  PV 2026/00123 ": "PV 2026/00123", "": "", "   ": "", "ab": "", "PV\x00123": "", strings.Repeat("x", MaxPurpose+1): "",
		"Procès-verbal 12": "Procès-verbal 12",
	} {
		got, err := RequirePurpose(in)
		if want == "" {
			if !errors.Is(err, ErrNoPurpose) {
				t.Errorf("RequirePurpose(%q) = %q, %v; want ErrNoPurpose", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("RequirePurpose(%q) = %q, %v", in, got, err)
		}
	}
}

func TestDetailNeverDropsAValue(t *testing.T) {
	if d := Detail(map[string]any{"f": func() {}}); !strings.Contains(string(d), "unencodable_detail") {
		t.Fatalf("unencodable detail: %s", d)
	}
}

// One value that cannot be encoded must not take the record's other
// values with it: the targets and endpoints a page showed stay in the
// trail beside the one bad value. (Before: the whole detail became
// {"unencodable_detail": ...}.)
func TestDetailKeepsEveryEncodableValue(t *testing.T) {
	type shown struct {
		Targets []string `json:"targets"`
		Score   float64  `json:"score"`
		Hook    func()   `json:"hook"`
		private int
	}
	d := Detail(map[string]any{
		"targets":   []string{"T-1", "T-2"},
		"endpoints": []any{"127.0.0.1:6881", make(chan int)},
		"bad":       func() {},
		"nested":    shown{Targets: []string{"T-3"}, Score: math.NaN()},
		"count":     30,
	})
	var got map[string]any
	if err := json.Unmarshal(d, &got); err != nil {
		t.Fatalf("detail is not JSON: %v: %s", err, d)
	}
	for _, want := range []string{`"T-1"`, `"T-2"`, `"127.0.0.1:6881"`, `"T-3"`, `"count":30`, `"NaN"`} {
		if !strings.Contains(string(d), want) {
			t.Errorf("detail lost %s: %s", want, d)
		}
	}
	for _, k := range []string{"bad", "endpoints", "nested"} {
		if !strings.Contains(string(d), "unencodable_detail") || got[k] == nil {
			t.Errorf("detail: %s missing or not explained: %s", k, d)
		}
	}
	if strings.Count(string(d), "unencodable_detail") != 3 {
		t.Errorf("want exactly the 3 bad values replaced (func, chan, func field): %s", d)
	}
	// Encodable details are written exactly as json.Marshal writes them.
	v := map[string]any{"a": []int{1, 2}, "b": "x"}
	want, _ := json.Marshal(v)
	if got := Detail(v); string(got) != string(want) {
		t.Errorf("Detail(%v) = %s, want %s", v, got, want)
	}
}
