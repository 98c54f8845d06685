package isp

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Lang chooses the languages of the PDF letters.
type Lang int

const (
	// LangBoth writes, for each ISP, a French letter then an English one.
	LangBoth Lang = iota
	// LangFR writes French letters only.
	LangFR
	// LangEN writes English letters only.
	LangEN
)

func (l Lang) String() string {
	switch l {
	case LangFR:
		return "fr"
	case LangEN:
		return "en"
	}
	return "both"
}

// ParseLang reads "fr", "en" or "both" ("" is both).
func ParseLang(s string) (Lang, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "both", "fr+en", "en+fr":
		return LangBoth, nil
	case "fr":
		return LangFR, nil
	case "en":
		return LangEN, nil
	}
	return LangBoth, fmt.Errorf("language %q: want fr, en or both", s)
}

// langText is every fixed text of a letter in one language.
type langText struct {
	code                                         string
	summaryTitle, summaryWarn                    string
	target, caseRef, jurisdiction, agency, score string
	request, created, counts, seenOnce           string
	groupLine                                    string
	title, reference, procedure, dated, to       string
	toUnknown, desk, basis, notes, legend        string
	kept, purgedKept, purgedCell                 string // the legend's last sentence, without and with purged rows; a purged row's digest cell
	body                                         []string
	onceWarn, replyTo, recap                     string
	sign, signName, signCourt, signDate, signSig string
	casePH, agencyPH, basisPH                    string
	agencyIDPH, addressPH, basisMLAPH, mlaTitle  string
	heads, refHeads                              []string
	once, vpn, host, noPort, nonPublic           string
	refsTitle, linksLetter                       string
	v6Title                                      string
	v6Heads                                      []string
	annexTitle, annexIntro, annexNone            string
	annexHeads                                   []string
	linksTitle, linksNone                        string
	linkLine                                     string
	noteText                                     func(Note) string
	unknown                                      string // a clock offset not measured
}

