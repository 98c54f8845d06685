package peerwire

import (
	"bytes"
	"fmt"

	"github.com/vigil-oss/vigil/internal/bencode"
)

func extHandshakeDiff(got, want ExtHandshake) string {
	if len(got.M) != len(want.M) || (got.M == nil) != (want.M == nil) {
		return fmt.Sprintf("M = %v, want %v", got.M, want.M)
	}
	for k, v := range want.M {
		if g, ok := got.M[k]; !ok || g != v {
			return fmt.Sprintf("M = %v, want %v", got.M, want.M)
		}
	}
	if got.Port != want.Port || got.Client != want.Client || got.YourIP != want.YourIP || got.IPv4 != want.IPv4 ||
		got.IPv6 != want.IPv6 || got.ReqQ != want.ReqQ || got.MetadataSize != want.MetadataSize || got.UploadOnly != want.UploadOnly {
		return fmt.Sprintf("ExtHandshake = %+v, want %+v", got, want)
	}
	return ""
}

func pexDiff(got, want PEX) string {
	eqPeers := func(a, b []PEXPeer) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	switch {
	case !eqPeers(got.Added, want.Added):
		return fmt.Sprintf("Added = %v, want %v", got.Added, want.Added)
	case !eqPeers(got.Added6, want.Added6):
		return fmt.Sprintf("Added6 = %v, want %v", got.Added6, want.Added6)
	case fmt.Sprint(got.Dropped) != fmt.Sprint(want.Dropped):
		return fmt.Sprintf("Dropped = %v, want %v", got.Dropped, want.Dropped)
	case fmt.Sprint(got.Dropped6) != fmt.Sprint(want.Dropped6):
		return fmt.Sprintf("Dropped6 = %v, want %v", got.Dropped6, want.Dropped6)
	}
	return ""
}

// bencodeSorted checks that every dictionary in b has its keys in strictly
// increasing order, as BEP 3 requires of an encoder.
func bencodeSorted(b []byte) error {
	v, err := bencode.Decode(b, 16)
	if err != nil {
		return err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case bencode.Dict:
			for i, p := range v {
				if i > 0 && bytes.Compare(v[i-1].Key, p.Key) >= 0 {
					return fmt.Errorf("key %q after %q", p.Key, v[i-1].Key)
				}
				if err := walk(p.Value); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v)
}
