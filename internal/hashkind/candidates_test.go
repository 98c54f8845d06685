package hashkind

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCandidatesTriesEveryKindOfTheLength(t *testing.T) {
	kinds := func(hs []Hash) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Kind().String())
		}
		return out
	}
	tests := []struct {
		name, in string
		hint     Kind
		want     []string
	}{
		{"40-hex", strings.Repeat("6a", 20), Unknown, []string{"sha1", "btih"}},
		{"64-hex", strings.Repeat("b0", 32), Unknown, []string{"sha256", "btih2", "btv2"}},
		{"32-hex-no-longer-ambiguous", strings.Repeat("31", 16), Unknown, []string{"md5", "ed2k"}},
		{"48-hex", strings.Repeat("0f", 24), Unknown, []string{"tth"}},
		{"32-base32", strings.Repeat("Z", 32), Unknown, []string{"sha1", "btih"}},
		{"32-hex-or-base32", strings.Repeat("A", 32), Unknown, []string{"md5", "ed2k", "sha1", "btih"}},
		{"hint-decides", strings.Repeat("6a", 20), BTIH, []string{"btih"}},
		{"prefix-decides", "btih:" + strings.Repeat("6a", 20), Unknown, []string{"btih"}},
		{"urn-decides", "urn:btih:" + strings.Repeat("6a", 20), Unknown, []string{"btih"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := Candidates(tt.in, tt.hint)
			if err != nil {
				t.Fatal(err)
			}
			got := kinds(hs)
			want := tt.want
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Candidates(%s) kinds = %v, want %v", tt.in, got, want)
			}
			for _, h := range hs {
				if h.Kind().Size() == hs[0].Kind().Size() && h.Hex() != hs[0].Hex() {
					t.Fatalf("candidates differ in digest: %s vs %s", h.Hex(), hs[0].Hex())
				}
			}
		})
	}
}

func TestCandidatesExplainsJunk(t *testing.T) {
	if _, err := Candidates("abc", Unknown); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Candidates(abc) = %v, want ErrSyntax", err)
	}
}