var textFR = langText{
	code:         "fr",
	summaryTitle: "Demandes d'identification aux fournisseurs d'accès — fiche interne",
	summaryWarn:  "Document interne au service : ne pas transmettre aux fournisseurs. Chaque demande qui suit est à signer puis à envoyer séparément au fournisseur qu'elle désigne.",
	target:       "Cible", caseRef: "Procédure", jurisdiction: "Ressort", agency: "Service", score: "Score d'analyse",
	request: "Demande", created: "Établie le",
	counts:    "Observations : %d reçues, %d retenues, %d écartées.",
	seenOnce:  "Adresses observées à un seul instant : %d.",
	groupLine: "%s — %s : %d ligne(s) ; conservation %s, seuil %s ; %d écartée(s) pour ancienneté.",
	title:     "Demande d'identification d'abonnés",
	reference: "Référence", procedure: "Procédure", dated: "Établie le",
	to:        "Destinataire : service des réquisitions judiciaires (service juridique ou conformité) de %s — AS%d%s.",
	toUnknown: "Destinataire : [opérateur à identifier — réseau (ASN) inconnu, voir les remarques]%s.",
	basis:     "Fondement juridique", notes: "Remarques",
	body: []string{
		"Dans le cadre de la procédure citée en référence, il vous est demandé de communiquer l'identité et les coordonnées (nom, prénom, adresse postale, adresse électronique, numéro de téléphone, référence du contrat) de l'abonné auquel étaient attribués, à chacun des instants indiqués ci-dessous, l'adresse IP et le port figurant sur la même ligne.",
		"Chaque ligne est un échange direct entre cette adresse et le capteur du service : « Port du pair » est le port de l'abonné dans cet échange (le port auquel le capteur s'est connecté, sens « capteur -> pair », ou le port source du datagramme reçu, sens « pair -> capteur ») ; « Adresse du capteur » est l'adresse et le port de l'autre extrémité, celle du capteur.",
		"Les heures sont exprimées en temps universel coordonné (UTC), à la milliseconde, et non en heure légale. Elles sont lues sur l'horloge du capteur, dont le décalage mesuré par rapport à l'heure de référence figure sur chaque ligne avec son incertitude et la source de la mesure : heure de référence = heure indiquée - décalage, à l'incertitude près (±). Le décalage est mesuré auprès de serveurs NTP : lorsque plusieurs ont répondu, seul est retenu un décalage sur lequel plus de la moitié d'entre eux s'accordent (les autres sont écartés) ; un décalage qui repose sur un seul serveur (« single source ») n'a été recoupé par aucun autre, et son incertitude est doublée par convention. Lorsque le décalage est « inconnu », il n'a pas été mesuré ou aucune mesure n'a pu être retenue (la source en donne la raison) : merci d'en tenir compte et de préciser dans votre réponse la marge retenue.",
		"Les deux extrémités et le protocole de transport figurent sur chaque ligne : lorsqu'une même adresse IP est partagée entre plusieurs abonnés (CGNAT), l'adresse et l'heure seules ne permettent pas d'identifier l'abonné.",
		"Les adresses IP sont réattribuées. Merci de vérifier l'attribution à l'instant exact de chaque ligne et de signaler toute ligne dont l'attribution est incertaine ou dont les données ne sont plus conservées.",
	},
	onceWarn:    "Attention : les lignes marquées 1× portent sur une adresse observée à un seul instant. Elles appellent une vérification particulièrement attentive, afin qu'aucun domicile ne soit visé à tort.",
	replyTo:     "Merci d'adresser votre réponse à : %s, en rappelant la référence %s.",
	recap:       "La demande %s porte sur %d ligne(s), numérotées de 1 à %d, du %s au %s (UTC).",
	sign:        "Le magistrat",
	signName:    "Nom et qualité : ____________________________________________",
	signCourt:   "Juridiction : _______________________________________________",
	signDate:    "Date : ____________________",
	signSig:     "Signature et sceau :",
	casePH:      "[numéro de procédure — à compléter]",
	agencyPH:    "[service enquêteur, adresse et courriel de réponse — à compléter]",
	agencyIDPH:  "[nom du service %s — à compléter]",
	addressPH:   "[adresse postale et courriel de réponse — à compléter]",
	basisPH:     "[article … du code de procédure pénale — à compléter]",
	basisMLAPH:  "[convention ou instrument d'entraide applicable — à compléter]",
	mlaTitle:    "Entraide pénale internationale",
	heads:       []string{"N°", "Adresse IP", "Port du pair", "Transp.", "Adresse du capteur", "Heure UTC", "Décalage ± incertitude", "Source horloge"},
	unknown:     "inconnu",
	refHeads:    []string{"N°", "Méthode", "Sens", "Niveau", "Identifiant d'observation", "SHA-256 de la transcription"},
	refsTitle:   "Références des observations (mêmes numéros de ligne)",
	v6Title:     "Adresses IPv6 : préfixe d'abonné (mêmes numéros de ligne)",
	v6Heads:     []string{"N°", "Adresse IPv6", "Préfixe d'abonné", "Remarque"},
	linksLetter: "Chaque ligne appelle une réponse distincte : certaines lignes peuvent porter sur des adresses que le service a regroupées par des liens entre identifiants de protocole. " + ForgeryWarningFR,
	annexTitle:  "Annexe — observations qui ne sont pas des lignes de demande",
	annexIntro:  "Seul un échange du pair lui-même avec le capteur, enregistré avec ses deux extrémités et une transcription, et dont l'adresse apparaît à plus d'un instant, devient une ligne. Chaque observation ci-dessous est écartée pour le motif indiqué.",
	annexNone:   "Aucune observation n'a été écartée.",
	annexHeads:  []string{"Heure UTC", "Adresse IP", "Port", "Méthode", "Identifiant d'observation", "Motif"},
	linksTitle:  "Annexe — liens entre adresses (appareils)",
	linksNone:   "Aucun lien : les adresses de la cible n'ont pas été regroupées.",
	linkLine:    "%s <-> %s — règle %s, élément %s, confiance %.2f, état %s : %s",
	once:        "1×", vpn: "VPN", host: "Héb.", noPort: "sans port", nonPublic: "non publique",
	legend:     "Sens : capteur -> pair (le capteur s'est connecté au port du pair) ou pair -> capteur (datagramme reçu du port du pair). VPN : adresse d'un fournisseur de VPN. Héb. : adresse d'un hébergeur. Non publique : adresse non routable publiquement (voir les remarques). Niveau : ce que le pair a montré du fichier (announced < acknowledged < partial < complete < verified) ; il qualifie l'observation, non l'abonné. Un mot après le niveau est une marque de l'observation, à connaître avant de s'y fier. malformed_bitfield, malformed_have : le pair a enfreint le protocole en disant ce qu'il détient ; le niveau ne compte que ce qu'il a valablement montré. transcript_cut, transcript_paused : une partie des octets échangés manque à la transcription, qui dit où et combien (transcript_paused : le contenu d'une pièce vérifiée n'est jamais conservé). node_id_unchecked, node_id_via_ping : l'identifiant de nœud DHT du pair peut être forgé, ou celui d'un autre abonné ; il ne relie aucune adresse à une autre. Toute autre marque : voir la documentation des preuves (docs/evidence.md, Marks).",
	kept:       "La transcription de chaque échange est conservée ; son empreinte SHA-256 permet de la vérifier.",
	purgedKept: "La transcription de chaque échange est conservée, sauf sur les lignes qui la disent purgée : de celles-ci ne reste que l'empreinte SHA-256 enregistrée lors de l'échange.",
	purgedCell: "transcription purgée le %s ; empreinte enregistrée : %s",
	noteText:   func(n Note) string { return n.FR },
}

