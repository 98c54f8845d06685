package audit

import (
	"bytes"
	"encoding/json"
	"errors"
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
