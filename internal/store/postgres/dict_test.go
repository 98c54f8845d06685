package postgres

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// oddObservations are observations whose values a narrower row could
// lose: client names with a NUL and bytes that are not UTF-8, zones
// (with a % inside), IPv4-mapped and IPv4-compatible addresses, an IPv6
// address with one zero group, long and empty values; several share all
// their facets, place and matches.
func oddObservations(r *rand.Rand, at time.Time) []observe.Observation {
	ips := []string{"127.0.0.7", "::1", "::ffff:127.0.0.2", "::7f00:2", "::2", "::7f:0", "fe80::1%eth0", "fe80::2%a%b c",
		"2001:db8:0:1:1:1:1:1", "2001:db8::1:0:0:1", "::ffff:0.0.0.0", "fd00::"}
	var out []observe.Observation
	for i, ip := range ips {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), 4*i) // i%4 == 0: the same facets for all
		o.Endpoint.IP = netip.MustParseAddr(ip)
		switch i % 3 {
		case 1:
			o.Client.Name, o.Client.Version = "cl\x00ient\xff\xfe", "\x00"
		case 2:
			o.Client.Name, o.Client.Version = string(make([]byte, 5000)), ""
		}
		out = append(out, o)
	}
	return out
}

// Values that repeat are stored once: the observations' facets, places
// and matches each take one dictionary row a distinct value, also when a
// later store (with empty caches) writes the same values again; every
// value reads back as it was given.
func TestDictionariesStoreEachValueOnce(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			r := rand.New(rand.NewPCG(21, 21))
			at := time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)
			obs := oddObservations(r, at)
			if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
				t.Fatal(err)
			}
			counts := func(s *Store) [3]int {
				var n [3]int
				if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observation_facets), (SELECT count(*) FROM observation_places),
					(SELECT count(*) FROM observation_matches)`).Scan(&n[0], &n[1], &n[2]); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// Three client names, on one facet otherwise; places and matches
			// as storetest.Observation makes them for i = 0, 4, 8, ...
			want := [3]int{3, 3, 3}
			if got := counts(st); got != want {
				t.Fatalf("dictionary rows (facets, places, matches) %v, want %v", got, want)
			}
			// Another store, its caches empty, writes the same values again.
			cfg.Schema = st.cfg.Schema
			again, err := Open(ctx, testDSN(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			more := oddObservations(r, at.Add(time.Hour))
			if err := again.InsertObservations(ctx, slices.Clone(more)); err != nil {
				t.Fatal(err)
			}
			if got := counts(again); got != want {
				t.Fatalf("after a second store wrote the same values: dictionary rows %v, want %v", got, want)
			}
			got := storetest.Export(t, again, store.ObservationFilter{})
			all := append(obs, more...)
			if len(got) != len(all) {
				t.Fatalf("exported %d observations, want %d", len(got), len(all))
			}
			for i := range all {
				if !got[i].Equal(&all[i]) || got[i].Endpoint.IP != all[i].Endpoint.IP {
					t.Fatalf("observation %d:\ngot  %+v\nwant %+v", i, got[i], all[i])
				}
			}
		})
	}
}

// vigil_ip_text prints every address as netip does: IPv6 addresses with
// runs of zero groups of every length and place, IPv4-mapped and
// IPv4-compatible ones, and zones.
func TestIPTextIsNetipString(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(22, 22))
	var addrs []netip.Addr
	for range 3000 {
		var b [16]byte
		for w := 0; w < 8; w++ {
			if r.IntN(2) == 0 {
				v := r.Uint32()
				b[2*w], b[2*w+1] = byte(v), byte(v>>8)
				if r.IntN(3) == 0 {
					b[2*w] = 0
				}
			}
		}
		a := netip.AddrFrom16(b)
		switch r.IntN(6) {
		case 0:
			a = netip.AddrFrom4([4]byte{127, b[0], b[1], b[2]})
		case 1:
			a = netip.AddrFrom16(netip.AddrFrom4([4]byte{127, b[0], b[1], b[2]}).As16()) // IPv4-mapped
		case 2:
			var c [16]byte
			copy(c[12:], b[12:]) // IPv4-compatible, ::a.b.c.d
			a = netip.AddrFrom16(c)
		case 3:
			a = a.WithZone("z" + string(rune('a'+r.IntN(26))))
		}
		addrs = append(addrs, a)
	}
	var ips, zones []string
	for _, a := range addrs {
		ips = append(ips, a.WithZone("").String())
		zones = append(zones, a.Zone())
	}
	rows, err := st.pool.Query(ctx, `SELECT vigil_ip_text(ip::inet, NULLIF(zone, '')) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(ip, zone, n) ORDER BY n`,
		ips, zones)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var got string
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := addrs[i].String(); got != want {
			t.Errorf("vigil_ip_text of %s = %q, want %q", want, got, want)
		}
	}
	if err := rows.Err(); err != nil || i != len(addrs) {
		t.Fatalf("%d rows (%v), want %d", i, err, len(addrs))
	}
}

// Migration 0017 moves a store's rows into the dictionaries: every
// observation reads back as before, its address and zone included, seq
// goes on after the last, and a redelivered observation is still
// skipped.
func TestMigration0017KeepsEveryValue(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(23, 23))
	obs := oddObservations(r, time.Date(2025, 3, 30, 23, 59, 58, 0, time.UTC))
	for i := range obs {
		if i%2 == 1 {
			obs[i].Time = obs[i].Time.AddDate(0, 1, 0) // two months, two partitions
		}
	}
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	want := storetest.Export(t, st, store.ObservationFilter{})
	for _, q := range undo0017 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var ipType string
	if err := st.pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'observations'::regclass AND attname = 'ip'`).Scan(&ipType); err != nil || ipType != "text" {
		t.Fatalf("before the migration ip is %q (%v), want text", ipType, err)
	}
	st.Close()
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := storetest.Export(t, again, store.ObservationFilter{})
	if len(got) != len(want) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) || got[i].Endpoint.IP != want[i].Endpoint.IP {
			t.Fatalf("observation %d after the migration:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	var facets, maxSeq int
	if err := again.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observation_facets), (SELECT max(seq) FROM observations)`).Scan(&facets, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if facets != 3 || maxSeq != len(obs) {
		t.Fatalf("after the migration: %d facets, last seq %d; want 3 and %d", facets, maxSeq, len(obs))
	}
	newer := storetest.Observation(r, time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC), 8)
	n, err := again.InsertObservationsCounted(ctx, []observe.Observation{obs[0], newer})
	if err != nil || n != 1 {
		t.Fatalf("inserting one stored and one new observation: %d added (%v), want 1", n, err)
	}
	if err := again.pool.QueryRow(ctx, `SELECT max(seq), (SELECT count(*) FROM observation_facets) FROM observations`).Scan(&maxSeq, &facets); err != nil {
		t.Fatal(err)
	}
	if maxSeq != len(obs)+1 || facets != 3 {
		t.Fatalf("after one more: last seq %d, %d facets; want %d and 3", maxSeq, facets, len(obs)+1)
	}
}

// TestFacetIDsPastTwoBillion: a facet is a distinct combination of
// values, a peer's client name and version among them, which a hostile
// peer makes anew at every probe; ids are never reused, purges included.
// With 32-bit ids, once 2^31 were drawn every batch holding a new client
// name was refused ("nextval: reached maximum value") and ingest stalled.
func TestFacetIDsPastTwoBillion(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			if _, err := st.pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('observation_facets', 'id'), 2147483646)`); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(24, 24))
			obs := oddObservations(r, time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC))
			if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
				t.Fatalf("new facets past id 2^31-1: %v", err)
			}
			var top int64
			if err := st.pool.QueryRow(ctx, `SELECT max(id) FROM observation_facets`).Scan(&top); err != nil || top <= 1<<31-1 {
				t.Fatalf("highest facet id %d (%v), want past 2^31-1", top, err)
			}
			got := storetest.Export(t, st, store.ObservationFilter{})
			if len(got) != len(obs) {
				t.Fatalf("exported %d observations, want %d", len(got), len(obs))
			}
			for i := range obs {
				if !got[i].Equal(&obs[i]) {
					t.Fatalf("observation %d:\ngot  %+v\nwant %+v", i, got[i], obs[i])
				}
			}
		})
	}
}