var textEN = langText{
	code:         "en",
	summaryTitle: "Subscriber identification requests to ISPs — internal sheet",
	summaryWarn:  "Internal to the requesting service: do not send to the providers. Each request that follows is to be signed and sent separately to the provider it names.",
	target:       "Target", caseRef: "Case", jurisdiction: "Jurisdiction", agency: "Service", score: "Analysis score",
	request: "Request", created: "Created",
	counts:    "Sightings: %d given, %d kept, %d left out.",
	seenOnce:  "Addresses seen at a single instant: %d.",
	groupLine: "%s — %s: %d row(s); retention %s, cut-off %s; %d left out as too old.",
	title:     "Request for subscriber identification",
	reference: "Reference", procedure: "Case", dated: "Created",
	to:        "To: the law-enforcement requests desk (legal or compliance department) of %s — AS%d%s.",
	toUnknown: "To: [operator to be identified — network (ASN) unknown, see the notes]%s.",
	basis:     "Legal basis", notes: "Notes",
	body: []string{
		"In the case referred to above, you are requested to provide the identity and contact details (name, postal address, e-mail address, telephone number, contract reference) of the subscriber to whom the IP address and port on each line below were assigned at the instant on that line.",
		"Each line is a direct exchange between that address and the requesting service's sensor: \"Peer port\" is the subscriber's port in that exchange (the port the sensor connected to, direction \"sensor -> peer\", or the source port of the datagram received, direction \"peer -> sensor\"); \"Sensor address\" is the address and port of the other end, the sensor's.",
		"Times are Coordinated Universal Time (UTC), to the millisecond, not local time. They were read on the sensor's clock, whose measured offset from the reference time is given on each line with its uncertainty and the source of the measurement: reference time = listed time - offset, within the uncertainty (±). The offset is measured against NTP servers: where several answered, an offset is used only when more than half of them agree on it (the others are dropped); an offset that rests on one server (\"single source\") was not cross-checked by any other, and its uncertainty is doubled by convention. Where the offset is \"unknown\", it was not measured or no measurement could be trusted (the source says why): please allow for it and state in your answer the margin you applied.",
		"Both ends and the transport protocol are given on each line: where one IP address is shared by several subscribers (carrier-grade NAT), the address and the time alone cannot identify a subscriber.",
		"IP addresses are reassigned. Please check the assignment at the exact instant of each line, and report any line whose assignment is uncertain or whose data is no longer kept.",
	},
	onceWarn:    "Warning: lines marked 1× concern an address seen at a single instant. They call for particularly careful checking, so that the wrong household is never searched.",
	replyTo:     "Please send your answer to: %s, quoting reference %s.",
	recap:       "Request %s covers %d line(s), numbered 1 to %d, from %s to %s (UTC).",
	sign:        "The magistrate",
	signName:    "Name and title: _____________________________________________",
	signCourt:   "Court: ______________________________________________________",
	signDate:    "Date: _____________________",
	signSig:     "Signature and seal:",
	casePH:      "[case number — to be completed]",
	agencyPH:    "[investigating service, reply address and e-mail — to be completed]",
	agencyIDPH:  "[name of service %s — to be completed]",
	addressPH:   "[postal address and reply e-mail — to be completed]",
	basisPH:     "[article … of the applicable code of criminal procedure — to be completed]",
	basisMLAPH:  "[applicable mutual legal assistance treaty or instrument — to be completed]",
	mlaTitle:    "Mutual legal assistance",
	heads:       []string{"No.", "IP address", "Peer port", "Transp.", "Sensor address", "UTC time", "Clock offset ± uncertainty", "Clock source"},
	unknown:     "unknown",
	refHeads:    []string{"No.", "Method", "Direction", "Level", "Observation id", "Transcript SHA-256"},
	refsTitle:   "Observation references (same line numbers)",
	v6Title:     "IPv6 addresses: subscriber prefix (same line numbers)",
	v6Heads:     []string{"No.", "IPv6 address", "Subscriber prefix", "Note"},
	linksLetter: "Each line calls for an answer of its own: some lines may concern addresses that the service grouped by links between protocol identifiers. " + ForgeryWarningEN,
	annexTitle:  "Annex — sightings that are not request lines",
	annexIntro:  "Only an exchange of the peer itself with the sensor, recorded with both ends and a transcript, whose address appears at more than one instant, becomes a line. Each sighting below was left out for the reason given.",
	annexNone:   "No sighting was left out.",
	annexHeads:  []string{"UTC time", "IP address", "Port", "Method", "Observation id", "Reason"},
	linksTitle:  "Annex — links between addresses (devices)",
	linksNone:   "No link: the target's addresses were not grouped.",
	linkLine:    "%s <-> %s — rule %s, evidence %s, confidence %.2f, state %s: %s",
	once:        "1×", vpn: "VPN", host: "Host.", noPort: "no port", nonPublic: "non-public",
	legend:     "Direction: sensor -> peer (the sensor connected to the peer's port) or peer -> sensor (a datagram received from the peer's port). VPN: a VPN provider's address. Host.: a hosting provider's address. Non-public: an address that is not publicly routable (see the notes). Level: what the peer showed of the file (announced < acknowledged < partial < complete < verified); it describes the sighting, not the subscriber. A word after the level is a mark of the sighting, to know before relying on it. malformed_bitfield, malformed_have: the peer broke the protocol in saying what it holds; the level counts only what it validly showed. transcript_cut, transcript_paused: bytes of the exchange are not in the transcript, which says where and how many (transcript_paused: the content of a verified piece is never kept). node_id_unchecked, node_id_via_ping: the peer's DHT node id may be forged, or another subscriber's; it links no address to another. Any other mark: see the evidence documentation (docs/evidence.md, Marks).",
	kept:       "The transcript of each exchange is kept; its SHA-256 digest lets anyone check it.",
	purgedKept: "The transcript of each exchange is kept, except on the lines that say it was purged: of those, only the SHA-256 digest recorded at the time of the exchange remains.",
	purgedCell: "transcript purged on %s; recorded digest: %s",
	noteText:   func(n Note) string { return n.EN },
}

