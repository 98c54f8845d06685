package jurisdiction

import (
	"strings"
	"unicode/utf8"
)

// Departement is a French département (or overseas collectivity with an
// INSEE code in the same series).
type Departement struct {
	Code string // "01".."95" (no "20"), "2A", "2B", "971".."976"
	Name string // French name
}

// departements lists the 96 metropolitan départements, the five overseas
// départements and Saint-Pierre-et-Miquelon (975, a collectivité d'outre-mer
// that shares the numbering).
var departements = []Departement{
	{"01", "Ain"}, {"02", "Aisne"}, {"03", "Allier"}, {"04", "Alpes-de-Haute-Provence"},
	{"05", "Hautes-Alpes"}, {"06", "Alpes-Maritimes"}, {"07", "Ardèche"}, {"08", "Ardennes"},
	{"09", "Ariège"}, {"10", "Aube"}, {"11", "Aude"}, {"12", "Aveyron"},
	{"13", "Bouches-du-Rhône"}, {"14", "Calvados"}, {"15", "Cantal"}, {"16", "Charente"},
	{"17", "Charente-Maritime"}, {"18", "Cher"}, {"19", "Corrèze"}, {"2A", "Corse-du-Sud"},
	{"2B", "Haute-Corse"}, {"21", "Côte-d'Or"}, {"22", "Côtes-d'Armor"}, {"23", "Creuse"},
	{"24", "Dordogne"}, {"25", "Doubs"}, {"26", "Drôme"}, {"27", "Eure"},
	{"28", "Eure-et-Loir"}, {"29", "Finistère"}, {"30", "Gard"}, {"31", "Haute-Garonne"},
	{"32", "Gers"}, {"33", "Gironde"}, {"34", "Hérault"}, {"35", "Ille-et-Vilaine"},
	{"36", "Indre"}, {"37", "Indre-et-Loire"}, {"38", "Isère"}, {"39", "Jura"},
	{"40", "Landes"}, {"41", "Loir-et-Cher"}, {"42", "Loire"}, {"43", "Haute-Loire"},
	{"44", "Loire-Atlantique"}, {"45", "Loiret"}, {"46", "Lot"}, {"47", "Lot-et-Garonne"},
	{"48", "Lozère"}, {"49", "Maine-et-Loire"}, {"50", "Manche"}, {"51", "Marne"},
	{"52", "Haute-Marne"}, {"53", "Mayenne"}, {"54", "Meurthe-et-Moselle"}, {"55", "Meuse"},
	{"56", "Morbihan"}, {"57", "Moselle"}, {"58", "Nièvre"}, {"59", "Nord"},
	{"60", "Oise"}, {"61", "Orne"}, {"62", "Pas-de-Calais"}, {"63", "Puy-de-Dôme"},
	{"64", "Pyrénées-Atlantiques"}, {"65", "Hautes-Pyrénées"}, {"66", "Pyrénées-Orientales"}, {"67", "Bas-Rhin"},
	{"68", "Haut-Rhin"}, {"69", "Rhône"}, {"70", "Haute-Saône"}, {"71", "Saône-et-Loire"},
	{"72", "Sarthe"}, {"73", "Savoie"}, {"74", "Haute-Savoie"}, {"75", "Paris"},
	{"76", "Seine-Maritime"}, {"77", "Seine-et-Marne"}, {"78", "Yvelines"}, {"79", "Deux-Sèvres"},
	{"80", "Somme"}, {"81", "Tarn"}, {"82", "Tarn-et-Garonne"}, {"83", "Var"},
	{"84", "Vaucluse"}, {"85", "Vendée"}, {"86", "Vienne"}, {"87", "Haute-Vienne"},
	{"88", "Vosges"}, {"89", "Yonne"}, {"90", "Territoire de Belfort"}, {"91", "Essonne"},
	{"92", "Hauts-de-Seine"}, {"93", "Seine-Saint-Denis"}, {"94", "Val-de-Marne"}, {"95", "Val-d'Oise"},
	{"971", "Guadeloupe"}, {"972", "Martinique"}, {"973", "Guyane"}, {"974", "La Réunion"},
	{"975", "Saint-Pierre-et-Miquelon"}, {"976", "Mayotte"},
}

