package peerid

import (
	"testing"
	"unicode/utf8"
)

// pid pads a peer id prefix to 20 bytes with the random-looking tail
// clients add.
func pid(prefix string) [20]byte {
	var id [20]byte
	tail := "\x8a\x01q7Zk\x00\xffabcdefghijklmnopqrstuvwxyz"
	copy(id[:], prefix+tail)
	return id
}

func TestDecodeNamesClients(t *testing.T) {
	tests := []struct {
		client  string // test name: the client that sends this id
		prefix  string
		name    string
		version string
		style   Style
	}{
		{"transmission-3.00", "-TR3000-", "Transmission", "3.00", StyleAzureus},
		{"transmission-2.94", "-TR2940-", "Transmission", "2.94", StyleAzureus},
		{"transmission-nightly-after-3.00", "-TR300Z-", "Transmission", "3.00+", StyleAzureus},
		{"transmission-4.0.5", "-TR4050-", "Transmission", "4.0.5", StyleAzureus},
		{"transmission-0.72", "-TR0072-", "Transmission", "0.72", StyleAzureus},
		{"qbittorrent-4.6.3", "-qB4630-", "qBittorrent", "4.6.3", StyleAzureus},
		{"libtorrent-rakshasa-0.13.8", "-lt0D80-", "libTorrent (rakshasa)", "0.13.8", StyleAzureus},
		{"libtorrent-rasterbar-2.0.7", "-LT2070-", "libtorrent (Rasterbar)", "2.0.7", StyleAzureus},
		{"utorrent-3.5.5", "-UT355W-", "µTorrent", "3.5.5", StyleAzureus},
		{"utorrent-1.7.0-beta", "-UT170B-", "µTorrent", "1.7.0 (Beta)", StyleAzureus},
		{"utorrent-mac-1.8.7", "-UM1870-", "µTorrent Mac", "1.8.7", StyleAzureus},
		{"bittorrent-7.10.5", "-BT7a5W-", "BitTorrent", "7.10.5", StyleAzureus},
		{"deluge-1.3.15", "-DE13F0-", "Deluge", "1.3.15.0", StyleAzureus},
		{"deluge-2.0.3", "-DE2030-", "Deluge", "2.0.3.0", StyleAzureus},
		{"vuze-5.7.5.0", "-AZ5750-", "Vuze", "5.7.5.0", StyleAzureus},
		{"bitcomet-1.50", "-BC0150-", "BitComet", "1.50", StyleAzureus},
		{"anacrolix-torrent", "-GT0003-", "anacrolix/torrent", "", StyleAzureus},
		{"shadow-5.8.11", "S58B-----", "Shad0w", "5.8.11", StyleShadow},
		{"bittornado-0.3.18", "T03I-----", "BitTornado", "0.3.18", StyleShadow},
		{"abc-2.6.9", "A269-----", "ABC", "2.6.9", StyleShadow},
		{"mainline-7.2.0", "M7-2-0--", "BitTorrent (Mainline)", "7.2.0", StyleMainline},
		{"mainline-4.20.8", "M4-20-8-", "BitTorrent (Mainline)", "4.20.8", StyleMainline},
		{"queen-bee-1.0.0", "Q1-0-0--", "Queen Bee", "1.0.0", StyleMainline},
		{"bitcomet-0.56-old-style", "exbc\x00\x38", "BitComet", "0.56", StyleOther},
		{"bitlord-0.56", "exbc\x00\x38LORD", "BitLord", "0.56", StyleOther},
		{"xbt-0.5.4-debug", "XBT054d-", "XBT Client", "0.5.4 (Debug)", StyleOther},
		{"aria2-1.35.0", "A2-1-35-0-", "aria2", "1.35.0", StyleOther},
		{"opera-7267", "OP7267", "Opera", "7267", StyleOther},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			c := Decode(pid(tt.prefix))
			if c.Name != tt.name || c.Version != tt.version || c.Style != tt.style {
				t.Fatalf("Decode(%q) = %q %q %s, want %q %q %s", tt.prefix, c.Name, c.Version, c.Style, tt.name, tt.version, tt.style)
			}
		})
	}
}

func TestStringJoinsNameAndVersion(t *testing.T) {
	if got, want := Decode(pid("-TR3000-")).String(), "Transmission 3.00"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got, want := Decode(pid("-GT0003-")).String(), "anacrolix/torrent"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestDecodeUnknownGivesPrintableRaw(t *testing.T) {
	var id [20]byte
	copy(id[:], "\x00\x01%ab\xff\xfe-synthetic-pe")
	c := Decode(id)
	if c.Name != "" || c.Style != StyleUnknown {
		t.Fatalf("Decode(binary) = %+v, want unknown", c)
	}
	if got, want := c.Raw, "%00%01%25ab%FF%FE-synthetic-pe"; got != want {
		t.Fatalf("Raw = %q, want %q", got, want)
	}
	if got, want := c.String(), "unknown (%00%01%25ab%FF%FE-synthetic-pe)"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestDecodeUnknownAzureusCodeKeepsCode(t *testing.T) {
	c := Decode(pid("-ZZ1234-"))
	if c.Style != StyleAzureus || c.Code != "ZZ" || c.Name != "" || c.Version != "1.2.3.4" {
		t.Fatalf("Decode(-ZZ1234-) = %+v", c)
	}
	if got, want := c.String(), "unknown (-ZZ1234-)"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestDecodeMalformedVersionsAreNotGuessed(t *testing.T) {
	tests := []struct {
		name, prefix, version string
	}{
		{"transmission-binary-version", "-TR\x01\x02\x03\x04-", "%01%02%03%04"},
		{"qbittorrent-punctuation", "-qB.,!?-", ".,!?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decode(pid(tt.prefix)).Version; got != tt.version {
				t.Fatalf("Version = %q, want %q", got, tt.version)
			}
		})
	}
	// Mainline-looking ids that do not follow the pattern are not Mainline.
	if c := Decode(pid("M7-2-0-x")); c.Style == StyleMainline {
		t.Fatalf("Decode(M7-2-0-x) = %+v, want not mainline", c)
	}
}

func TestDecodeBytesRejectsWrongLength(t *testing.T) {
	if c := DecodeBytes([]byte("-TR3000-")); c.Style != StyleUnknown || c.Raw != "-TR3000-" {
		t.Fatalf("DecodeBytes(8 bytes) = %+v", c)
	}
	id := pid("-TR3000-")
	if c := DecodeBytes(id[:]); c.Name != "Transmission" {
		t.Fatalf("DecodeBytes(20 bytes) = %+v", c)
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range []string{"-TR3000-", "-qB4630-", "S58B-----", "M7-2-0--", "exbc\x00\x38LORD", "A2-1-35-0-", "XBT054d-", "-UT355W-", "\x00\x01\x02"} {
		id := pid(p)
		f.Add(id[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := DecodeBytes(b)
		for _, s := range []string{c.Name, c.Version, c.Raw, c.String()} {
			if !utf8.ValidString(s) {
				t.Fatalf("DecodeBytes(%q) gives invalid UTF-8 %q", b, s)
			}
		}
		if len(b) == 20 && c.Raw != escape(b) {
			t.Fatalf("Raw = %q, want %q", c.Raw, escape(b))
		}
	})
}