// Column widths of the rows table and of the references table; each adds
// up to bodyW.
var (
	colWidths   = []float64{14, 110, 30, 26, 122, 86, 45, 50}
	refWidths   = []float64{16, 52, 44, 50, 121, 200}
	annexWidths = []float64{84, 92, 30, 52, 100, 125}
	v6Widths    = []float64{16, 150, 110, 207}
)

// direction names a row's direction for a letter.
func direction(d string, t *langText) string {
	fr := t.code == "fr"
	switch d {
	case "sensor_to_peer":
		if fr {
			return "capteur -> pair"
		}
		return "sensor -> peer"
	case "peer_to_sensor":
		if fr {
			return "pair -> capteur"
		}
		return "peer -> sensor"
	}
	return d
}

func texts(l Lang) []*langText {
	switch l {
	case LangFR:
		return []*langText{&textFR}
	case LangEN:
		return []*langText{&textEN}
	}
	return []*langText{&textFR, &textEN}
}

// WritePDF writes a printable PDF: an internal summary sheet, then for
// each ISP with rows to request a letter in each chosen language, ready for
// a magistrate's signature. Each letter starts on a new page and numbers
// its own pages; it carries only its own ISP's rows.
func WritePDF(w io.Writer, req *Request, lang Lang) error {
	ls := texts(lang)
	d := &doc{}
	d.begin(req.ID + " — " + strings.Join(mapLang(ls, func(t *langText) string {
		if t.code == "fr" {
			return "fiche interne"
		}
		return "internal sheet"
	}), " / "))
	for i, t := range ls {
		if i > 0 {
			d.newPage()
		}
		summary(d, req, t)
		d.newPage()
		annexPages(d, req, t)
	}
	for gi := range req.Groups {
		g := &req.Groups[gi]
		if len(g.Rows) == 0 {
			continue
		}
		gls := ls
		if g.Has(NoteForeign) {
			gls = []*langText{&textEN} // abroad: one letter, in English
		}
		for _, t := range gls {
			d.begin(g.ID)
			letter(d, req, g, t)
		}
	}
	d.footers(func(i, n int) string { return fmt.Sprintf("page %d / %d", i, n) })
	if err := d.write(w, "ISP request "+req.ID, req.Created); err != nil {
		return fmt.Errorf("isp request %s: pdf: %w", req.ID, err)
	}
	return nil
}

