package access

import (
	"strings"
	"sync"
	"unicode"

	"github.com/trustelem/zxcvbn/frequency"
)

// The list of common and breached passwords is zxcvbn's (Dropbox):
// the 30,000 most frequent passwords of Xato's corpus of ten million
// leaked passwords, as the Go module github.com/trustelem/zxcvbn (MIT)
// ships it compiled in. Nothing is fetched at run time.
var (
	commonOnce sync.Once
	common     map[string]struct{}
)

func commonSet() map[string]struct{} {
	commonOnce.Do(func() {
		l := frequency.FrequencyLists["passwords"]
		common = make(map[string]struct{}, len(l))
		for _, p := range l {
			common[p] = struct{}{}
		}
	})
	return common
}

// MinDistinct is the fewest different characters a password may have.
const MinDistinct = 5

// CommonPassword says why pw is too guessable, or "" when it is not:
// it is in the list of common and breached passwords, or is one of them
// with digits and symbols added around it, or repeats one short piece
// ("abcabcabcabc"), or has fewer than MinDistinct different characters
// ("aaaaaaaaaaaa"), or is a run of consecutive characters
// ("123456789012", "abcdefghijkl"). Letter case does not matter.
func CommonPassword(pw string) string {
	lower := strings.ToLower(pw)
	set := commonSet()
	if _, ok := set[lower]; ok {
		return "it is in a list of common and breached passwords"
	}
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if _, ok := set[core]; ok && len(core) >= 4 {
		return "it is a common or breached password with digits or symbols added"
	}
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < MinDistinct {
		return "it has fewer than 5 different characters"
	}
	rs := []rune(lower)
	for n := 1; n <= len(rs)/2; n++ {
		if len(rs)%n == 0 && strings.Repeat(string(rs[:n]), len(rs)/n) == lower {
			return "it repeats one short piece"
		}
	}
	if run(rs, 1) || run(rs, -1) {
		return "it is a run of consecutive characters"
	}
	return ""
}

// run says whether each character of rs follows the one before by step
// (digits wrap: "…7890123").
func run(rs []rune, step rune) bool {
	for i := 1; i < len(rs); i++ {
		d := rs[i] - rs[i-1]
		if d != step && !(unicode.IsDigit(rs[i]) && unicode.IsDigit(rs[i-1]) && (d == step-10 || d == step+10)) {
			return false
		}
	}
	return true
}
