package maps

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestEmbeddedOutlinesCoverEveryDepartement(t *testing.T) {
	m := France()
	want := []string{"2A", "2B", "971", "972", "973", "974", "976"}
	for i := 1; i <= 95; i++ {
		if i != 20 {
			want = append(want, fmt.Sprintf("%02d", i))
		}
	}
	for _, k := range want {
		if _, ok := m.Shape(k); !ok {
			t.Errorf("département %s missing", k)
		}
	}
	if len(m.Shapes) != len(want) {
		t.Errorf("%d shapes, want %d", len(m.Shapes), len(want))
	}
	for _, o := range Overseas {
		sh, _ := m.Shape(o.Code)
		if sh.Box[0] != 0 || sh.Box[1] != 0 || max(sh.Box[2], sh.Box[3]) != 200 {
			t.Errorf("%s: frame %v, want its own 200-unit frame", o.Code, sh.Box)
		}
	}
}

func TestEmbeddedOutlinesCoverTheCountriesPeersComeFrom(t *testing.T) {
	m := World()
	for _, k := range []string{"FR", "BE", "DE", "CA", "US", "GB", "NL", "CH", "LU", "MC", "AD", "SG", "HK", "MT", "RU", "UA", "CN", "BR", "AU", "XK",
		"GP", "MQ", "GF", "RE", "YT"} {
		if _, ok := m.Shape(k); !ok {
			t.Errorf("country %s missing", k)
		}
	}
	if len(m.Shapes) < 200 {
		t.Errorf("only %d countries", len(m.Shapes))
	}
}

// TestOutlinesAreValidPathData: only M, l, z with integers, and each
// shape's box is the extent of its path.
func TestOutlinesAreValidPathData(t *testing.T) {
	for name, m := range map[string]*Map{"world": World(), "france": France()} {
		for _, sh := range m.Shapes {
			b, err := pathBox(sh.D)
			if err != nil {
				t.Fatalf("%s %s: %v", name, sh.Key, err)
			}
			if b != sh.Box {
				t.Errorf("%s %s: path extent %v, box %v", name, sh.Key, b, sh.Box)
			}
			if sh.Main[0] < sh.Box[0] || sh.Main[2] > sh.Box[2] || sh.Main[1] < sh.Box[1] || sh.Main[3] > sh.Box[3] {
				t.Errorf("%s %s: main part %v outside %v", name, sh.Key, sh.Main, sh.Box)
			}
			if sh.Key != "-" && (sh.Name == "" || sh.NameFR == "") {
				t.Errorf("%s %s: no name", name, sh.Key)
			}
			if len(sh.Key) < 3 && name == "france" && (sh.Box[2] > m.W || sh.Box[3] > m.H || sh.Box[0] < 0 || sh.Box[1] < 0) {
				t.Errorf("%s outside the frame: %v", sh.Key, sh.Box)
			}
		}
	}
}

func pathBox(d string) (Box, error) {
	b := Box{1e9, 1e9, -1e9, -1e9}
	var x, y float64
	cmd := byte(0)
	var nums []float64
	flush := func() error {
		switch cmd {
		case 'M':
			if len(nums) != 2 {
				return fmt.Errorf("M with %d numbers", len(nums))
			}
			x, y = nums[0], nums[1]
			b = b.Union(Box{x, y, x, y})
		case 'l':
			if len(nums)%2 != 0 {
				return fmt.Errorf("l with %d numbers", len(nums))
			}
			for i := 0; i < len(nums); i += 2 {
				x, y = x+nums[i], y+nums[i+1]
				b = b.Union(Box{x, y, x, y})
			}
		}
		nums = nums[:0]
		return nil
	}
	for i := 0; i < len(d); {
		c := d[i]
		switch {
		case c == 'M' || c == 'l' || c == 'z':
			if err := flush(); err != nil {
				return b, err
			}
			cmd = c
			i++
		case c == ' ':
			i++
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(d) && d[j] >= '0' && d[j] <= '9' {
				j++
			}
			v, err := strconv.Atoi(d[i:j])
			if err != nil {
				return b, err
			}
			nums = append(nums, float64(v))
			i = j
		default:
			return b, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return b, flush()
}

func TestEqualEarthPutsCitiesInTheirCountries(t *testing.T) {
	for _, c := range []struct {
		country  string
		lon, lat float64
	}{{"FR", 2.35, 48.86}, {"AU", 151.2, -33.87}, {"BR", -43.2, -22.9}, {"CA", -75.7, 45.4}, {"JP", 139.7, 35.7}, {"BE", 4.35, 50.85}} {
		x, y := EqualEarth(c.lon, c.lat)
		sh, _ := World().Shape(c.country)
		if b := sh.Main; x < b[0] || x > b[2] || y < b[1] || y > b[3] {
			t.Errorf("%s: %v,%v projects to %.0f,%.0f outside %v", c.country, c.lon, c.lat, x, y, b)
		}
	}
}

func TestDepartementReadsCodesAndNames(t *testing.T) {
	for in, want := range map[string]string{
		"78": "78", "FR-78": "78", "fr-2a": "2A", "2b": "2B", "1": "01", "971": "971", "Yvelines": "78",
		"Paris": "75", "Ville de Paris": "75", "Bouches-du-Rhône": "13", "Bouches du Rhone": "13", "ARDECHE": "07",
		"Côtes-d'Armor": "22", "Cotes d’Armor": "22", "Reunion": "974", "La Réunion": "974", "French Guiana": "973",
		"Guyane": "973", "Corse-du-Sud": "2A", "Territoire de Belfort": "90", "Val-d'Oise": "95",
	} {
		if got, ok := Departement(in); !ok || got != want {
			t.Errorf("Departement(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "20", "975", "Ile-de-France", "Bavaria", "FR", "0", "100", "<78>"} {
		if got, ok := Departement(in); ok {
			t.Errorf("Departement(%q) = %q, want none", in, got)
		}
	}
	if c, ok := OverseasCountry("re"); !ok || c != "974" {
		t.Errorf("OverseasCountry(re) = %q %v", c, ok)
	}
}

// TestEmbeddedDataIsSmall: the outlines ride in every binary.
func TestEmbeddedDataIsSmall(t *testing.T) {
	if n := len(worldTSV) + len(franceTSV); n > 400<<10 {
		t.Fatalf("embedded outlines are %d bytes; raise the simplification tolerances in gen/main.go", n)
	}
	if strings.Contains(worldTSV+franceTSV, "\r") {
		t.Fatal("CR in the data")
	}
}