func mapLang(ls []*langText, f func(*langText) string) []string {
	out := make([]string, len(ls))
	for i, t := range ls {
		out[i] = f(t)
	}
	return out
}

func orPH(s, ph string) string {
	if strings.TrimSpace(s) == "" {
		return ph
	}
	return s
}

func summary(d *doc, req *Request, t *langText) {
	d.para(t.summaryTitle, bold, 13, 0, 4)
	d.para(t.summaryWarn, bold, 9, 0, 8)
	kv := func(k, v string) { d.para(k+" : "+v, regular, 9.5, 0, 1) }
	if t.code == "en" {
		kv = func(k, v string) { d.para(k+": "+v, regular, 9.5, 0, 1) }
	}
	kv(t.request, req.ID)
	kv(t.created, req.Created.Format(TimeLayout))
	kv(t.target, req.Target.ID)
	kv(t.caseRef, orPH(req.Target.Case, t.casePH))
	kv(t.jurisdiction, orPH(req.Target.Jurisdiction, "—"))
	kv(t.agency, requesterLine(req, t))
	kv(t.score, strconv.FormatFloat(req.Target.Score, 'f', -1, 64))
	d.y -= 6
	d.para(fmt.Sprintf(t.counts, req.Sightings, req.Kept, req.Dropped), regular, 9.5, 0, 1)
	d.para(fmt.Sprintf(t.seenOnce, req.SeenOnce), regular, 9.5, 0, 4)
	for _, n := range req.Notes {
		d.para("• "+t.noteText(n), bold, 9.5, 0, 2)
	}
	d.y -= 6
	for gi := range req.Groups {
		g := &req.Groups[gi]
		d.para(fmt.Sprintf(t.groupLine, g.ID, ispLabel(g), len(g.Rows), g.Retention, g.Cutoff.Format(TimeLayout), g.Dropped),
			bold, 9.5, 0, 1)
		for _, n := range g.Notes {
			d.para("• "+t.noteText(n), regular, 9, 12, 1)
		}
		d.y -= 4
	}
}

func columns(heads []string, widths []float64) []column {
	cols := make([]column, len(widths))
	for i := range cols {
		cols[i] = column{head: heads[i], w: widths[i]}
	}
	return cols
}

