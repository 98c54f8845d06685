package bencode

import (
	"bytes"
	"errors"
	"testing"
)

func TestIntReadsCanonicalIntegers(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"i0e", 0},
		{"i42e", 42},
		{"i-42e", -42},
		{"i9223372036854775807e", 9223372036854775807},
		{"i-9223372036854775808e", -9223372036854775808},
	}
	for _, tt := range tests {
		got, next, err := Int([]byte(tt.in), 0)
		if err != nil {
			t.Fatalf("Int(%q): %v", tt.in, err)
		}
		if got != tt.want || next != len(tt.in) {
			t.Fatalf("Int(%q) = %d, %d; want %d, %d", tt.in, got, next, tt.want, len(tt.in))
		}
	}
}

func TestReadersRejectMalformedInput(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"int-leading-zero", "i03e", ErrNonCanonical},
		{"int-negative-zero", "i-0e", ErrNonCanonical},
		{"int-empty", "ie", ErrSyntax},
		{"int-only-minus", "i-e", ErrSyntax},
		{"int-unterminated", "i12", ErrTruncated},
		{"int-overflow", "i9223372036854775808e", ErrIntRange},
		{"int-negative-overflow", "i-9223372036854775809e", ErrIntRange},
		{"int-twenty-digits", "i12345678901234567890e", ErrIntRange},
		{"int-letter", "i1xe", ErrSyntax},
		{"string-leading-zero", "03:abc", ErrNonCanonical},
		{"string-claims-too-much", "5:abc", ErrTruncated},
		{"string-huge-length", "9999999999:a", ErrIntRange},
		{"string-no-colon", "3abc", ErrSyntax},
		{"list-unterminated", "li1e", ErrTruncated},
		{"dict-int-key", "di1ei2ee", ErrSyntax},
		{"dict-key-no-value", "d1:ae", ErrSyntax},
		{"unknown-type", "x", ErrSyntax},
		{"empty", "", ErrTruncated},
		{"trailing", "i1ei2e", ErrTrailing},
		{"too-deep", "lllllleeeeee", ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Valid([]byte(tt.in), 5)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Valid(%q) = %v, want %v", tt.in, err, tt.want)
			}
			if _, err := Decode([]byte(tt.in), 5); !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestStringAliasesInputWithoutSpareCapacity(t *testing.T) {
	in := []byte("4:spami1e")
	s, next, err := String(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(s), "spam"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got, want := next, 6; got != want {
		t.Fatalf("next = %d, want %d", got, want)
	}
	// An append to the returned slice must not overwrite the input.
	_ = append(s, 'X')
	if got, want := string(in), "4:spami1e"; got != want {
		t.Fatalf("input changed to %q", got)
	}
}

func TestDecodeAppendRoundTripKeepsBytes(t *testing.T) {
	for _, in := range []string{
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
		"l0:i-1ed1:zi0e1:ale1:bdeee",
		"d2:zzi1e2:aai2ee", // unsorted keys are kept in input order
	} {
		v, err := Decode([]byte(in), 8)
		if err != nil {
			t.Fatalf("Decode(%q): %v", in, err)
		}
		out, err := Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), in; got != want {
			t.Fatalf("round trip = %q, want %q", got, want)
		}
	}
}

func TestDictGetFindsKey(t *testing.T) {
	v, err := Decode([]byte("d1:ai1e1:b3:xyze"), 2)
	if err != nil {
		t.Fatal(err)
	}
	d := v.(Dict)
	got, ok := d.Get("b")
	if !ok || !bytes.Equal(got.([]byte), []byte("xyz")) {
		t.Fatalf("Get(b) = %v, %v", got, ok)
	}
	if _, ok := d.Get("c"); ok {
		t.Fatal("Get(c) found a missing key")
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"i42e", "4:spam", "l4:spami42ee", "d3:bar4:spam3:fooi42ee", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", "i-0e", "03:abc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := Decode(in, 16)
		if verr := Valid(in, 16); (verr == nil) != (err == nil) {
			t.Fatalf("Valid = %v but Decode = %v", verr, err)
		}
		if err != nil {
			return
		}
		out, err := Append(nil, v)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip changed %q to %q", in, out)
		}
	})
}
