package lab

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func announceQuery(ih, pid, port, event string) string {
	v := url.Values{}
	v.Set("info_hash", ih)
	v.Set("peer_id", pid)
	v.Set("port", port)
	if event != "" {
		v.Set("event", event)
	}
	return v.Encode()
}

func TestParseAnnounce(t *testing.T) {
	ih := strings.Repeat("\x01", 20)
	pid := "-GT0003-abcdefghijkl"
	cases := []struct {
		name    string
		query   string
		wantErr bool
		port    uint16
	}{
		{"started", announceQuery(ih, pid, "6881", "started"), false, 6881},
		{"no-event", announceQuery(ih, pid, "1", ""), false, 1},
		{"short-info-hash", announceQuery(ih[:19], pid, "6881", ""), true, 0},
		{"short-peer-id", announceQuery(ih, pid[:10], "6881", ""), true, 0},
		{"port-zero", announceQuery(ih, pid, "0", ""), true, 0},
		{"port-too-big", announceQuery(ih, pid, "65536", ""), true, 0},
		{"unknown-event", announceQuery(ih, pid, "6881", "exploded"), true, 0},
		{"bad-escape", "info_hash=%zz", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := parseAnnounce(c.query)
			if got := err != nil; got != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadAnnounce) {
					t.Fatalf("err = %v, want ErrBadAnnounce", err)
				}
				return
			}
			if got, want := a.port, c.port; got != want {
				t.Fatalf("port = %d, want %d", got, want)
			}
			if got, want := string(a.infoHash[:]), ih; got != want {
				t.Fatalf("info_hash = %x, want %x", got, want)
			}
			if got, want := string(a.peerID[:]), pid; got != want {
				t.Fatalf("peer_id = %q, want %q", got, want)
			}
		})
	}
}

// FuzzParseAnnounce checks that any query either fails with
// ErrBadAnnounce or gives an announce that re-encodes to one that parses
// to the same values.
func FuzzParseAnnounce(f *testing.F) {
	f.Add(announceQuery(strings.Repeat("\x01", 20), "-GT0003-abcdefghijkl", "6881", "started"))
	f.Add("info_hash=%01%02&peer_id=x&port=1")
	f.Fuzz(func(t *testing.T, q string) {
		a, err := parseAnnounce(q)
		if err != nil {
			if !errors.Is(err, ErrBadAnnounce) {
				t.Fatalf("error %v does not wrap ErrBadAnnounce", err)
			}
			return
		}
		re := announceQuery(string(a.infoHash[:]), string(a.peerID[:]), strconv.Itoa(int(a.port)), a.event)
		b, err := parseAnnounce(re)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", re, err)
		}
		if b.infoHash != a.infoHash || b.peerID != a.peerID || b.port != a.port || b.event != a.event {
			t.Fatalf("round trip %+v != %+v", b, a)
		}
	})
}
