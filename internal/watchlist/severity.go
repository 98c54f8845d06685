package watchlist

import "strings"

// CategorySeverity is the severity (1 lowest .. 5 gravest, 0 none) that a
// list's category implies, for lists that give a category and no severity.
//
// VICS categories are numbers whose meaning the regional data model
// defines. In Project VIC's US model, as exporting and reviewing tools
// present it:
//
//	0  non-pertinent                                  → 0 (no severity: not abuse material)
//	1  child abuse material (CAM)                     → 5
//	2  child exploitative, non-CAM / age difficult    → 3
//	3  CGI or animated depiction of child abuse       → 2
//	4  comparison images (non-pertinent)              → 0
//	5  uncategorised (some tools swap 0 and 5)        → 0
//
// The gravest category is 5 and the mapping never invents a severity for
// material a list itself calls non-pertinent or uncategorised: a match on
// such an entry carries no severity. The order of 2 and 3 (a real child in
// exploitative material above a drawn or generated depiction) is Vigil's
// choice; VICS has no severity of its own.
//
// UK lists grade indecent images A, B and C (sentencing categories, A the
// gravest); the letters, alone or as "Category A", map to 5, 4 and 3.
//
// Any other category gives 0.
func CategorySeverity(category string) int {
	c := strings.ToLower(strings.TrimSpace(category))
	c = strings.TrimSpace(strings.TrimPrefix(c, "category"))
	switch c {
	case "1":
		return 5
	case "2":
		return 3
	case "3":
		return 2
	case "a":
		return 5
	case "b":
		return 4
	case "c":
		return 3
	}
	return 0
}
