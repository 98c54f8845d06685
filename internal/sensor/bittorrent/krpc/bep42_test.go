package krpc

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// TestBEP42ValidPublishedVectors checks BEP42Valid against the table of
// BEP 42 ("DHT Security extension"), and that each id fails for another
// address, for another r, and for a flipped bit in its 21-bit prefix.
func TestBEP42ValidPublishedVectors(t *testing.T) {
	for _, v := range bep42Vectors {
		t.Run(v.ip, func(t *testing.T) {
			raw, err := hex.DecodeString(v.id)
			if err != nil {
				t.Fatal(err)
			}
			id := ID(raw)
			ip := netip.MustParseAddr(v.ip)
			if !BEP42Valid(ip, id) {
				t.Fatalf("BEP42Valid(%v, %x) = false for BEP 42's own example", ip, id)
			}
			if BEP42Valid(netip.AddrFrom16(ip.As16()), id) != true {
				t.Fatalf("BEP42Valid of the IPv4-mapped form of %v differs", ip)
			}
			if BEP42Valid(netip.MustParseAddr("8.8.4.4"), id) {
				t.Fatalf("id %x is valid for 8.8.4.4 too", id)
			}
			for _, bit := range []int{0, 7, 15, 20} {
				bad := id
				bad[bit/8] ^= 0x80 >> (bit % 8)
				if BEP42Valid(ip, bad) {
					t.Fatalf("id with prefix bit %d flipped still valid", bit)
				}
			}
			bad := id
			bad[19] ^= 0x01 // another r
			if BEP42Valid(ip, bad) {
				t.Fatalf("id with another r still valid")
			}
			// The 11 bits after the prefix and bytes 3-18 are free.
			free := id
			free[2] ^= 0x07
			free[10] ^= 0xff
			if !BEP42Valid(ip, free) {
				t.Fatalf("changing the random bits made the id invalid")
			}
		})
	}
}

// TestBEP42ValidGrantsNoExemption: BEP 42 lets nodes on local addresses use
// any id; for evidence such an id is still unchecked.
func TestBEP42ValidGrantsNoExemption(t *testing.T) {
	var random ID
	for i := range random {
		random[i] = byte(i*37 + 11)
	}
	for _, s := range []string{"127.0.0.1", "10.250.0.2", "192.168.1.20", "::1", "fd00::1"} {
		ip := netip.MustParseAddr(s)
		if !Bep42Exempt(ip) {
			t.Fatalf("%v is not exempt; the test expects it to be", ip)
		}
		if BEP42Valid(ip, random) {
			t.Fatalf("BEP42Valid(%v) accepted an id not derived from it", ip)
		}
		if !BEP42Valid(ip, SecureNodeID(ip, random)) {
			t.Fatalf("an id derived from %v is not valid for it", ip)
		}
	}
	if BEP42Valid(netip.Addr{}, random) {
		t.Fatal("the zero address validated an id")
	}
}

// TestBEP42ValidIPv6 uses the /64 mask of BEP 42: bits past the mask do
// not matter, bits inside it do.
func TestBEP42ValidIPv6(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8:1234:5678::1")
	var seed ID
	seed[19] = 5
	id := SecureNodeID(ip, seed)
	if !BEP42Valid(ip, id) {
		t.Fatalf("BEP42Valid(%v, %x) = false", ip, id)
	}
	if !BEP42Valid(netip.MustParseAddr("2001:db8:1234:5678:ffff::9"), id) {
		t.Fatal("the interface id (past the /64) changed the result")
	}
	if BEP42Valid(netip.MustParseAddr("2001:db9:1234:5678::1"), id) {
		t.Fatal("another /32 validated the id")
	}
}

// FuzzBEP42Valid: any address bytes and id, no panic; an id made for an
// address is valid for it; and a valid id is left as it is by SecureNodeID
// (its prefix already is the address's).
func FuzzBEP42Valid(f *testing.F) {
	for _, v := range bep42Vectors {
		raw, _ := hex.DecodeString(v.id)
		a := netip.MustParseAddr(v.ip).As4()
		f.Add(a[:], raw)
	}
	f.Fuzz(func(t *testing.T, addr, idb []byte) {
		var ip netip.Addr
		switch len(addr) {
		case 4:
			ip = netip.AddrFrom4([4]byte(addr))
		case 16:
			ip = netip.AddrFrom16([16]byte(addr))
		default:
			if BEP42Valid(ip, ID{}) {
				t.Fatal("the zero address validated")
			}
			return
		}
		var id ID
		copy(id[:], idb)
		if !BEP42Valid(ip, SecureNodeID(ip, id)) {
			t.Fatalf("SecureNodeID(%v, %x) is not valid for %v", ip, id, ip)
		}
		if BEP42Valid(ip, id) && SecureNodeID(ip, id) != id {
			t.Fatalf("valid id %x for %v changed by SecureNodeID", id, ip)
		}
	})
}
