package bep42

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// The examples of BEP 42: an address, the random byte r, and the id's
// first three bytes (the id's last byte is r).
func TestBEP42Vectors(t *testing.T) {
	tests := []struct {
		ip     string
		r      byte
		prefix string
	}{
		{"124.31.75.21", 1, "5fbfbf"},
		{"21.75.31.124", 86, "5a3ce9"},
		{"65.23.51.170", 22, "a5d432"},
		{"84.124.73.14", 65, "1b0321"},
		{"43.213.53.83", 90, "e56f6c"},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		var seed [20]byte
		seed[19] = tt.r
		id := Secure(ip, seed)
		if got := hex.EncodeToString(id[:3]); got[:5] != tt.prefix[:5] {
			t.Errorf("Secure(%s, r=%d) = %s..., want %s...", tt.ip, tt.r, got, tt.prefix)
		}
		if !Valid(ip, id[:]) {
			t.Errorf("Valid(%s, Secure) = false", tt.ip)
		}
		if Valid(netip.MustParseAddr("8.8.4.4"), id[:]) {
			t.Errorf("id of %s valid for 8.8.4.4", tt.ip)
		}
		// IPv4-mapped IPv6 is the same address.
		if !Valid(netip.AddrFrom16(ip.As16()), id[:]) {
			t.Errorf("Valid(mapped %s) = false", tt.ip)
		}
	}
}

func TestValidRefusesWhatItCannotCheck(t *testing.T) {
	var id [20]byte
	if Valid(netip.Addr{}, id[:]) {
		t.Error("an invalid address validated")
	}
	if Valid(netip.MustParseAddr("1.2.3.4"), id[:19]) {
		t.Error("a 19-byte id validated")
	}
	ip6 := netip.MustParseAddr("2001:db8:1234:5678::1")
	sec := Secure(ip6, id)
	if !Valid(ip6, sec[:]) || Valid(netip.MustParseAddr("2001:db9:1234:5678::1"), sec[:]) {
		t.Error("IPv6 /64 masking wrong")
	}
}

func FuzzValidAgreesWithSecure(f *testing.F) {
	f.Add([]byte{124, 31, 75, 21}, []byte("0123456789abcdefghij"))
	f.Fuzz(func(t *testing.T, ipb, seed []byte) {
		ip, ok := netip.AddrFromSlice(ipb)
		if !ok || len(seed) != 20 {
			return
		}
		id := Secure(ip, [20]byte(seed))
		if !Valid(ip, id[:]) {
			t.Fatalf("Secure(%v) not Valid", ip)
		}
	})
}
