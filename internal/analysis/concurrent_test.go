package analysis_test

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// docs/scoring.md refuses a dht_node_id or gnutella_guid link "as above",
// as the emule_user_hash one: an identifier seen at two addresses within
// 2 minutes of each other (ConcurrentSlack) is two machines, and links
// nothing. A BEP 42 id is valid for every address of one /64 (IPv6) or of
// addresses its mask cannot tell apart: a neighbour in the victim's /64
// who copies the id must not be joined to it. The two endpoints are on
// different ports, so that no subscriber_prefix link joins them either.
// Addresses are documentation ones (RFC 3849).
func TestNodeIDAndGUIDAtTwoAddressesAtOnceLinkNothing(t *testing.T) {
	guid := func(o observe.Observation) observe.Observation {
		o.Client.GUID = []byte{0x5a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0}
		return o
	}
	cases := []struct {
		name string
		obs  []observe.Observation
	}{
		{"dht_node_id", []observe.Observation{
			withSecureNode(ob("[2001:db8:0:1::10]:40001", 1, observe.Complete, t0), 7, "2001:db8:0:1::10"),
			withSecureNode(ob("[2001:db8:0:1::20]:40002", 2, observe.Complete, t0.Add(30*time.Second)), 7, "2001:db8:0:1::10"),
			withSecureNode(ob("[2001:db8:0:1::10]:40001", 3, observe.Complete, t0.Add(time.Minute)), 7, "2001:db8:0:1::10"),
		}},
		{"gnutella_guid", []observe.Observation{
			guid(ob("192.0.2.10:40001", 1, observe.Complete, t0)),
			guid(ob("203.0.113.20:40002", 2, observe.Complete, t0.Add(30*time.Second))),
			guid(ob("192.0.2.10:40001", 3, observe.Complete, t0.Add(time.Minute))),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.engine()
			f.ingest(e, c.obs...)
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 2 {
				t.Fatalf("targets %+v: want two, the %s seen at two addresses at once joining nothing", ts, c.name)
			}
			for _, tg := range ts {
				for _, l := range detail(t, e, tg.ID).Links {
					if l.State == "active" {
						t.Errorf("target %s has an active %s link: %s", tg.ID, l.Rule, l.Reason)
					}
				}
			}
		})
	}
}