// annexPages lists, on the internal sheet, every sighting that is not a
// row with why, and every device link with its rule, evidence and
// confidence under the forgery warning.
func annexPages(d *doc, req *Request, t *langText) {
	d.para(t.annexTitle, bold, 12, 0, 4)
	d.para(t.annexIntro, regular, 9, 0, 6)
	if len(req.Annex) == 0 {
		d.para(t.annexNone, regular, 9, 0, 8)
	} else {
		rows := make([][]string, len(req.Annex))
		for i, a := range req.Annex {
			ip := "—"
			if a.IP.IsValid() {
				ip = a.IP.String()
			}
			rows[i] = []string{a.Time.Format(TimeLayout), ip, strconv.Itoa(int(a.Port)), a.Method, a.ObservationID, t.noteText(Note{EN: a.EN, FR: a.FR})}
		}
		d.table(columns(t.annexHeads, annexWidths), rows)
		d.y -= 8
	}
	d.para(t.linksTitle, bold, 12, 0, 4)
	if t.code == "fr" {
		d.para(ForgeryWarningFR, bold, 9.5, 0, 4)
	} else {
		d.para(ForgeryWarningEN, bold, 9.5, 0, 4)
	}
	if len(req.Target.Links) == 0 {
		d.para(t.linksNone, regular, 9, 0, 4)
	}
	for _, l := range req.Target.Links {
		d.para("• "+fmt.Sprintf(t.linkLine, l.A, l.B, l.Rule, l.Evidence, l.Confidence, l.State, l.Reason), regular, 9, 10, 2)
	}
}

func ispLabel(g *Group) string {
	s := g.ISP()
	if g.ASN != 0 {
		s += fmt.Sprintf(" (AS%d", g.ASN)
		if g.Country != "" {
			s += ", " + g.Country
		}
		s += ")"
	} else if g.Country != "" {
		s += " (" + g.Country + ")"
	}
	return s
}

