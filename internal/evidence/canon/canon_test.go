package canon

import (
	"errors"
	"testing"
)

func TestForm(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"b":1,"a":"x"}`, `{"a":"x","b":1}`},
		{`{"a":"","b":null,"c":[],"d":{},"e":0,"f":false}`, `{"e":0,"f":false}`},
		{`{"n":1.50,"m":-0,"e":1e3}`, `{"e":1e3,"m":-0,"n":1.50}`},                             // numbers as written
		{`{"o":{"x":"","y":{"z":null}},"l":["",{"k":""}]}`, `{"l":["",{}]}`},                   // emptied objects go; list elements stay
		{`{"s":"<&> \u2028 é \ufffd \u0001"}`, `{"s":"<&> \u2028 é ` + "\uFFFD" + ` \u0001"}`}, // HTML off; U+FFFD as the character
		{` { "a" : 1 } `, `{"a":1}`},
	} {
		got, err := Form([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("Form(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	full, without, err := Forms([]byte(`{"country":"FR","port":1,"batch_sig":"ab"}`), IngestKeys)
	if err != nil || string(full) != `{"batch_sig":"ab","country":"FR","port":1}` || string(without) != `{"port":1}` {
		t.Errorf("Forms = %s, %s, %v", full, without, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `{"a":1}{}`, `{"a":`} {
		if _, err := Form([]byte(bad)); !errors.Is(err, ErrNotObject) {
			t.Errorf("Form(%q): err %v, want ErrNotObject", bad, err)
		}
	}
}
