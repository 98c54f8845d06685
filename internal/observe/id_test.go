package observe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewIDCarriesItsTime(t *testing.T) {
	tests := []time.Time{
		time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC),
		time.Date(2030, 1, 1, 0, 0, 0, 999999999, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("CET", 3600)),
		time.Unix(0, 0),
	}
	for _, at := range tests {
		id := NewID(at)
		got, err := IDTime(id)
		if err != nil {
			t.Fatalf("IDTime(%q): %v", id, err)
		}
		// 12 bits of millisecond fraction: the id keeps t to within 245 ns.
		if d := at.Sub(got); d < 0 || d > 245*time.Nanosecond {
			t.Fatalf("IDTime(NewID(%v)) = %v, off by %v", at, got, d)
		}
		if id[14] != '7' {
			t.Fatalf("NewID(%v) = %q: version nibble %c, want 7", at, id, id[14])
		}
		if v := id[19]; v != '8' && v != '9' && v != 'a' && v != 'b' {
			t.Fatalf("NewID(%v) = %q: variant nibble %c, want 8-b", at, id, v)
		}
	}
}

func TestNewIDIsStrictlyIncreasingForOneTime(t *testing.T) {
	at := time.Date(2026, 11, 23, 13, 34, 13, 0, time.UTC)
	prev := NewID(at)
	for i := 0; i < 10000; i++ {
		id := NewID(at)
		if id <= prev {
			t.Fatalf("id %d: %q after %q: not increasing", i, id, prev)
		}
		prev = id
	}
}

func TestNewIDOrdersByTime(t *testing.T) {
	base := time.Date(2026, 11, 23, 13, 34, 13, 0, time.UTC)
	prev := NewID(base)
	for i := 1; i < 5000; i++ {
		// Steps of 250 ns, 1 µs and 1 ms all land in later id time steps.
		at := base.Add(time.Duration(i) * 250 * time.Nanosecond)
		id := NewID(at)
		if id <= prev {
			t.Fatalf("NewID(%v) = %q, not after %q", at, id, prev)
		}
		prev = id
	}
	if early, late := NewID(base.Add(-time.Second)), NewID(base.Add(time.Second)); early >= late {
		t.Fatalf("id a second earlier %q sorts after id a second later %q", early, late)
	}
}

func TestNewIDUniqueAcrossGoroutines(t *testing.T) {
	at := time.Date(2026, 11, 23, 13, 34, 13, 0, time.UTC)
	const workers, each = 4, 2000
	ch := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				ch <- NewID(at)
			}
		}()
	}
	seen := make(map[string]bool, workers*each)
	for i := 0; i < workers*each; i++ {
		id := <-ch
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestIDTimeRejectsOtherForms(t *testing.T) {
	tests := []struct{ name, id string }{
		{"empty", ""},
		{"uuid-v4", "1b4e28ba-2fa1-41d2-883f-0016d3cca427"},
		{"no-dashes", "0190a6f8c1237abc8def0123456789ab"},
		{"bad-hex", "0190a6f8-c123-7abc-8def-0123456789zz"},
		{"bad-variant", "0190a6f8-c123-7abc-cdef-0123456789ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := IDTime(tt.id); !errors.Is(err, ErrBadID) {
				t.Fatalf("IDTime(%q) error = %v, want ErrBadID", tt.id, err)
			}
		})
	}
}

// TestIDBytes: an id in canonical form reads as its bytes and FormatID
// gives it back; any other string (upper case, no dashes, too short, not
// hex) is not read.
func TestIDBytes(t *testing.T) {
	id := NewID(time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC))
	b, ok := IDBytes(id)
	if !ok || FormatID(b) != id {
		t.Fatalf("IDBytes(%q) = %x, %v; FormatID gives %q", id, b, ok, FormatID(b))
	}
	for _, s := range []string{"", "obs-1", strings.ToUpper(id), strings.ReplaceAll(id, "-", ""), id[:35], id[:35] + "g", id + "0",
		id[:8] + "x" + id[9:]} {
		if b, ok := IDBytes(s); ok {
			t.Errorf("IDBytes(%q) = %x, true; want false", s, b)
		}
	}
}

// FuzzIDBytes: whatever IDBytes reads, FormatID writes back exactly.
func FuzzIDBytes(f *testing.F) {
	f.Add("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	f.Add("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B")
	f.Add("obs-1")
	f.Fuzz(func(t *testing.T, s string) {
		if b, ok := IDBytes(s); ok && FormatID(b) != s {
			t.Fatalf("IDBytes(%q) = %x; FormatID gives %q", s, b, FormatID(b))
		}
	})
}