// englishNames are the GeoNames English names that GeoLite2 (and so
// @ip-location-db's state2) uses where they differ from the French ones
// after folding, e.g. "North" for Nord, "Upper Corsica" for Haute-Corse.
var englishNames = map[string]string{
	"north": "59", "savoy": "73", "upper savoy": "74", "upper garonne": "31",
	"south corsica": "2A", "upper corsica": "2B", "lower rhine": "67", "upper rhine": "68",
	"upper loire": "43", "upper marne": "52", "upper saone": "70", "upper vienne": "87",
	"upper alps": "05", "upper pyrenees": "65", "maritime alps": "06", "atlantic pyrenees": "64",
	"eastern pyrenees": "66", "rhone": "69", "french guiana": "973", "reunion": "974",
	"saint pierre and miquelon": "975", "territory of belfort": "90",
}

// overseasCountries maps the ISO 3166-1 codes that geolocation databases
// give the overseas départements to their département codes.
var overseasCountries = map[string]string{
	"GP": "971", "MQ": "972", "GF": "973", "RE": "974", "PM": "975", "YT": "976",
}

var (
	depByCode = map[string]Departement{}
	depByName = map[string]string{} // folded name → code
)

func init() {
	for _, d := range departements {
		depByCode[d.Code] = d
		depByName[fold(d.Name)] = d.Code
	}
	for n, c := range englishNames {
		depByName[n] = c
	}
}

// Departements returns every known département, in code order.
func Departements() []Departement {
	return append([]Departement(nil), departements...)
}

// IsDepartementCode reports whether s is a département code exactly as the
// rules file must spell it ("01", "2A", "974"; not "1", "20" or "2a").
func IsDepartementCode(s string) bool {
	_, ok := depByCode[s]
	return ok
}

// DepartementCode resolves what a database gives as a French subdivision
// (a code such as "78" or "2A", or a name such as "Yvelines", "Côte-d'Or",
// "Upper Corsica", "Paris Department") to the département code.
func DepartementCode(s string) (string, bool) {
	if _, ok := depByCode[s]; ok {
		return s, true
	}
	if len(s) == 2 {
		if up := strings.ToUpper(s); IsDepartementCode(up) { // "2a"
			return up, true
		}
	}
	var buf [64]byte
	k := foldInto(buf[:0], s)
	if c, ok := depByName[string(k)]; ok {
		return c, true
	}
	for _, pre := range []string{"department of ", "departement de ", "departement du ", "departement des "} {
		if t, ok := strings.CutPrefix(string(k), pre); ok {
			if c, ok := depByName[t]; ok {
				return c, true
			}
		}
	}
	for _, suf := range []string{" department", " departement"} {
		if t, ok := strings.CutSuffix(string(k), suf); ok {
			if c, ok := depByName[t]; ok {
				return c, true
			}
		}
	}
	return "", false
}

// fold lowercases s, removes the accents of Latin letters and turns
// hyphens, apostrophes, dots and runs of spaces into one space, so that
// "Côte-d'Or", "Cote d'Or" and "cote d or" compare equal.
func fold(s string) string {
	return string(foldInto(nil, s))
}

// foldInto appends the folded form of s to dst; with a stack buffer it does
// not allocate for short strings.
func foldInto(dst []byte, s string) []byte {
	space := true // drop leading spaces
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		var rep string
		switch {
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		case r == '-' || r == '\'' || r == '’' || r == '.' || r == '_' || r == ' ' || r == '\t':
			r = ' '
		case r < 0x80:
		default:
			rep = foldRune(r)
		}
		if rep == "" {
			if r == ' ' {
				if space {
					continue
				}
				space = true
			} else {
				space = false
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		dst = append(dst, rep...)
		space = false
	}
	if n := len(dst); n > 0 && dst[n-1] == ' ' {
		dst = dst[:n-1]
	}
	return dst
}

func foldRune(r rune) string {
	switch r {
	case 'à', 'á', 'â', 'ä', 'ã', 'å', 'À', 'Á', 'Â', 'Ä', 'Ã', 'Å':
		return "a"
	case 'ç', 'Ç':
		return "c"
	case 'è', 'é', 'ê', 'ë', 'È', 'É', 'Ê', 'Ë':
		return "e"
	case 'ì', 'í', 'î', 'ï', 'Ì', 'Í', 'Î', 'Ï':
		return "i"
	case 'ñ', 'Ñ':
		return "n"
	case 'ò', 'ó', 'ô', 'ö', 'õ', 'Ò', 'Ó', 'Ô', 'Ö', 'Õ':
		return "o"
	case 'ù', 'ú', 'û', 'ü', 'Ù', 'Ú', 'Û', 'Ü':
		return "u"
	case 'ý', 'ÿ', 'Ý':
		return "y"
	case 'œ', 'Œ':
		return "oe"
	case 'æ', 'Æ':
		return "ae"
	case 'ß':
		return "ss"
	}
	return string(r) // other scripts: kept as they are
}
