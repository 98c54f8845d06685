package rowcodec

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

func TestPlaceRoundTrip(t *testing.T) {
	for _, p := range []observe.Place{
		{Country: "FR", Subdivisions: []string{"Île-de-France", "78"}, City: "Versailles", Lat: 48.8049, Lon: 2.1204,
			ASN: 64512, Org: `Lab "Telecom" \ SA`, DB: "lab.mmdb", DBBuild: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Country: "NL", ASN: 64511, VPN: true, Hosting: true},
		{DB: "empty.mmdb"}, // a database that knew nothing is still named
	} {
		b, ok := AppendPlace([]byte("prefix"), &p)
		if !ok || !strings.HasPrefix(string(b), "prefix{") {
			t.Fatalf("AppendPlace(%+v) = %q, %v", p, b, ok)
		}
		var got observe.Place
		if err := ParsePlace(b[len("prefix"):], &got); err != nil || !got.Equal(&p) {
			t.Errorf("round trip of %+v: %+v, %v", p, got, err)
		}
	}
	if b, ok := AppendPlace(nil, &observe.Place{}); ok || len(b) != 0 {
		t.Errorf("an unknown place encodes as %q; want nothing (NULL)", b)
	}
}

func TestUUID(t *testing.T) {
	id := "019ab123-4567-7abc-8def-0123456789ab"
	b, ok := ParseUUID(id)
	if !ok || FormatUUID(b) != id {
		t.Fatalf("ParseUUID/FormatUUID(%s): %x %v", id, b, ok)
	}
	for _, bad := range []string{"019AB123-4567-7abc-8def-0123456789ab", "019ab12345677abc8def0123456789ab", "", "x"} {
		if _, ok := ParseUUID(bad); ok {
			t.Errorf("ParseUUID(%q) accepted a non-canonical id", bad)
		}
	}
}

// FuzzAppendJSONString: what the hand-written encoder writes, encoding/json
// reads back as the string with invalid UTF-8 replaced.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x1f\n\t", "é«»", "bad\xff\xfeutf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes as %q, which does not parse: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && strings.ReplaceAll(got, "\uFFFD", "") != strings.ReplaceAll(want, "\uFFFD", "") {
			t.Fatalf("%q read back as %q, want %q", s, got, want)
		}
	})
}

func TestMigrationsNamesTheBadFile(t *testing.T) {
	for files, want := range map[string]string{
		"0001_a.sql,0002_b.sql": "",
		"0001_a.sql,0003_c.sql": "0003_c.sql: want version 2",
		"0001_a.sql,0001_b.sql": "want version 2",
		"0001_a.sql,init.sql":   "init.sql: name must be NNNN_what.sql",
	} {
		fsys := fstest.MapFS{}
		for _, f := range strings.Split(files, ",") {
			fsys["m/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		ms, err := Migrations(fsys, "m")
		switch {
		case want == "" && (err != nil || len(ms) != 2 || ms[1].Version != 2 || ms[1].SQL != "SELECT 1;"):
			t.Errorf("%s: %v %+v", files, err, ms)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", files, err, want)
		}
	}
}
