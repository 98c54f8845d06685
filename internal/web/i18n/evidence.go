package i18n

// evidenceMsgs are the strings of the evidence checks ingest makes
// (docs/evidence.md, "Signed sensor batches").
var evidenceMsgs = map[string]msg{
	"mark.signature_failed":     {"en": "signature failed", "fr": "signature invalide"},
	"mark.signature_failed.why": {"en": "received from the bus as a sensor's, but no signature of a trusted sensor key covers it (changed, forged, reordered or replayed on the way, or an unknown or rotated-out key): not sensor evidence, not first-hand, never an ISP request row, raises no possession level", "fr": "reçue du bus comme venant d’un capteur, mais aucune signature d’une clé de capteur reconnue ne la couvre (modifiée, falsifiée, réordonnée ou rejouée en route, ou clé inconnue ou retirée) : ce n’est pas une preuve du capteur, elle n’est pas de première main, ne devient jamais une ligne de réquisition FAI et n’élève aucun niveau de possession"},
}

func init() { register(evidenceMsgs) }
