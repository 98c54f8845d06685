package i18n

// checkMsgs are the words of the platforms' check (POST /api/v1/check,
// internal/web/api check.go): what its answer tells a trust-and-safety
// team, in the user's language.
var checkMsgs = map[string]msg{
	"check.note": {
		"en": "Seen: a Vigil sensor itself exchanged with this address (it was not told of it by a third party) within %s either side of the time given (the sensor's clock corrected by its measured offset, and the whole of its uncertainty within), about material on a watch-list, at the possession level shown. It is not an identification: report it, with the reference, to the police service named; do not act on it alone. Not seen: no such exchange is on record (never seen, seen only second-hand, outside the time window or outside what the service keeps); it proves nothing either way.",
		"fr": "Vu : un capteur Vigil a lui-même échangé avec cette adresse (aucun tiers ne la lui a signalée) à moins de %s de l’heure donnée, avant ou après (l’horloge du capteur corrigée de son décalage mesuré, et toute son incertitude comprise), au sujet d’un contenu figurant sur une liste de surveillance, au niveau de détention indiqué. Ce n’est pas une identification : signalez-le, avec la référence, au service de police indiqué ; n’agissez pas sur cette seule base. Non vu : aucun échange de ce type n’est enregistré (jamais vu, vu seulement de seconde main, hors de la fenêtre de temps ou au-delà de la durée de conservation) ; cela ne prouve rien, dans un sens ni dans l’autre.",
	},
	"check.address_only.noport": {
		"en": "Matched on the address alone (no port was given): behind a shared address (CGNAT, a company or a public network) this may be another subscriber. The port of the session is needed to single out one.",
		"fr": "Correspondance sur la seule adresse (aucun port donné) : derrière une adresse partagée (CGNAT, réseau d’entreprise ou public), il peut s’agir d’un autre abonné. Le port de la session est nécessaire pour en distinguer un seul.",
	},
	"check.address_only.otherport": {
		"en": "Matched on the address alone (the sensor met it on another port): behind a shared address (CGNAT, a company or a public network) this may be another subscriber.",
		"fr": "Correspondance sur la seule adresse (le capteur l’a rencontrée sur un autre port) : derrière une adresse partagée (CGNAT, réseau d’entreprise ou public), il peut s’agir d’un autre abonné.",
	},
	"check.clock_unknown": {
		"en": "The sensor's clock was not measured against a reference when it met this address: the time is its own clock's, which may be off by more than the window.",
		"fr": "L’horloge du capteur n’était pas mesurée par rapport à une référence lorsqu’il a rencontré cette adresse : l’heure est celle de sa propre horloge, qui peut s’écarter de plus que la fenêtre.",
	},
	"check.unrouted": {
		"en": "No police service is on record for this sighting: report it, with the reference, to your country's national reporting point.",
		"fr": "Aucun service de police n’est enregistré pour cette observation : signalez-la, avec la référence, au point de signalement national de votre pays.",
	},
}

func init() { register(checkMsgs) }