func letter(d *doc, req *Request, g *Group, t *langText) {
	sep := " : "
	if t.code == "en" {
		sep = ": "
	}
	d.para(requesterName(req, t), bold, 10, 0, 0)
	for _, l := range requesterAddress(req, t) {
		d.para(l, regular, 9.5, 0, 0)
	}
	d.y -= 2
	d.para(t.reference+sep+g.ID, regular, 9.5, 0, 0)
	d.para(t.procedure+sep+orPH(req.Target.Case, t.casePH), regular, 9.5, 0, 0)
	d.para(t.dated+sep+req.Created.Format(TimeLayout), regular, 9.5, 0, 10)
	country := ""
	if g.Country != "" {
		country = ", " + g.Country
	}
	if g.ASN == 0 {
		d.para(fmt.Sprintf(t.toUnknown, country), bold, 10, 0, 12)
	} else {
		d.para(fmt.Sprintf(t.to, g.ISP(), g.ASN, country), bold, 10, 0, 12)
	}
	d.para(t.title, bold, 13, 0, 6)
	basis := t.basisPH
	if g.Has(NoteForeign) {
		basis = t.basisMLAPH
		d.para(t.mlaTitle, bold, 10, 0, 2)
		for _, n := range g.Notes {
			if n.Code == NoteForeign {
				d.para(t.noteText(n), bold, 9.5, 0, 6)
			}
		}
	}
	d.para(t.basis+sep+basis, regular, 10, 0, 8)
	for _, p := range t.body {
		d.para(p, regular, 9.5, 0, 4)
	}
	if g.Has(NoteSeenOnce) {
		d.para(t.onceWarn, bold, 9.5, 0, 4)
	}
	d.para(fmt.Sprintf(t.replyTo, strings.Join(append([]string{requesterName(req, t)}, requesterAddress(req, t)...), ", "), g.ID), regular, 9.5, 0, 8)
	if len(g.Notes) > 0 {
		d.para(t.notes, bold, 10, 0, 2)
		for _, n := range g.Notes {
			d.para("• "+t.noteText(n), regular, 9, 10, 2)
		}
		d.y -= 6
	}

	if len(req.Target.Links) > 0 {
		d.para(t.linksLetter, bold, 9.5, 0, 6)
	}
	rows := make([][]string, len(g.Rows))
	refs := make([][]string, len(g.Rows))
	for i, r := range g.Rows {
		var marks []string
		if r.VPN {
			marks = append(marks, t.vpn)
		}
		if r.Hosting {
			marks = append(marks, t.host)
		}
		if r.NonPublic != "" {
			marks = append(marks, t.nonPublic)
		}
		// The observation's own marks, as codes (the same in every
		// language; the legend of docs/evidence.md, Marks, says each).
		marks = append(marks, r.Marks...)
		rows[i] = []string{
			strconv.Itoa(r.Line), r.IP.String(), strconv.Itoa(int(r.Port)), r.Transport,
			r.SensorAddress.String(), r.Time.Format(TimeLayout), r.OffsetText(t.unknown), orPH(r.ClockSource, "—"),
		}
		digest := r.TranscriptSHA256
		if !r.TranscriptPurged.IsZero() {
			digest = fmt.Sprintf(t.purgedCell, r.TranscriptPurged.Format(DateLayout), r.TranscriptSHA256)
		}
		refs[i] = []string{strconv.Itoa(r.Line), r.Method, direction(r.Direction, t), strings.Join(append([]string{r.Level.String()}, marks...), " "),
			r.ObservationID, digest}
	}
	d.table(columns(t.heads, colWidths), rows)
	d.y -= 6
	d.para(t.refsTitle, bold, 9.5, 0, 2)
	d.table(columns(t.refHeads, refWidths), refs)
	// IPv6 rows: the prefix the ISP delegated is what it can name, and
	// whether the service grouped the address with others of it.
	var v6 [][]string
	for _, r := range g.Rows {
		if r.PrefixNote.Code != "" {
			v6 = append(v6, []string{strconv.Itoa(r.Line), r.IP.String(), orPH(prefixString(r.SubscriberPrefix), "—"), t.noteText(r.PrefixNote)})
		}
	}
	if len(v6) > 0 {
		d.para(t.v6Title, bold, 9.5, 0, 2)
		d.table(columns(t.v6Heads, v6Widths), v6)
	}
	kept := t.kept
	if g.Has(NoteTranscriptPurged) {
		kept = t.purgedKept
	}
	d.para(t.legend+" "+kept, regular, 8, 0, 14)

	// Signature block, kept on one page with a recap of what is signed,
	// so that a signature page never stands apart from its request.
	d.need(175)
	first, last := g.Rows[0].Time, g.Rows[len(g.Rows)-1].Time
	d.para(fmt.Sprintf(t.recap, g.ID, len(g.Rows), len(g.Rows), first.Format(TimeLayout), last.Format(TimeLayout)), bold, 9.5, 0, 10)
	d.para(t.sign, bold, 10, 0, 8)
	d.para(t.signName, regular, 10, 0, 8)
	d.para(t.signCourt, regular, 10, 0, 8)
	d.para(t.signDate, regular, 10, 0, 8)
	d.para(t.signSig, regular, 10, 0, 4)
	d.rect(marginX, d.y-60, 220, 60)
	d.y -= 66
}

// requesterName is the requesting service's name for a letter: its name,
// never its bare id (a placeholder that names the id when the name is not
// known).
func requesterName(req *Request, t *langText) string {
	if n := strings.TrimSpace(req.Target.DisplayName()); n != "" && n != req.Target.Requester.ID {
		return n
	}
	if id := req.Target.Requester.ID; id != "" {
		return fmt.Sprintf(t.agencyIDPH, id)
	}
	return t.agencyPH
}

// requesterAddress is the postal address lines and the contact, or a
// placeholder for the address.
func requesterAddress(req *Request, t *langText) []string {
	r := req.Target.Requester
	var out []string
	for _, l := range strings.Split(r.Address, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = append(out, t.addressPH)
	}
	if c := strings.TrimSpace(r.Contact); c != "" {
		out = append(out, c)
	}
	return out
}

// requesterLine is the requesting service on the internal sheet.
func requesterLine(req *Request, t *langText) string {
	s := requesterName(req, t)
	if id := req.Target.Requester.ID; id != "" && !strings.Contains(s, id) {
		s += " (" + id + ")"
	}
	return s
}
