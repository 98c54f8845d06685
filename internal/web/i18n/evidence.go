package i18n

// evidenceMsgs are the strings of the evidence checks ingest makes
// (docs/evidence.md, "Signed sensor batches").
var evidenceMsgs = map[string]msg{
	"mark.signature_failed":     {"en": "signature failed", "fr": "signature invalide"},
	"mark.signature_failed.why": {"en": "received from the bus as a sensor's, but no signature of a trusted sensor key covers it (changed, forged, reordered or replayed on the way, or an unknown or rotated-out key): not sensor evidence, not first-hand, never an ISP request row, raises no possession level", "fr": "reçue du bus comme venant d’un capteur, mais aucune signature d’une clé de capteur reconnue ne la couvre (modifiée, falsifiée, réordonnée ou rejouée en route, ou clé inconnue ou retirée) : ce n’est pas une preuve du capteur, elle n’est pas de première main, ne devient jamais une ligne de réquisition FAI et n’élève aucun niveau de possession"},
	"mark.time_implausible":     {"en": "time implausible", "fr": "heure invraisemblable"},
	"mark.time_implausible.why": {"en": "set by ingest, not the sensor: its time (with a measured clock offset, its reference time) was before 1999 or more than 10 minutes ahead of ingest's clock when it was stored, so when the peer was seen is unknown: not first-hand, never an ISP request row, left out of the analysis and the figures; kept as the sensor recorded it", "fr": "posée à l’ingestion, pas par le capteur : son heure (ou son heure de référence, quand le décalage d’horloge était mesuré) était antérieure à 1999 ou en avance de plus de 10 minutes sur l’horloge de l’ingestion lors de l’enregistrement ; le moment où le pair a été vu est donc inconnu : pas de première main, jamais une ligne de réquisition FAI, écartée de l’analyse et des chiffres ; conservée telle que le capteur l’a enregistrée"},
}

func init() { register(evidenceMsgs) }
