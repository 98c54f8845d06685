package analysis

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestTargetIDsCanBeReadAloud: ids are digits only, of one width, with a
// check that catches a misheard digit or two swapped ones, and they sort
// as their numbers (the old base-32 ids put T-10 before T-7 and mixed O/0
// and I/1 look-alikes).
func TestTargetIDsCanBeReadAloud(t *testing.T) {
	if got, want := TargetID(42), "T-000042-"; !strings.HasPrefix(got, want) || len(got) != len("T-000042-69") {
		t.Fatalf("TargetID(42) = %q, want %s and two check digits", got, want)
	}
	var ids []string
	for n := int64(1); n <= 2000; n++ {
		id := TargetID(n)
		if strings.Trim(id[2:], "0123456789-") != "" || len(id) != 11 {
			t.Fatalf("%d: %q is not digits of one width", n, id)
		}
		ids = append(ids, id)
		d := []byte(id)
		for i := 2; i < len(d); i++ {
			if d[i] == '-' {
				continue
			}
			for c := byte('0'); c <= '9'; c++ {
				if c == id[i] {
					continue
				}
				e := slices.Clone(d)
				e[i] = c
				if m, ok := ParseTargetID(string(e)); ok {
					t.Fatalf("%s with one digit changed (%s) still reads as %d", id, e, m)
				}
			}
			if j := i + 1; j < len(d) && d[j] != '-' && d[j] != d[i] {
				e := slices.Clone(d)
				e[i], e[j] = e[j], e[i]
				if m, ok := ParseTargetID(string(e)); ok {
					t.Fatalf("%s with two digits swapped (%s) still reads as %d", id, e, m)
				}
			}
		}
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids do not sort as their numbers")
	}
	for in, want := range map[string]int64{" t-000042-69 ": 42, "T-42-69": 42, "T-1": 1, "T-A": 10, "T-V": 31, "T-10": 32} {
		if TargetID(42) != "T-000042-69" {
			t.Fatalf("TargetID(42) = %s, want T-000042-69", TargetID(42))
		}
		if got, ok := ParseTargetID(in); !ok || got != want {
			t.Errorf("ParseTargetID(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"T-000042", "T-000042-3", "T-000042-68", "T-000000-98", "T-ABCDEF", "T-0000O1-00", "T--", "T-1-"} {
		if n, ok := ParseTargetID(bad); ok {
			t.Errorf("ParseTargetID(%q) = %d, accepted", bad, n)
		}
	}
	if c, ok := CanonicalTargetID("T-10"); !ok || c != TargetID(32) {
		t.Errorf("legacy T-10 canonical %q, %v; want %s", c, ok, TargetID(32))
	}
}

func FuzzParseTargetID(f *testing.F) {
	for _, s := range []string{"T-000042-69", "T-1", "T-10", "t-42-37", "T-000000-98", "T-" + strconv.Itoa(1<<30) + "-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseTargetID(s)
		if !ok {
			return
		}
		if n <= 0 {
			t.Fatalf("%q parsed to %d", s, n)
		}
		if m, ok := ParseTargetID(TargetID(n)); !ok || m != n {
			t.Fatalf("%q: %d does not round-trip through %s", s, n, TargetID(n))
		}
	})
}
